namespace FullStory.Engine.Api;

/// <summary>
/// Cuts a time range into Segment Export windows, lazily: windows are produced as the scheduler asks for them, so a tiny
/// window size over a long range never becomes a list (issue 12: a millisecond window size once ate gigabytes).
/// </summary>
public static class SegmentExportPlan
{
    /// <summary>The largest window used unless told otherwise: big enough that a year is about 52 exports.</summary>
    public static readonly TimeSpan DefaultMaxWindow = TimeSpan.FromDays(7);

    /// <summary>The smallest window size accepted from a user: each window costs an export and a transaction.</summary>
    public static readonly TimeSpan MinimumWindowSize = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Refuses a window size that would run away (below <see cref="MinimumWindowSize"/>) or that does not fall on whole
    /// seconds (windows are asked for and recorded to the second).
    /// </summary>
    public static void ValidateWindowSize(TimeSpan size, string parameterName = "WindowSize")
    {
        if (size < MinimumWindowSize)
            throw new ArgumentException(
                $"-{parameterName} {size} is too small: each window is one export and one transaction, so the smallest allowed is {MinimumWindowSize} (one minute). Give a time span such as 01:00:00 or (New-TimeSpan -Days 1).",
                parameterName);
        if (size.Ticks % TimeSpan.TicksPerSecond != 0)
            throw new ArgumentException($"-{parameterName} {size} must be a whole number of seconds: windows are asked for and recorded to the second.", parameterName);
    }

    /// <summary>
    /// Windows of at most <paramref name="maxWindow"/> covering [range.Start, range.End) to the second, aligned to the start;
    /// the last one may be shorter. Each keeps the range's segment, format and fields.
    /// </summary>
    public static IEnumerable<SegmentExportRequest> Cover(SegmentExportRequest range, TimeSpan maxWindow)
    {
        ArgumentNullException.ThrowIfNull(range);
        ValidateWindowSize(maxWindow);
        var start = SegmentExportRequest.WholeSeconds(range.Start);
        var end = SegmentExportRequest.WholeSeconds(range.End);
        if (end <= start)
            throw new ArgumentException($"The export window is empty: End ({SegmentExportRequest.Iso(range.End)}) must be at least a second after Start ({SegmentExportRequest.Iso(range.Start)}).");
        return Windows();

        IEnumerable<SegmentExportRequest> Windows()
        {
            for (var s = start; s < end;)
            {
                var e = end - s <= maxWindow ? end : s + maxWindow;
                yield return range with { Start = s, End = e };
                s = e;
            }
        }
    }

    /// <summary>How many windows <see cref="Cover"/> makes, without making them.</summary>
    public static long CountCover(SegmentExportRequest range, TimeSpan maxWindow)
    {
        var span = SegmentExportRequest.WholeSeconds(range.End) - SegmentExportRequest.WholeSeconds(range.Start);
        if (span <= TimeSpan.Zero) return 0;
        return (span.Ticks + maxWindow.Ticks - 1) / maxWindow.Ticks;
    }
}
