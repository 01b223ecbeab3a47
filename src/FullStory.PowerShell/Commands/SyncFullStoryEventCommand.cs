using System.Management.Automation;
using FullStory.Engine.Diagnostics;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>
/// Sync-FullStoryEvent: one incremental replication run, for a scheduled task every 30 minutes (Stitch's job in one
/// command). The first run loads everything since -Start (one year ago by default); later runs resume after what the
/// destination's own sync-state table says is loaded, so the database is the bookmark. Each bundle (or Segment Export
/// window) is loaded exactly once, in one transaction. Overlapping runs are safe: a run that finds another one going
/// waits up to -LockWait, then ends with Outcome Skipped. Every run is recorded (Get-FullStorySyncHistory).
/// Writes one summary object; a failed run then ends in a terminating error (FullStory.SyncFailed), so $? is false and
/// `pwsh -File` exits non-zero.
/// </summary>
[Cmdlet(VerbsData.Sync, "FullStoryEvent", DefaultParameterSetName = SqliteSet)]
[Alias("Sync-FullStoryEvents")]
[OutputType(typeof(SyncSummary))]
public sealed class SyncFullStoryEventCommand : FullStoryLoadingCmdlet
{
    /// <summary>Where the FIRST run starts (default: one year ago). Later runs continue from the destination's bookmark. A DateTime, DateTimeOffset, event timestamp or ISO 8601 string (UTC without an offset).</summary>
    [Parameter]
    [UtcTimeTransformation]
    public DateTime? Start { get; set; }

    /// <summary>Bundles (the legacy export, default) or SegmentExport (FullStory's current API, in time windows).</summary>
    [Parameter]
    public SyncApi Api { get; set; } = SyncApi.Bundles;

    /// <summary>SegmentExport: the largest window (one export and one transaction each). Default: 7 days while catching up, one day near now. At least one minute; a bare number is refused (give a time span).</summary>
    [Parameter]
    [TimeSpanArgument]
    [ValidateWindowSize]
    public TimeSpan WindowSize { get; set; }

    /// <summary>SegmentExport: how many exports FullStory prepares at once (default 4); windows are still loaded one at a time, oldest first.</summary>
    [Parameter]
    [ValidateRange(1, 32)]
    public int ThrottleLimit { get; set; } = FullStory.Engine.Api.SegmentExportSchedule.DefaultThrottleLimit;

    /// <summary>SegmentExport: only windows that ended at least this long ago are asked for (FullStory publishes about a day later). Default one day.</summary>
    [Parameter]
    [TimeSpanArgument]
    public TimeSpan Lag { get; set; } = TimeSpan.FromDays(1);

    /// <summary>SegmentExport: the segment to export (everyone = all data).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(Completers.SegmentIdCompleter))]
    public string SegmentId { get; set; } = "everyone";

    /// <summary>How long to wait for another run into the same table to finish before ending as Skipped. Default 0: do not wait. E.g. (New-TimeSpan -Minutes 10).</summary>
    [Parameter]
    [TimeSpanArgument]
    public TimeSpan LockWait { get; set; } = TimeSpan.Zero;

    /// <summary>Keep every raw download in this folder exactly as received (replay with Receive-FullStoryEvent -Path).</summary>
    [Parameter]
    public string? OutDirectory { get; set; }

    protected override void EndProcessing()
    {
        UseSession(Session);
        ThrowIfNoSession();
        var destination = ResolveDestination(LoadingOptions(), DatabaseAccess.Write);
        if (Lag < TimeSpan.Zero || LockWait < TimeSpan.Zero)
            ThrowTerminatingError(Error(new ArgumentException("-Lag and -LockWait must not be negative."), "FullStory.InvalidArgument", ErrorCategory.InvalidArgument, null));
        if (Start is { } first && AsUtc(first) > DateTimeOffset.UtcNow)
        {
            ThrowTerminatingError(Error(new ArgumentException($"-Start {DisplayFormat.Time(first)} is in the future: FullStory has no data after it yet, so every run would load nothing."),
                "FullStory.InvalidArgument", ErrorCategory.InvalidArgument, Start,
                "Pass the time the first run should start from, in the past (e.g. -Start (Get-Date).AddDays(-30)), or leave -Start out for one year ago."));
        }
        if (Api == SyncApi.Bundles) NoteLegacyApi(destination);

        var messenger = new PipelineMessenger(this, 3, $"Syncing FullStory events ({Api})");
        // Messages are best effort: once Ctrl+C is pressed PowerShell refuses every Write, and a refused message must not
        // turn a batch that just committed into a failure.
        destination.StoreOptions.Log = m => { try { messenger.Verbose(m); } catch (PipelineStoppedException) { } };
        var options = new SyncOptions
        {
            Api = Api,
            Start = Start is { } s ? AsUtc(s) : null,
            WindowSize = MyInvocation.BoundParameters.ContainsKey(nameof(WindowSize)) ? WindowSize : null,
            ThrottleLimit = ThrottleLimit,
            Lag = Lag,
            SegmentId = SegmentId,
            LockWait = LockWait,
            ArchiveDirectory = OutDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(OutDirectory),
            Progress = p => { try { ShowProgress(messenger, p); } catch (PipelineStoppedException) { } },
        };

        SyncSummary summary;
        try
        {
            summary = new SyncEngine(CurrentSession, destination, options, messenger.Observer).Run(CancellationToken);
        }
        finally
        {
            messenger.Complete();
        }

        // Ctrl+C: the engine recorded Outcome Cancelled; PowerShell is stopping the pipeline and takes no more output.
        if (CancellationToken.IsCancellationRequested) return;

        if (summary.Outcome == "Skipped" && summary.Message is not null) WriteWarning(summary.Message);
        WriteObject(summary);
        if (summary.Outcome == "Failed")
        {
            // The id stays FullStory.SyncFailed (scripts test it); the category and advice come from what failed.
            var advice = summary.GetFailure() is { } failure ? FailureAdvisor.Describe(failure) : null;
            string which = summary.RunId is { } id ? $"(run {id})" : "before it could be recorded";
            ThrowTerminatingError(Error(new InvalidOperationException($"Sync-FullStoryEvent failed {which}: {summary.Message ?? summary.Error}"),
                "FullStory.SyncFailed", advice is null ? ErrorCategory.NotSpecified : CategoryOf(advice.Kind), summary.Destination,
                (advice?.RecommendedAction is { } action ? action + " " : "") +
                "See the summary and Get-FullStorySyncHistory; the next run retries the batch that failed and never loads a batch twice."));
        }
    }

    /// <summary>
    /// Segment Export: windows loaded of all, exports in flight, rows and the time left; the window being loaded or what the
    /// run waits for. Bundles: the bundle being loaded.
    /// </summary>
    private static void ShowProgress(PipelineMessenger messenger, SyncProgress p)
    {
        messenger.Drain(); // verbose lines of the exports running on other threads
        if (p.BatchKey is null && p.Waiting is null)
        {
            messenger.Progress(p.Activity, p.PercentComplete, force: true);
            return;
        }
        if (p.InFlight == 0 && p.Waiting is null)
        {
            messenger.Progress($"{p.BatchKey} (batch {p.BatchNumber} of {p.BatchCount}): {DisplayFormat.Count(p.Rows, "row")}", p.PercentComplete, force: p.Rows == 0);
            return;
        }
        int percent = p.BatchCount <= 0 ? -1 : (int)Math.Clamp(100L * p.Loaded / p.BatchCount, 0, 100);
        string now = p.Waiting ?? $"loading {p.BatchKey}: {DisplayFormat.Count(p.Rows, "row")}";
        int seconds = p.Remaining is { } r ? (int)Math.Min(int.MaxValue, r.TotalSeconds) : -1;
        messenger.Progress($"{p.Loaded} of {p.BatchCount} windows loaded, {p.InFlight} in flight, {DisplayFormat.Count(p.RowsLoaded, "row")}; {now}", percent, force: p.Rows == 0, secondsRemaining: seconds);
    }

    /// <summary>
    /// The legacy-API deprecation warning once per destination, on its first bundle sync: a scheduled run is a new process
    /// every time, and a warning in every run's log is noise. Later runs say it as verbose text.
    /// </summary>
    private void NoteLegacyApi(SyncDestination destination)
    {
        bool loadedBefore;
        try
        {
            using var store = destination.OpenStore();
            loadedBefore = store.GetLoadedBatches().Any(b => b.Key.StartsWith("bundle:", StringComparison.Ordinal));
        }
        catch (Exception) { loadedBefore = false; } // the run itself reports why the destination cannot be read
        if (loadedBefore) Verbose(GetFullStoryBundleCommand.LegacyApiWarning);
        else GetFullStoryBundleCommand.WarnLegacyOnce(this);
    }
}
