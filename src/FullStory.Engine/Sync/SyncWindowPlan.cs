using FullStory.Engine.Api;

namespace FullStory.Engine.Sync;

/// <summary>
/// The Segment Export windows of one sync run, from the bookmark to the horizon (now - Lag), produced lazily.
/// <para>
/// Backfill windows are large (<see cref="Backfill"/>, 7 days unless -WindowSize says otherwise), so a year is about 52
/// exports instead of 365. Once a backfill window no longer fits before the horizon, windows follow the schedule
/// (<see cref="Schedule"/>: one day, or -WindowSize when smaller), so a job that runs every 30 minutes loads each day as soon as
/// FullStory has published it, not a week later. Only whole windows that end by the horizon are asked for: what is loaded
/// is complete.
/// </para>
/// <para>
/// Windows are aligned to where the run starts: the bookmark (the end of the newest loaded window, whatever size it was:
/// day windows loaded by older versions resume the same way) or, on a first run, -Start. A rerun after an interruption
/// therefore starts exactly where the last loaded window ended.
/// </para>
/// </summary>
internal sealed class SyncWindowPlan
{
    public SyncWindowPlan(DateTimeOffset cursor, DateTimeOffset horizon, TimeSpan backfill, TimeSpan schedule, string segmentId)
    {
        Cursor = SegmentExportRequest.WholeSeconds(cursor);
        Horizon = horizon;
        Backfill = backfill;
        Schedule = schedule < backfill ? schedule : backfill;
        SegmentId = segmentId;
    }

    public DateTimeOffset Cursor { get; }
    public DateTimeOffset Horizon { get; }
    public TimeSpan Backfill { get; }
    public TimeSpan Schedule { get; }
    public string SegmentId { get; }

    private long BackfillCount => Backfill > Schedule && Horizon > Cursor ? (Horizon - Cursor).Ticks / Backfill.Ticks : 0;

    private long ScheduleCount
    {
        get
        {
            var rest = Horizon - (Cursor + TimeSpan.FromTicks(BackfillCount * Backfill.Ticks));
            return rest > TimeSpan.Zero ? rest.Ticks / Schedule.Ticks : 0;
        }
    }

    /// <summary>How many windows the plan holds (computed, not counted).</summary>
    public long Count => BackfillCount + ScheduleCount;

    /// <summary>Where the last window ends (= <see cref="Cursor"/> when there is none).</summary>
    public DateTimeOffset End => Cursor + TimeSpan.FromTicks(BackfillCount * Backfill.Ticks + ScheduleCount * Schedule.Ticks);

    /// <summary>The windows, oldest first, made one at a time as they are asked for.</summary>
    public IEnumerable<SegmentExportRequest> Windows()
    {
        var t = Cursor;
        for (long i = BackfillCount; i > 0; i--, t += Backfill) yield return new SegmentExportRequest(t, t + Backfill, SegmentId);
        for (long i = ScheduleCount; i > 0; i--, t += Schedule) yield return new SegmentExportRequest(t, t + Schedule, SegmentId);
    }
}
