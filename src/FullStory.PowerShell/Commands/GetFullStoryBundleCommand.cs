using System.Management.Automation;
using FullStory.Engine.Api;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>Get-FullStoryBundle: lists the legacy export bundles, paging past FullStory's 20 per call, oldest first.</summary>
[Cmdlet(VerbsCommon.Get, "FullStoryBundle")]
[OutputType(typeof(FullStoryBundle))]
public sealed class GetFullStoryBundleCommand : FullStorySessionCmdlet
{
    private static int deprecationWarned;

    /// <summary>Bundles that end after this time (default: one year ago). A DateTime, DateTimeOffset, event timestamp or ISO 8601 string (UTC without an offset).</summary>
    [Parameter(Position = 0)]
    [UtcTimeTransformation]
    public DateTime? Start { get; set; }

    /// <summary>Bundles that start before this time (applied here: FullStory's list has no end).</summary>
    [Parameter(Position = 1)]
    [UtcTimeTransformation]
    public DateTime? End { get; set; }

    protected override void EndProcessing()
    {
        var start = Start is { } s ? AsUtc(s) : DateTimeOffset.UtcNow.AddYears(-1);
        DateTimeOffset? end = End is { } e ? AsUtc(e) : null;
        if (end is not null && end <= start)
            ThrowTerminatingError(Error(new ArgumentException($"-End ({DisplayFormat.Time(end)}) must be after -Start ({DisplayFormat.Time(start)})."), "FullStory.InvalidRange", ErrorCategory.InvalidArgument, End));
        WarnLegacyOnce(this);

        var messenger = new PipelineMessenger(this, 1, "Listing FullStory bundles");
        try
        {
            int count = 0;
            foreach (var bundle in CurrentSession.GetClient().ListBundles(start, end, messenger.Observer, CancellationToken))
            {
                messenger.Drain();
                WriteObject(bundle);
                messenger.Progress(DisplayFormat.Count(++count, "bundle"));
            }
            Verbose($"Listed {DisplayFormat.Count(count, "bundle")} from {DisplayFormat.Time(start)}{(end is null ? "" : $" to {DisplayFormat.Time(end)}")}.");
        }
        catch (Exception ex) when (!IsStopping(ex) && ex is not PipelineStoppedException)
        {
            messenger.Drain();
            ThrowTerminatingError(ToErrorRecord(ex, start));
        }
        finally
        {
            messenger.Complete();
        }
    }

    internal const string LegacyApiWarning = "FullStory has deprecated the legacy bundle export API. It still works; to use the current Segment Export API instead, pass -Start and -End to Receive-FullStoryEvent, or -Api SegmentExport to Sync-FullStoryEvent.";

    /// <summary>FullStory has deprecated the legacy bundle API in favour of Segment Export; say so once per PowerShell session (process).</summary>
    internal static void WarnLegacyOnce(Cmdlet cmdlet)
    {
        if (Interlocked.Exchange(ref deprecationWarned, 1) == 0) cmdlet.WriteWarning(LegacyApiWarning);
    }
}
