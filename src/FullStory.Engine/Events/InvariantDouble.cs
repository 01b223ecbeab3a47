using System.Globalization;

namespace FullStory.Engine.Events;

/// <summary>
/// A floating-point field value that prints the same in every culture (0.4914, never 0,4914). PowerShell's Export-Csv and
/// string conversion call ToString(), which for double follows the current culture; this keeps CSV output exact and
/// round-trippable. Converts implicitly to and from double, so <c>$_.EventCumulativeLayoutShift -gt 0.1</c> works.
/// </summary>
public readonly struct InvariantDouble : IComparable<InvariantDouble>, IComparable, IEquatable<InvariantDouble>, IFormattable
{
    public InvariantDouble(double value) => Value = value;

    public double Value { get; }

    public static implicit operator double(InvariantDouble d) => d.Value;
    public static implicit operator InvariantDouble(double value) => new(value);

    public int CompareTo(InvariantDouble other) => Value.CompareTo(other.Value);
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        InvariantDouble d => CompareTo(d),
        IConvertible c => Value.CompareTo(c.ToDouble(CultureInfo.InvariantCulture)),
        _ => throw new ArgumentException($"Cannot compare a number with {obj.GetType().Name}.", nameof(obj)),
    };

    public bool Equals(InvariantDouble other) => Value.Equals(other.Value);
    public override bool Equals(object? obj) => obj is InvariantDouble d && Equals(d);
    public override int GetHashCode() => Value.GetHashCode();

    /// <summary>The shortest text that parses back to the same double, in the invariant culture.</summary>
    public override string ToString() => Value.ToString("R", CultureInfo.InvariantCulture);
    public string ToString(string? format, IFormatProvider? formatProvider) => Value.ToString(format ?? "R", formatProvider ?? CultureInfo.InvariantCulture);
}
