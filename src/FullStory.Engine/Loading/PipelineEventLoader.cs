using System.Collections.Concurrent;
using System.Diagnostics;
using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>
/// Loads events handed over one at a time (a PowerShell pipeline's events, in whatever order and subset the pipeline
/// carries them) into an <see cref="IEventStore"/>, streaming: a worker thread runs <see cref="IEventStore.LoadEvents"/>
/// over a small bounded queue, so one transaction fills as events arrive and nothing is buffered whole.
/// <para>
/// The events go in chunks, one transaction each. A chunk ends where the source changes once the previous source's last
/// event has gone by (in a plain <c>Receive | Export</c> that is once per bundle, like a bundle load), or once the
/// chunk is large; input sorted across sources therefore shares a few transactions, not one per change of source.
/// Whatever the chunking, the store's rules make the result the same: every event lands once.
/// </para>
/// <para>
/// Threading: <see cref="Add"/>, <see cref="Complete"/> and <see cref="Abandon"/> are called on one producer thread (the
/// pipeline's), which must keep serving requests the worker sends it (confirmations, messages): whenever it waits, it
/// calls the idle callback.
/// </para>
/// </summary>
public sealed class PipelineEventLoader : IDisposable
{
    private const int QueueBound = 1000;
    private static readonly TimeSpan IdleInterval = TimeSpan.FromMilliseconds(50);

    private readonly IEventStore store;
    private readonly Action idle;
    private readonly CancellationTokenSource abort;
    private readonly Func<string, bool>? admitSource;
    private readonly Dictionary<string, bool> admitted = new(StringComparer.Ordinal);
    private readonly HashSet<string> rejected = new(StringComparer.Ordinal);
    private Chunk? chunk;
    private string? runKey;
    private bool runEnded;

    /// <param name="store">The destination.</param>
    /// <param name="idle">Called on the producer thread while it waits for the worker (serve its requests there).</param>
    /// <param name="admitSource">Asked once per source, on the producer thread, before its first event is loaded (e.g. ShouldProcess); false = its events are not loaded.</param>
    /// <param name="fallbackKey">The batch key of events without a Source; default pipeline:&lt;new guid&gt;.</param>
    public PipelineEventLoader(IEventStore store, Action idle, Func<string, bool>? admitSource = null, string? fallbackKey = null,
        CancellationToken cancellationToken = default)
    {
        this.store = store ?? throw new ArgumentNullException(nameof(store));
        this.idle = idle ?? throw new ArgumentNullException(nameof(idle));
        this.admitSource = admitSource;
        FallbackKey = fallbackKey ?? "pipeline:" + Guid.NewGuid().ToString("D");
        abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>A chunk may be closed at the next change of source once it holds this many events.</summary>
    public int ChunkEvents { get; init; } = 100_000;

    /// <summary>... or once it has been open this long.</summary>
    public TimeSpan ChunkTime { get; init; } = TimeSpan.FromSeconds(60);

    public string FallbackKey { get; }

    /// <summary>Events handed over, and of those: not loaded because their source was declined or invalid.</summary>
    public long EventsSeen { get; private set; }
    public long EventsDeclined { get; private set; }
    public long EventsRejected { get; private set; }

    /// <summary>Events of chunks that failed (rolled back: not in the destination).</summary>
    public long EventsFailed { get; private set; }

    private sealed class Chunk
    {
        public required BlockingCollection<FullStoryEvent> Queue { get; init; }
        public required Task<IReadOnlyList<LoadReport>> Worker { get; init; }
        public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);
        public Stopwatch Age { get; } = Stopwatch.StartNew();
        public long Events { get; set; }
    }

    /// <summary>
    /// Hands one event over. Returns the reports of a chunk that committed to make room for it (usually none).
    /// Throws <see cref="PipelineLoadException"/> when that chunk failed (it was rolled back; later events go on in a new
    /// chunk), and <see cref="ArgumentException"/> the first time an event's Source cannot be a batch key.
    /// </summary>
    public IReadOnlyList<LoadReport> Add(FullStoryEvent ev)
    {
        ArgumentNullException.ThrowIfNull(ev);
        EventsSeen++;
        string key = ev.Source ?? FallbackKey;
        // An event that cannot be loaded at all neither ends nor joins a chunk (and its error is the only one this call throws).
        if (!Valid(key)) return Array.Empty<LoadReport>();
        IReadOnlyList<LoadReport> reports = Array.Empty<LoadReport>();
        PipelineLoadException? previousFailed = null;

        if (runKey is not null && !string.Equals(runKey, key, StringComparison.Ordinal))
        {
            // The chunk so far commits (or turns out to have failed); this event goes on either way, in a new chunk.
            if (chunk is not null && (runEnded || chunk.Events >= ChunkEvents || chunk.Age.Elapsed >= ChunkTime))
            {
                try { reports = FinishChunk(); }
                catch (PipelineLoadException ex) { previousFailed = ex; }
            }
            runEnded = false;
        }
        runKey = key;
        if (ev.SourceCount is not null) runEnded = true;

        if (Admit(key, ev))
        {
            chunk ??= StartChunk();
            chunk.Keys.Add(key);
            chunk.Events++;
            Feed(chunk, ev);
        }
        if (previousFailed is not null) throw previousFailed;
        return reports;
    }

    /// <summary>The input ended: commits the open chunk and returns its reports.</summary>
    public IReadOnlyList<LoadReport> Complete() => chunk is null ? Array.Empty<LoadReport>() : FinishChunk();

    /// <summary>Cancels the open chunk and waits for its rollback (Ctrl+C, or the pipeline stopped early).</summary>
    public void Abandon()
    {
        var c = chunk;
        chunk = null;
        try { abort.Cancel(); } catch (ObjectDisposedException) { }
        if (c is null) return;
        try { c.Queue.CompleteAdding(); } catch (ObjectDisposedException) { }
        // The rollback may need the producer thread (a pending confirmation is answered by cancellation): serve it while waiting.
        var deadline = Stopwatch.StartNew();
        while (!c.Worker.IsCompleted && deadline.Elapsed < TimeSpan.FromSeconds(120))
        {
            ((IAsyncResult)c.Worker).AsyncWaitHandle.WaitOne(IdleInterval);
            idle();
        }
        if (c.Worker.IsCompleted) c.Queue.Dispose();
    }

    /// <summary>False for the events of a source that cannot be a batch key; throws the first time such a source is seen.</summary>
    private bool Valid(string key)
    {
        if (admitted.ContainsKey(key)) return true;
        if (rejected.Contains(key)) { EventsRejected++; return false; }
        if (EventTableModel.IsValidBatchKey(key)) return true;
        rejected.Add(key);
        EventsRejected++;
        throw new ArgumentException(
            $"Events with the Source '{(key.Length > 60 ? key[..60] + "…" : key)}' cannot be loaded: a Source is the batch key and must have 1 to " +
            $"{EventTableModel.MaxBatchKeyLength} characters. Its events are not loaded.", "Source");
    }

    private bool Admit(string key, FullStoryEvent ev)
    {
        if (!admitted.TryGetValue(key, out bool yes)) admitted[key] = yes = admitSource?.Invoke(key) ?? true;
        if (!yes) EventsDeclined++;
        return yes;
    }

    private Chunk StartChunk()
    {
        var queue = new BlockingCollection<FullStoryEvent>(QueueBound);
        var token = abort.Token;
        return new Chunk
        {
            Queue = queue,
            Worker = Task.Run(() => store.LoadEvents(queue.GetConsumingEnumerable(token), FallbackKey, token), token),
        };
    }

    /// <summary>Hands one event to the worker, serving its requests while the queue is full.</summary>
    private void Feed(Chunk c, FullStoryEvent ev)
    {
        while (true)
        {
            if (c.Worker.IsCompleted)
            {
                // The load ended before its input did, so it failed and rolled back: FinishChunk throws the failure, which
                // counts this event among the chunk's. The next event starts a new chunk.
                FinishChunk();
                throw new InvalidOperationException("The load ended before its input did.");
            }
            if (c.Queue.TryAdd(ev, (int)IdleInterval.TotalMilliseconds, abort.Token)) return;
            idle();
        }
    }

    /// <summary>Lets the worker commit and returns its reports; throws <see cref="PipelineLoadException"/> when it failed.</summary>
    private IReadOnlyList<LoadReport> FinishChunk()
    {
        var c = chunk!;
        chunk = null;
        try { c.Queue.CompleteAdding(); } catch (ObjectDisposedException) { }
        // Not Task.Wait: it throws for a faulted task; the wait handle only says that the task ended.
        while (!((IAsyncResult)c.Worker).AsyncWaitHandle.WaitOne(IdleInterval)) idle();
        idle();
        c.Queue.Dispose();
        if (c.Worker.IsCompletedSuccessfully) return c.Worker.Result;

        var ex = c.Worker.Exception?.GetBaseException() ?? new OperationCanceledException(abort.Token);
        if (ex is OperationCanceledException && abort.IsCancellationRequested) throw new OperationCanceledException(abort.Token);
        EventsFailed += c.Events;
        throw new PipelineLoadException(c.Keys.ToList(), c.Events, ex);
    }

    public void Dispose()
    {
        Abandon();
        abort.Dispose();
    }
}

/// <summary>A chunk of pipeline events failed to load and was rolled back: none of its events are in the destination.</summary>
public sealed class PipelineLoadException : Exception
{
    public PipelineLoadException(IReadOnlyList<string> sources, long events, Exception inner)
        : base(Describe(sources, events, inner), inner)
    {
        Sources = sources;
        Events = events;
    }

    public IReadOnlyList<string> Sources { get; }
    public long Events { get; }

    private static string Describe(IReadOnlyList<string> sources, long events, Exception inner) =>
        $"Loading {events:N0} events of {sources[0]}{(sources.Count > 1 ? $" and {sources.Count - 1} other source(s)" : "")} failed and was rolled back: " +
        $"{(inner is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0].Message : inner.Message)}";
}
