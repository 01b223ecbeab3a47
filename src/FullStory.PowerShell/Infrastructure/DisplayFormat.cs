using System.Globalization;
using FullStory.Engine.Events;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// How the module shows times, durations and counts to a person: the same in every culture, and timestamps exactly as
/// the events print theirs (ISO 8601, UTC, milliseconds). Used by the format views (FullStory.format.ps1xml) and by
/// messages; the objects' properties stay typed (DateTimeOffset, TimeSpan) for scripts.
/// </summary>
public static class DisplayFormat
{
    /// <summary>ISO 8601 in UTC with milliseconds, e.g. 2026-11-29T00:00:00.000Z; empty for null. Takes DateTimeOffset, DateTime or an event timestamp.</summary>
    public static string Time(object? value) => Unwrap(value) switch
    {
        DateTimeOffset d => d.UtcDateTime.ToString(UtcTimestamp.IsoFormat, CultureInfo.InvariantCulture),
        // A DateTime without a kind is UTC, as the time parameters take it.
        DateTime d => UtcTimeTransformationAttribute.ToUtc(d).ToString(UtcTimestamp.IsoFormat, CultureInfo.InvariantCulture),
        UtcTimestamp t => t.ToString(),
        null => "",
        var other => other.ToString() ?? "",
    };

    /// <summary>
    /// A duration as a person reads it: "0.4 s" and "42.0 s" under a minute, then "3m 20s", "5h 12m", "1d 3h 49m"
    /// (days and hours, no more precision than matters); empty for null.
    /// </summary>
    public static string Duration(object? value)
    {
        if (Unwrap(value) is not TimeSpan span) return Unwrap(value)?.ToString() ?? "";
        if (span < TimeSpan.Zero) return "-" + Duration(span.Negate());
        if (span < TimeSpan.FromMinutes(1)) return span.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
        if (span < TimeSpan.FromHours(1)) return $"{span.Minutes}m {span.Seconds}s";
        if (span < TimeSpan.FromDays(1)) return $"{span.Hours}h {span.Minutes}m";
        return $"{(long)span.TotalDays}d {span.Hours}h {span.Minutes}m";
    }

    /// <summary>Bytes as megabytes with two decimals, the same in every culture; empty when unknown (0: e.g. events piped in, not downloaded).</summary>
    public static string Megabytes(long bytes) =>
        bytes <= 0 ? "" : (bytes / (1024.0 * 1024.0)).ToString("0.00", CultureInfo.InvariantCulture);

    /// <summary>A count with its noun: "1 event", "2,500 events" (thousands grouped as the current culture does).</summary>
    public static string Count(long count, string singular, string? plural = null) =>
        count.ToString("N0", CultureInfo.CurrentCulture) + " " + (count == 1 ? singular : plural ?? singular + "s");

    private static object? Unwrap(object? value) => value is System.Management.Automation.PSObject pso ? pso.BaseObject : value;
}
