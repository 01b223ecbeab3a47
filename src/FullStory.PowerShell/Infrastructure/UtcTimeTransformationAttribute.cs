using System.Globalization;
using System.Management.Automation;
using System.Text.RegularExpressions;
using FullStory.Engine.Events;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// Lets a time parameter (-Start, -End) take what PowerShell users have at hand, and binds it as a DateTime of kind Utc:
/// <list type="bullet">
/// <item>a DateTime: Local (Get-Date) is converted to UTC; Unspecified ([datetime]'2026-01-01') is taken as UTC;</item>
/// <item>a DateTimeOffset: its instant;</item>
/// <item>an event's own timestamp (e.g. <c>$event.EventStart</c>, a bundle's Start);</item>
/// <item>an ISO 8601 string, with or without a time and an offset: '2026-02-01', '2026-02-01T08:00', '2026-02-01 08:00:00Z',
/// '2026-02-01T09:00:00.250+01:00'. Without an offset the time is UTC.</item>
/// </list>
/// Other strings are refused, not read in some culture's order: '01.02.2026' is the 1st of February in Germany and the
/// 2nd of January in the US, and a scheduled task must not depend on the account's culture. (Get-Date '01.02.2026')
/// reads it in the current culture for those who want that.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class UtcTimeTransformationAttribute : ArgumentTransformationAttribute
{
    // yyyy-MM-dd, optionally T or space and hh:mm[:ss[.fffffff]], optionally Z or ±hh[:mm] / ±hhmm.
    private static readonly Regex Iso8601 = new(
        @"^\s*\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,7})?)?)?\s*(?<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?\s*$",
        RegexOptions.CultureInvariant);

    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            DateTime d => ToUtc(d),
            DateTimeOffset d => d.UtcDateTime,
            UtcTimestamp t => t.UtcDateTime,
            string s => Parse(s),
            _ => inputData, // $null and anything else: PowerShell's own conversion decides (and explains a failure)
        };
    }

    /// <summary>Local converted to UTC; Unspecified taken as UTC (FullStory's times are UTC).</summary>
    internal static DateTime ToUtc(DateTime value) => value.Kind switch
    {
        DateTimeKind.Local => value.ToUniversalTime(),
        _ => DateTime.SpecifyKind(value, DateTimeKind.Utc),
    };

    internal static DateTime Parse(string text)
    {
        if (Iso8601.IsMatch(text))
        {
            string normalized = text.Trim().Replace(',', '.');
            if (DateTimeOffset.TryParse(normalized, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var parsed))
                return parsed.UtcDateTime;
            throw new ArgumentTransformationMetadataException($"'{text}' is not a valid date and time (check the month, day and hour).");
        }
        throw new ArgumentTransformationMetadataException(
            $"'{text}' is not an ISO 8601 date. Write it year first, e.g. '2026-02-01', '2026-02-01T08:00' (UTC) or '2026-02-01T09:00+01:00', " +
            "so it means the same in every culture; or pass a [datetime] or [datetimeoffset], e.g. (Get-Date '" + text + "') to read it in the current culture.");
    }
}
