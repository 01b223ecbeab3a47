using System.Collections.Concurrent;
using System.Diagnostics;
using System.Management.Automation;
using FullStory.Engine.Api;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// Carries the engine's verbose lines, retries and progress to PowerShell, and runs PowerShell-facing work (ShouldProcess)
/// asked for by worker threads. Cmdlet.Write* and ShouldProcess may only be called on the pipeline thread, so work from
/// other threads waits in a queue until the pipeline thread drains it (<see cref="Drain"/>: call it whenever the pipeline
/// thread waits for a worker); everything written is redacted. Progress is throttled (a bar per event would cost more
/// than the events).
/// </summary>
internal sealed class PipelineMessenger
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);
    private readonly FullStoryCmdletBase cmdlet;
    private readonly int pipelineThread = Environment.CurrentManagedThreadId;
    private readonly ConcurrentQueue<Action> pending = new();
    private readonly Stopwatch sinceProgress = Stopwatch.StartNew();
    private bool progressShown;

    public PipelineMessenger(FullStoryCmdletBase cmdlet, int activityId, string activity)
    {
        this.cmdlet = cmdlet;
        ActivityId = activityId;
        Activity = activity;
        Observer = new OperationObserver
        {
            Verbose = Verbose,
            ExportProgress = (pct, state) => Progress($"Waiting for FullStory to prepare the export ({state})", pct, force: true),
        };
    }

    public int ActivityId { get; }
    public string Activity { get; }
    public OperationObserver Observer { get; }

    public void Verbose(string message)
    {
        if (Environment.CurrentManagedThreadId == pipelineThread) { Drain(); cmdlet.WriteVerboseSafe(message); }
        else pending.Enqueue(() => cmdlet.WriteVerboseSafe(message));
    }

    /// <summary>Runs queued work (messages, requests from workers) on the pipeline thread.</summary>
    public void Drain()
    {
        if (Environment.CurrentManagedThreadId != pipelineThread) return;
        while (pending.TryDequeue(out var work)) work();
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the pipeline thread and returns its result: at once when called there; from another
    /// thread, queued for the next <see cref="Drain"/> while the caller waits (cancellation ends the wait with
    /// OperationCanceledException). Exceptions reach the caller.
    /// </summary>
    public T Invoke<T>(Func<T> work, CancellationToken cancellationToken)
    {
        if (Environment.CurrentManagedThreadId == pipelineThread) return work();
        var answer = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        pending.Enqueue(() =>
        {
            try { answer.SetResult(work()); }
            catch (PipelineStoppedException)
            {
                // The pipeline is stopping (Ctrl+C, a downstream Select-Object -First): the worker is cancelled, and the stop
                // goes on up this thread as PowerShell expects, not back to the worker as a failure of its load.
                answer.SetCanceled();
                throw;
            }
            catch (Exception ex) { answer.SetException(ex); }
        });
        answer.Task.Wait(cancellationToken);
        return answer.Task.GetAwaiter().GetResult();
    }

    /// <summary>Shows progress at most every 250 ms unless forced; silent under $ProgressPreference = 'SilentlyContinue' (PowerShell drops it).</summary>
    public void Progress(string status, int percent = -1, bool force = false, int secondsRemaining = -1) => Progress(() => status, percent, force, secondsRemaining);

    /// <summary>As above, building the text only when progress is actually shown (callers pass it per event).</summary>
    public void Progress(Func<string> status, int percent = -1, bool force = false, int secondsRemaining = -1)
    {
        if (!force && sinceProgress.Elapsed < ProgressInterval) return;
        if (Environment.CurrentManagedThreadId != pipelineThread) return;
        sinceProgress.Restart();
        progressShown = true;
        cmdlet.WriteProgress(new ProgressRecord(ActivityId, Activity, status()) { PercentComplete = percent, SecondsRemaining = secondsRemaining });
    }

    public void Complete()
    {
        Drain();
        if (progressShown)
            cmdlet.WriteProgress(new ProgressRecord(ActivityId, Activity, "Done") { RecordType = ProgressRecordType.Completed });
    }
}
