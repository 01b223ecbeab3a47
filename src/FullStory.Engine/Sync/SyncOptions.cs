using FullStory.Engine.Api;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Sync;

/// <summary>Which FullStory API a sync reads.</summary>
public enum SyncApi
{
    /// <summary>The legacy Data Export bundles (what Stitch used): one batch per bundle.</summary>
    Bundles,
    /// <summary>FullStory's current Segment Export API: one batch per time window.</summary>
    SegmentExport,
}

/// <summary>What a scheduled sync does. Defaults suit a job that runs every 30 minutes.</summary>
public sealed class SyncOptions
{
    public SyncApi Api { get; set; } = SyncApi.Bundles;

    /// <summary>Where the FIRST run starts (default: one year before now). Later runs resume from the destination's bookmark.</summary>
    public DateTimeOffset? Start { get; set; }

    /// <summary>
    /// Segment Export: the largest window (one export and one transaction each), aligned to where the run starts. Null (the
    /// default): backfill windows of <see cref="DefaultBackfillWindow"/>, and windows of <see cref="ScheduleWindow"/> once a
    /// backfill window no longer fits before now - Lag. When set, backfill windows are this size and windows near now are
    /// this size or a day, whichever is smaller. At least one minute, whole seconds.
    /// </summary>
    public TimeSpan? WindowSize { get; set; }

    /// <summary>Segment Export: exports kept in flight at once (default 4). Windows are still loaded one at a time, oldest first.</summary>
    public int ThrottleLimit { get; set; } = SegmentExportSchedule.DefaultThrottleLimit;

    /// <summary>Segment Export: a window FullStory refuses or fails is split in halves down to this length before the run fails (default one hour).</summary>
    public TimeSpan MinimumWindow { get; set; } = SegmentExportSchedule.DefaultMinimumWindow;

    /// <summary>Backfill windows when <see cref="WindowSize"/> is not set: a year is about 52 exports.</summary>
    public static readonly TimeSpan DefaultBackfillWindow = SegmentExportPlan.DefaultMaxWindow;

    /// <summary>Windows near now: FullStory publishes a day at a time, so the data is never more than a day behind what it has.</summary>
    public static readonly TimeSpan ScheduleWindow = TimeSpan.FromDays(1);

    /// <summary>
    /// How long FullStory takes to publish data (about a day). Segment Export only asks for windows that end at least this
    /// long ago, so a window is complete when it is loaded; also the "up to date" allowance of <see cref="SyncSummary.IsUpToDate"/>.
    /// </summary>
    public TimeSpan Lag { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Segment Export: the segment (everyone = all data).</summary>
    public string SegmentId { get; set; } = "everyone";

    /// <summary>How long to wait for another run of the same destination to finish before giving up with Outcome Skipped (0 = do not wait).</summary>
    public TimeSpan LockWait { get; set; } = TimeSpan.Zero;

    /// <summary>Keep every raw download in this folder.</summary>
    public string? ArchiveDirectory { get; set; }

    /// <summary>"Now", injectable for tests.</summary>
    public Func<DateTimeOffset> Clock { get; set; } = () => DateTimeOffset.UtcNow;

    /// <summary>Progress for a UI, called on the thread that runs the sync.</summary>
    public Action<SyncProgress>? Progress { get; set; }

    /// <summary>Called after each batch loaded by this run.</summary>
    public Action<LoadReport>? BatchLoaded { get; set; }

    internal static readonly TimeSpan DefaultHistory = TimeSpan.FromDays(365);
}

/// <summary>
/// Where a sync is: batch <see cref="BatchNumber"/> of <see cref="BatchCount"/> (loaded or being loaded), <see cref="Rows"/>
/// rows of it so far. Segment Export also says how many exports are in flight, the rows loaded by the run and an estimate
/// of the time left.
/// </summary>
public sealed record SyncProgress(string Activity, string? BatchKey, int BatchNumber, int BatchCount, long Rows)
{
    public int PercentComplete => BatchCount <= 0 ? -1 : (int)Math.Clamp(100L * (BatchNumber - 1) / BatchCount, 0, 100);

    /// <summary>Batches this run has loaded so far.</summary>
    public int Loaded { get; init; }
    /// <summary>Segment Export: exports started and not yet loaded (running on FullStory's side, or ready and waiting).</summary>
    public int InFlight { get; init; }
    /// <summary>Rows this run has loaded so far (committed batches).</summary>
    public long RowsLoaded { get; init; }
    /// <summary>Time left, estimated from the time the loaded batches took; null until there is something to go by.</summary>
    public TimeSpan? Remaining { get; init; }
    /// <summary>What the run is waiting for, e.g. the state of the export it needs next; null while loading.</summary>
    public string? Waiting { get; init; }
}

/// <summary>What one sync run did (Stitch's extraction log and loading report in one), and how fresh the destination is.</summary>
public sealed class SyncSummary
{
    /// <summary>The run's number in the destination's history; null when it is not (yet) numbered: see <see cref="Message"/>.</summary>
    public long? RunId { get; internal set; }
    /// <summary>Succeeded, Failed, Cancelled or Skipped.</summary>
    public string Outcome { get; internal set; } = "Running";
    public SyncApi Api { get; internal set; }
    public string Destination { get; internal set; } = "";
    public string Table { get; internal set; } = "";
    public DateTimeOffset StartedAt { get; internal set; }
    public DateTimeOffset? EndedAt { get; internal set; }
    public TimeSpan? Duration => EndedAt - StartedAt;
    /// <summary>Batches (bundles or windows) this run loaded.</summary>
    public int Batches { get; internal set; }
    public long Rows { get; internal set; }
    /// <summary>Decompressed bytes read for the loaded batches.</summary>
    public long Bytes { get; internal set; }
    /// <summary>HTTP retries and re-downloads during the run.</summary>
    public int Retries { get; internal set; }
    /// <summary>End of the newest bundle or window in the destination: the data is complete up to here.</summary>
    public DateTimeOffset? DataThrough { get; internal set; }
    /// <summary>How far behind the data is: now - <see cref="DataThrough"/>.</summary>
    public TimeSpan? Lag { get; internal set; }
    /// <summary>True when the data is as fresh as FullStory allows: lag within about one day plus one bundle period / window.</summary>
    public bool IsUpToDate { get; internal set; }
    /// <summary>Why the run failed (the API key never appears here).</summary>
    public string? Error { get; internal set; }
    /// <summary>A sentence about the run, e.g. why it was skipped.</summary>
    public string? Message { get; internal set; }
    /// <summary>What each loaded batch did, oldest first.</summary>
    public IReadOnlyList<LoadReport> Loaded => loaded;

    internal readonly List<LoadReport> loaded = new();
    internal Exception? failure;

    /// <summary>The exception that failed the run (null unless Outcome is Failed), for error advice; a method so it never prints.</summary>
    public Exception? GetFailure() => failure;

    public override string ToString() =>
        $"{Outcome}: {Batches} batches, {Rows:N0} rows into {Destination} ({Table}); data through {DataThrough?.UtcDateTime.ToString("u") ?? "(nothing yet)"}";
}
