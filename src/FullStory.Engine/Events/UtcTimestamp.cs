using System.Globalization;

namespace FullStory.Engine.Events;

/// <summary>
/// A FullStory timestamp: a UTC instant with millisecond precision.
/// A struct of its own (not a bare DateTimeOffset) because PowerShell's Export-Csv and string conversion
/// call ToString(), which for DateTimeOffset drops the milliseconds and follows the current culture.
/// This prints ISO 8601 UTC with milliseconds in every culture, and converts implicitly to and from
/// DateTimeOffset and DateTime so comparisons like <c>$_.EventStart -gt (Get-Date).AddDays(-1)</c> work.
/// </summary>
public readonly struct UtcTimestamp : IComparable<UtcTimestamp>, IComparable, IEquatable<UtcTimestamp>, IFormattable
{
    public const string IsoFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public UtcTimestamp(DateTimeOffset value) => Value = value.ToUniversalTime();

    /// <summary>The instant, as a DateTimeOffset with a zero offset.</summary>
    public DateTimeOffset Value { get; }

    /// <summary>The instant as a DateTime of kind Utc.</summary>
    public DateTime UtcDateTime => Value.UtcDateTime;

    public long UnixTimeMilliseconds => Value.ToUnixTimeMilliseconds();

    public DateTimeOffset AddMilliseconds(double value) => Value.AddMilliseconds(value);
    public DateTimeOffset AddSeconds(double value) => Value.AddSeconds(value);
    public DateTimeOffset AddMinutes(double value) => Value.AddMinutes(value);
    public DateTimeOffset AddHours(double value) => Value.AddHours(value);
    public DateTimeOffset AddDays(double value) => Value.AddDays(value);

    public static UtcTimestamp Parse(string text) =>
        new(DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal));

    public static implicit operator DateTimeOffset(UtcTimestamp t) => t.Value;
    public static implicit operator DateTime(UtcTimestamp t) => t.Value.UtcDateTime;
    public static implicit operator UtcTimestamp(DateTimeOffset value) => new(value);
    // DateTime of kind Local or Unspecified is taken as local time, as DateTimeOffset's constructor does.
    public static implicit operator UtcTimestamp(DateTime value) => new(value.Kind == DateTimeKind.Utc
        ? new DateTimeOffset(value, TimeSpan.Zero) : new DateTimeOffset(value));

    public int CompareTo(UtcTimestamp other) => Value.CompareTo(other.Value);
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        UtcTimestamp t => CompareTo(t),
        DateTimeOffset d => Value.CompareTo(d),
        DateTime d => CompareTo((UtcTimestamp)d),
        _ => throw new ArgumentException($"Cannot compare a timestamp with {obj.GetType().Name}.", nameof(obj)),
    };

    public bool Equals(UtcTimestamp other) => Value.Equals(other.Value);
    public override bool Equals(object? obj) => obj is UtcTimestamp t && Equals(t);
    public override int GetHashCode() => Value.GetHashCode();
    public static bool operator ==(UtcTimestamp a, UtcTimestamp b) => a.Equals(b);
    public static bool operator !=(UtcTimestamp a, UtcTimestamp b) => !a.Equals(b);
    public static bool operator <(UtcTimestamp a, UtcTimestamp b) => a.Value < b.Value;
    public static bool operator >(UtcTimestamp a, UtcTimestamp b) => a.Value > b.Value;
    public static bool operator <=(UtcTimestamp a, UtcTimestamp b) => a.Value <= b.Value;
    public static bool operator >=(UtcTimestamp a, UtcTimestamp b) => a.Value >= b.Value;

    /// <summary>ISO 8601 in UTC with milliseconds, e.g. 2020-08-27T06:20:26.900Z, in every culture.</summary>
    public override string ToString() => Value.UtcDateTime.ToString(IsoFormat, CultureInfo.InvariantCulture);

    public string ToString(string? format, IFormatProvider? formatProvider) =>
        string.IsNullOrEmpty(format) ? ToString() : Value.ToString(format, formatProvider ?? CultureInfo.InvariantCulture);
}
