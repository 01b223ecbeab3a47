using FullStory.Engine.Api;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Sync;

/// <summary>
/// One scheduled replication run (Stitch's job): take the destination's run lock, find where the destination's own
/// sync-state table says the data ends, load every newer bundle (or every newly completed Segment Export window) exactly
/// once, oldest first, and record the run in the destination's run history.
/// <para>
/// Resume: the database is the bookmark. Bundles: list from the Stop of the newest loaded bundle (FullStory lists the
/// bundles that end after the given time), skipping any key already loaded; the first run lists from
/// <see cref="SyncOptions.Start"/>. Windows: continue with the window that starts at the end of the newest loaded window of
/// the segment, stepping <see cref="SyncOptions.WindowSize"/>, while the window ends at or before now - Lag; the first run
/// starts at <see cref="SyncOptions.Start"/>, so windows are aligned to it.
/// </para>
/// <para>
/// A run stops at the first batch that fails (after its retries): batches are loaded strictly oldest first, so what is
/// loaded stays a contiguous stretch and "resume after the newest" can never skip a hole. The next run retries the failed batch.
/// </para>
/// </summary>
public sealed class SyncEngine
{
    private const int MaxErrorLength = 4000;
    private readonly FullStorySession session;
    private readonly SyncDestination destination;
    private readonly SyncOptions options;
    private readonly OperationObserver observer;

    public SyncEngine(FullStorySession session, SyncDestination destination, SyncOptions? options = null, OperationObserver? observer = null)
    {
        this.session = session ?? throw new ArgumentNullException(nameof(session));
        this.destination = destination ?? throw new ArgumentNullException(nameof(destination));
        this.options = options ?? new SyncOptions();
        this.observer = observer ?? OperationObserver.None;
        if (this.options.WindowSize <= TimeSpan.Zero) throw new ArgumentException("WindowSize must be positive.", nameof(options));
        if (this.options.Lag < TimeSpan.Zero) throw new ArgumentException("Lag must not be negative.", nameof(options));
        if (string.IsNullOrWhiteSpace(this.options.SegmentId)) throw new ArgumentException("SegmentId must not be empty.", nameof(options));
    }

    private DateTimeOffset Now() => options.Clock().ToUniversalTime();

    private void Log(string message) => observer.Log(message);

    /// <summary>Runs one sync. Never throws for a failed run: the summary says Failed (or Cancelled, Skipped) and why.</summary>
    public SyncSummary Run(CancellationToken cancellationToken = default)
    {
        var summary = new SyncSummary { Api = options.Api, Table = destination.TableName, StartedAt = Now() };
        int retriesBefore = observer.Retries;
        IEventStore store;
        try
        {
            store = destination.OpenStore();
        }
        catch (Exception ex)
        {
            return Finish(summary, null, null, ex, cancellationToken, retriesBefore);
        }

        using (store)
        {
            summary.Destination = store.Destination;
            IDisposable? runLock;
            try
            {
                Log($"Taking the sync lock ({destination.LockDescription}){(options.LockWait > TimeSpan.Zero ? $", waiting up to {options.LockWait}" : "")}.");
                runLock = destination.TryAcquireRunLock(options.LockWait, cancellationToken);
            }
            catch (Exception ex)
            {
                return Finish(summary, store, null, ex, cancellationToken, retriesBefore);
            }

            if (runLock is null)
            {
                summary.Outcome = "Skipped";
                summary.Message = $"Another sync into {store.Destination} table {destination.TableName} is running (it holds {destination.LockDescription}); " +
                                  (options.LockWait > TimeSpan.Zero ? $"waited {options.LockWait} for it; " : "") + "this run did nothing.";
                Log(summary.Message);
                summary.EndedAt = Now();
                TrySetFreshness(summary, store);
                return summary;
            }

            using (runLock)
            {
                var run = new SyncRunRecord
                {
                    StartedAt = summary.StartedAt, Api = options.Api.ToString(), Table = destination.TableName, Outcome = "Running",
                    Host = Environment.MachineName,
                };
                try
                {
                    summary.RunId = store.BeginRun(run);
                }
                catch (Exception ex)
                {
                    return Finish(summary, store, null, ex, cancellationToken, retriesBefore);
                }
                Log($"Run {run.RunId} started: {options.Api} into {store.Destination} table {destination.TableName}.");
                MarkAbandonedRuns(store, run);

                Exception? failure = null;
                try
                {
                    var loader = new BatchLoader(session, store, observer)
                    {
                        ArchiveDirectory = options.ArchiveDirectory,
                        RowProgress = options.Progress is null ? null : (key, rows) => Report(key, rows),
                    };
                    var loaded = store.GetLoadedBatches();
                    if (options.Api == SyncApi.Bundles) SyncBundles(loader, store, loaded, summary, run, cancellationToken);
                    else SyncWindows(loader, store, loaded, summary, run, cancellationToken);
                }
                catch (Exception ex)
                {
                    failure = ex;
                }
                return Finish(summary, store, run, failure, cancellationToken, retriesBefore);
            }
        }
    }

    private int batchNumber, batchCount;

    private void Report(string? key, long rows) =>
        options.Progress?.Invoke(new SyncProgress($"Syncing FullStory ({options.Api})", key, batchNumber, batchCount, rows));

    private void SyncBundles(BatchLoader loader, IEventStore store, IReadOnlyList<LoadedBatch> loaded, SyncSummary summary, SyncRunRecord run, CancellationToken cancellationToken)
    {
        var start = options.Start ?? Now() - SyncOptions.DefaultHistory;
        var keys = loaded.Select(b => b.Key).ToHashSet(StringComparer.Ordinal);
        var newest = loaded.Where(b => IsBundleKey(b.Key) && b.RangeEnd is { } e && e > start).Select(b => b.RangeEnd!.Value).DefaultIfEmpty().Max();
        DateTimeOffset cursor = newest == default ? start : newest;
        Log(newest == default
            ? $"First run into {destination.TableName}: listing the bundles that end after {Iso(start)}."
            : $"Resuming: the newest loaded bundle ends at {Iso(newest)}; listing the bundles that end after it.");

        var todo = session.GetClient().ListBundles(cursor, null, observer, cancellationToken)
            .Where(b => !keys.Contains(b.BatchKey))
            .ToList();
        Log(todo.Count == 0 ? "No new bundle: the destination is up to date with FullStory." : $"{todo.Count} new bundle(s) to load: {todo[0]} to {todo[^1]}.");
        LoadInOrder(todo, b => b.BatchKey, b => loader.LoadBundle(b, cancellationToken), store, summary, run, cancellationToken);
    }

    private void SyncWindows(BatchLoader loader, IEventStore store, IReadOnlyList<LoadedBatch> loaded, SyncSummary summary, SyncRunRecord run, CancellationToken cancellationToken)
    {
        var now = Now();
        var start = options.Start ?? now - SyncOptions.DefaultHistory;
        var size = options.WindowSize;
        string prefix = WindowPrefix;
        var keys = loaded.Select(b => b.Key).ToHashSet(StringComparer.Ordinal);
        var newest = loaded.Where(b => b.Key.StartsWith(prefix, StringComparison.Ordinal) && b.RangeEnd is { } e && e > start)
            .Select(b => b.RangeEnd!.Value).DefaultIfEmpty().Max();
        var cursor = newest == default ? start : newest;
        var horizon = now - options.Lag;
        Log((newest == default
                ? $"First run into {destination.TableName}: windows of {size} from {Iso(start)}"
                : $"Resuming after the newest loaded window, which ends at {Iso(newest)}: windows of {size}")
            + $" that end by {Iso(horizon)} (now - {options.Lag}: FullStory publishes data about a day later).");

        var todo = new List<SegmentExportRequest>();
        for (var s = cursor; s + size <= horizon; s += size)
        {
            var request = new SegmentExportRequest(s, s + size, options.SegmentId);
            if (!keys.Contains(request.BatchKey)) todo.Add(request);
        }
        Log(todo.Count == 0 ? "No newly completed window: the destination is up to date." : $"{todo.Count} window(s) to load: {todo[0]} to {todo[^1]}.");
        LoadInOrder(todo, w => w.BatchKey, w => loader.LoadExport(w, cancellationToken), store, summary, run, cancellationToken);
    }

    /// <summary>Loads batches oldest first and stops at the first failure, so the loaded data never has a hole.</summary>
    private void LoadInOrder<T>(IReadOnlyList<T> todo, Func<T, string> key, Func<T, LoadReport> load, IEventStore store, SyncSummary summary,
        SyncRunRecord run, CancellationToken cancellationToken) where T : notnull
    {
        batchCount = todo.Count;
        for (int i = 0; i < todo.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batchNumber = i + 1;
            Report(key(todo[i]), 0);
            LoadReport report;
            try { report = load(todo[i]); }
            catch (Exception ex) when (ex is not OperationCanceledException) { throw new BatchFailedException(todo[i].ToString()!, ex); }
            Loaded(report, store, summary, run);
        }
    }

    private string WindowPrefix => $"export:{options.SegmentId}:";

    private static bool IsBundleKey(string key) => key.StartsWith("bundle:", StringComparison.Ordinal);

    private void Loaded(LoadReport report, IEventStore store, SyncSummary summary, SyncRunRecord run)
    {
        if (report.AlreadyLoaded) return; // another writer loaded it meanwhile: nothing done here
        summary.loaded.Add(report);
        summary.Batches++;
        summary.Rows += report.Rows;
        summary.Bytes += report.Bytes;
        run.Batches = summary.Batches;
        run.Rows = summary.Rows;
        run.Bytes = summary.Bytes;
        Log($"Loaded {report.BatchKey}: {report.Rows:N0} rows, {report.Bytes:N0} bytes in {report.Duration.TotalSeconds:0.0} s.");
        options.BatchLoaded?.Invoke(report);
        // Checkpoint the history row, so a process that dies still shows what it loaded.
        try { store.EndRun(run); } catch (Exception ex) { Log($"Could not update the run history: {session.Redact(ex.Message)}"); }
    }

    /// <summary>Runs of this table still "Running" while we hold the lock belong to processes that died: say so.</summary>
    private void MarkAbandonedRuns(IEventStore store, SyncRunRecord current)
    {
        try
        {
            foreach (var stale in store.GetRuns(50).Where(r => r.RunId != current.RunId && r.Outcome == "Running" && r.Table == current.Table))
            {
                stale.Outcome = "Failed";
                stale.Error = "The run did not finish: its process ended (killed, crashed or the machine restarted) before it recorded an outcome.";
                store.EndRun(stale);
                Log($"Run {stale.RunId} (started {Iso(stale.StartedAt)}) never finished; recorded it as Failed.");
            }
        }
        catch (Exception ex)
        {
            Log($"Could not check for unfinished runs: {session.Redact(ex.Message)}");
        }
    }

    private SyncSummary Finish(SyncSummary summary, IEventStore? store, SyncRunRecord? run, Exception? failure, CancellationToken cancellationToken, int retriesBefore)
    {
        summary.Retries = observer.Retries - retriesBefore;
        if (failure is null) summary.Outcome = "Succeeded";
        else if (failure is OperationCanceledException && cancellationToken.IsCancellationRequested)
        {
            summary.Outcome = "Cancelled";
            summary.Error = "The run was stopped (Ctrl+C or a stop request) after loading " + summary.Batches + " batch(es); the next run continues from there.";
        }
        else
        {
            summary.Outcome = "Failed";
            summary.Error = Describe(failure);
            summary.failure = failure is BatchFailedException b ? b.InnerException : failure;
        }
        if (store is not null) TrySetFreshness(summary, store);
        summary.EndedAt = Now();
        summary.Message ??= summary.Outcome switch
        {
            "Succeeded" when summary.Batches == 0 => "Nothing new to load.",
            "Succeeded" => $"Loaded {summary.Batches} batch(es), {summary.Rows:N0} rows.",
            _ => summary.Error,
        };

        if (store is not null && run is not null)
        {
            run.EndedAt = summary.EndedAt;
            run.Outcome = summary.Outcome;
            run.Batches = summary.Batches;
            run.Rows = summary.Rows;
            run.Bytes = summary.Bytes;
            run.Retries = summary.Retries;
            run.Error = summary.Error;
            run.DataThrough = summary.DataThrough;
            try
            {
                store.EndRun(run);
            }
            catch (Exception ex)
            {
                string note = "The run history could not be updated: " + session.Redact(ex.Message);
                Log(note);
                summary.Error = summary.Error is null ? note : summary.Error + " " + note;
                if (summary.Outcome == "Succeeded") summary.Outcome = "Failed";
            }
        }
        Log($"Run {summary.RunId}: {summary}.");
        return summary;
    }

    private string Describe(Exception ex)
    {
        string text = ex switch
        {
            BatchFailedException b => $"{b.Batch}: {Flatten(b.InnerException!)}",
            _ => Flatten(ex),
        };
        text = session.Redact(text);
        return text.Length <= MaxErrorLength ? text : text[..MaxErrorLength] + "…";
    }

    private static string Flatten(Exception ex) =>
        ex is AggregateException { InnerExceptions.Count: 1 } a ? Flatten(a.InnerExceptions[0]) : ex.Message;

    /// <summary>DataThrough, Lag and IsUpToDate from what the destination holds now.</summary>
    private void TrySetFreshness(SyncSummary summary, IEventStore store)
    {
        try
        {
            var batches = store.GetLoadedBatches()
                .Where(b => b.RangeEnd is not null && (options.Api == SyncApi.Bundles ? IsBundleKey(b.Key) : b.Key.StartsWith(WindowPrefix, StringComparison.Ordinal)))
                .ToList();
            if (batches.Count == 0) return;
            var newest = batches.MaxBy(b => b.RangeEnd!.Value)!;
            TimeSpan period = options.Api == SyncApi.Bundles && newest.RangeStart is { } s ? newest.RangeEnd!.Value - s : options.WindowSize;
            summary.DataThrough = newest.RangeEnd;
            summary.Lag = Now() - newest.RangeEnd!.Value;
            // FullStory publishes a period's data about a day after it ends; an hour of slack for "about".
            summary.IsUpToDate = summary.Lag <= options.Lag + period + TimeSpan.FromHours(1);
        }
        catch (Exception ex)
        {
            Log($"Could not read how far the data goes: {session.Redact(ex.Message)}");
        }
    }

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Names the batch that failed in the run's error.</summary>
    private sealed class BatchFailedException(string batch, Exception inner) : Exception(inner.Message, inner)
    {
        public string Batch { get; } = batch;
    }
}
