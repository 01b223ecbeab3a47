using System.Globalization;
using System.Management.Automation;
using FullStory.Engine.Api;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// A TimeSpan parameter that refuses a bare number. PowerShell's own conversion reads <c>-WindowSize 60</c> as 60 ticks
/// (6 microseconds) and <c>-WindowSize '60'</c> as 60 days: neither is what anyone means, and guessing seconds or minutes
/// instead would make this parameter differ from every other TimeSpan in PowerShell. So a number without a unit is an
/// argument error that shows the forms that say what they mean. TimeSpans and strings such as '01:00:00' or '1.00:00:00'
/// bind as usual.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class TimeSpanArgumentAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
        switch (value)
        {
            case null or TimeSpan:
                return value;
            case sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal:
                throw Refuse(Convert.ToString(value, CultureInfo.InvariantCulture)!);
            case string text when IsBareNumber(text):
                throw Refuse(text.Trim());
            case string text when TimeSpan.TryParse(text.Trim(), CultureInfo.InvariantCulture, out var parsed):
                return parsed;
            default:
                return value; // PowerShell converts it (or says why it cannot)
        }
    }

    private static bool IsBareNumber(string text) =>
        double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    private static ArgumentTransformationMetadataException Refuse(string number) => new(
        $"'{number}' has no unit: PowerShell would read a bare number as ticks (or, quoted, as days). Give a time span such as " +
        $"(New-TimeSpan -Minutes {number}), (New-TimeSpan -Hours {number}), '01:00:00' (one hour) or '1.00:00:00' (one day).");
}

/// <summary>A Segment Export window size: at least one minute, whole seconds (see <see cref="SegmentExportPlan.ValidateWindowSize"/>).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class ValidateWindowSizeAttribute : ValidateArgumentsAttribute
{
    protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
    {
        if (arguments is not TimeSpan size) return;
        try { SegmentExportPlan.ValidateWindowSize(size); }
        catch (ArgumentException ex) { throw new ValidationMetadataException(ex.Message.Split(" (Parameter")[0]); }
    }
}

/// <summary>A timeout: positive (a load never waits forever).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class ValidatePositiveTimeSpanAttribute : ValidateArgumentsAttribute
{
    protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
    {
        if (arguments is TimeSpan t && t <= TimeSpan.Zero)
            throw new ValidationMetadataException($"The time span must be positive (it was {t}): a load never waits forever.");
    }
}
