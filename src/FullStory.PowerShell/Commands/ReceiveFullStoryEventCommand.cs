using System.Management.Automation;
using FullStory.Engine.Api;
using FullStory.Engine.Events;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>
/// Receive-FullStoryEvent: streams FullStory events as objects, from bundles (piped from Get-FullStoryBundle, or by id),
/// from a Segment Export time range, or from files FullStory delivered (.json.gz, .json, .ndjson).
/// </summary>
[Cmdlet(VerbsCommunications.Receive, "FullStoryEvent", DefaultParameterSetName = BundleSet)]
[Alias("Receive-FullStoryEvents")]
[OutputType(typeof(FullStoryEvent))]
public sealed class ReceiveFullStoryEventCommand : FullStorySessionCmdlet
{
    private const string BundleSet = "Bundle";
    private const string IdSet = "Id";
    private const string ExportSet = "SegmentExport";
    private const string PathSet = "Path";
    private const string LiteralPathSet = "LiteralPath";

    private PipelineMessenger? messenger;
    private long eventsWritten;

    /// <summary>Bundles to download, usually piped from Get-FullStoryBundle.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = BundleSet)]
    public FullStoryBundle[]? Bundle { get; set; }

    /// <summary>Bundle ids to download; also bound from the Id property of piped objects (e.g. rows of a saved bundle list).
    /// FullStoryBundle objects bind to -Bundle instead (by value, first).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = IdSet)]
    public long[]? Id { get; set; }

    /// <summary>Start of the Segment Export window (EventStart at or after it). A DateTime without a kind is taken as UTC.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ExportSet)]
    public DateTime Start { get; set; }

    /// <summary>End of the Segment Export window (EventStart before it).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ExportSet)]
    public DateTime End { get; set; }

    /// <summary>The segment to export: everyone (all data) or a saved segment's id.</summary>
    [Parameter(ParameterSetName = ExportSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(Completers.SegmentIdCompleter))]
    public string SegmentId { get; set; } = "everyone";

    /// <summary>How many exports FullStory prepares at once (default 4) for a range longer than one window (7 days); events still come in time order.</summary>
    [Parameter(ParameterSetName = ExportSet)]
    [ValidateRange(1, 32)]
    public int ThrottleLimit { get; set; } = SegmentExportSchedule.DefaultThrottleLimit;

    /// <summary>Files to read, with wildcards: bundles or exports as FullStory delivers them (.json.gz, .json, .ndjson).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [SupportsWildcards]
    [Alias("FullName")]
    public string[]? Path { get; set; }

    /// <summary>Files to read, taken literally (no wildcards).</summary>
    [Parameter(Mandatory = true, ParameterSetName = LiteralPathSet)]
    [Alias("PSPath")]
    public string[]? LiteralPath { get; set; }

    /// <summary>Keep every raw download in this folder exactly as received (replay later with -Path).</summary>
    [Parameter(ParameterSetName = BundleSet)]
    [Parameter(ParameterSetName = IdSet)]
    [Parameter(ParameterSetName = ExportSet)]
    public string? OutDirectory { get; set; }

    protected override bool RequiresSession => ParameterSetName is not (PathSet or LiteralPathSet);

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        messenger = new PipelineMessenger(this, 2, "Receiving FullStory events");
        if (ParameterSetName is BundleSet or IdSet) GetFullStoryBundleCommand.WarnLegacyOnce(this);
    }

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case BundleSet:
                foreach (var b in Bundle!) ReceiveBundle(b.Id);
                break;
            case IdSet:
                foreach (var id in Id!) ReceiveBundle(id);
                break;
            case ExportSet:
                ReceiveExport();
                break;
            default:
                foreach (var file in ResolveFiles()) ReceiveFile(file);
                break;
        }
    }

    protected override void EndProcessing()
    {
        messenger?.Complete();
        Verbose($"Wrote {eventsWritten:N0} events.");
    }

    private string? ArchiveDirectory => OutDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(OutDirectory);

    private void ReceiveBundle(long id)
    {
        Verbose($"Downloading bundle {id}.");
        Stream(() => CurrentSession.GetClient().ReadBundle(id, ArchiveDirectory, messenger!.Observer, CancellationToken), $"bundle {id}", id);
    }

    /// <summary>
    /// A long range is exported in windows of up to 7 days with several exports in flight; the windows' events are written
    /// in time order, each window streamed from its download while later ones are still being prepared (only the window being
    /// written is downloaded). Waiting happens here, on the pipeline thread, so progress and verbose messages show meanwhile.
    /// </summary>
    private void ReceiveExport()
    {
        var range = new SegmentExportRequest(AsUtc(Start), AsUtc(End), SegmentId);
        IEnumerable<SegmentExportRequest> windows = null!;
        try { windows = SegmentExportPlan.Cover(range, SegmentExportPlan.DefaultMaxWindow); }
        catch (ArgumentException ex) { ThrowTerminatingError(ToErrorRecord(ex, range)); }
        long total = SegmentExportPlan.CountCover(range, SegmentExportPlan.DefaultMaxWindow);
        Verbose(total == 1
            ? $"Requesting the Segment Export of {range}."
            : $"Requesting the Segment Export of {range} in {total} windows of up to {SegmentExportPlan.DefaultMaxWindow.TotalDays:0} days, {ThrottleLimit} in flight at most.");

        var client = CurrentSession.GetClient();
        var observer = messenger!.Observer;
        using var scheduler = client.ScheduleSegmentExports(windows, new SegmentExportSchedule { ThrottleLimit = ThrottleLimit }, observer, CancellationToken);
        long received = 0;
        void Waiting()
        {
            messenger.Drain();
            var status = scheduler.Status;
            var next = status.InFlight.Count > 0 ? status.InFlight[0] : default;
            messenger.Progress(() => $"Waiting for FullStory to prepare the export of {next.Window?.ToString() ?? range.ToString()} ({next.Percent}% done); " +
                $"{received} of {total + status.Splits} window(s) received, {status.Running + status.Ready} in flight", (int)(100 * received / Math.Max(1, total + status.Splits)), force: true);
        }

        using var ready = scheduler.InOrder(Waiting).GetEnumerator();
        while (true)
        {
            try
            {
                if (!ready.MoveNext()) break;
            }
            catch (Exception ex) when (!IsStopping(ex) && ex is not PipelineStoppedException)
            {
                messenger.Drain();
                // A window FullStory could not export: FullStory's own error (FAILED, refused), about that window.
                var failed = ex as SegmentExportWindowFailedException;
                ThrowTerminatingError(ToErrorRecord(failed?.InnerException ?? ex, (object?)failed?.Window ?? range));
            }
            var window = ready.Current;
            Stream(() => client.ReadExportResults(window.SearchExportId, window.Request, ArchiveDirectory, observer, CancellationToken), window.Request.ToString(), window.Request);
            received++;
        }
    }

    private void ReceiveFile(string path)
    {
        Verbose($"Reading {path}.");
        // One bad file is reported and the others are still read; a download that keeps failing stops the command.
        Stream(() => ReadFile(path), path, path, terminating: false);
    }

    private IEnumerable<FullStoryEvent> ReadFile(string path)
    {
        using var reader = new EventStreamReader(File.OpenRead(path), path, "file:" + path) { CancellationToken = CancellationToken };
        foreach (var e in reader.ReadAll()) yield return e;
    }

    private void Stream(Func<IEnumerable<FullStoryEvent>> source, string what, object target, bool terminating = true)
    {
        long before = eventsWritten;
        Func<string> status = () => $"{what}: {eventsWritten - before:N0} events"; // made once: Progress runs per event
        try
        {
            // Download and parse on a worker thread while this one writes to the pipeline: the two overlap.
            foreach (var e in ReadAhead.Buffered(source(), cancellationToken: CancellationToken))
            {
                messenger!.Drain();
                WriteObject(e);
                eventsWritten++;
                messenger.Progress(status);
            }
        }
        catch (Exception ex) when (!IsStopping(ex) && ex is not PipelineStoppedException)
        {
            messenger!.Drain();
            if (terminating) ThrowTerminatingError(ToErrorRecord(ex, target));
            WriteError(ToErrorRecord(ex, target));
            return;
        }
        messenger!.Drain();
        Verbose($"{what}: {eventsWritten - before:N0} events.");
    }

    private IEnumerable<string> ResolveFiles()
    {
        if (ParameterSetName == LiteralPathSet)
        {
            foreach (var p in LiteralPath!) yield return GetUnresolvedProviderPathFromPSPath(p);
            yield break;
        }
        foreach (var p in Path!)
        {
            ProviderInfo provider;
            List<string> resolved;
            try
            {
                resolved = GetResolvedProviderPathFromPSPath(p, out provider).ToList();
            }
            catch (ItemNotFoundException ex)
            {
                WriteError(new ErrorRecord(ex, "FullStory.FileNotFound", ErrorCategory.ObjectNotFound, p));
                continue;
            }
            foreach (var r in resolved) yield return r;
        }
    }
}
