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

    /// <summary>Start of the Segment Export window (EventStart at or after it). A DateTime, DateTimeOffset, event timestamp or ISO 8601 string (UTC without an offset).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ExportSet)]
    [UtcTimeTransformation]
    public DateTime Start { get; set; }

    /// <summary>End of the Segment Export window (EventStart before it).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ExportSet)]
    [UtcTimeTransformation]
    public DateTime End { get; set; }

    /// <summary>The segment to export: everyone (all data) or a saved segment's id.</summary>
    [Parameter(ParameterSetName = ExportSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(Completers.SegmentIdCompleter))]
    public string SegmentId { get; set; } = "everyone";

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
        Verbose($"Wrote {DisplayFormat.Count(eventsWritten, "event")}.");
    }

    private string? ArchiveDirectory => OutDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(OutDirectory);

    private void ReceiveBundle(long id)
    {
        Verbose($"Downloading bundle {id}.");
        Stream(() => CurrentSession.GetClient().ReadBundle(id, ArchiveDirectory, messenger!.Observer, CancellationToken), $"bundle {id}", id);
    }

    private void ReceiveExport()
    {
        var request = new SegmentExportRequest(AsUtc(Start), AsUtc(End), SegmentId);
        Verbose($"Requesting the Segment Export of {request}.");
        Stream(() => CurrentSession.GetClient().ReadSegmentExport(request, ArchiveDirectory, messenger!.Observer, CancellationToken), request.ToString(), request);
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
        Func<string> status = () => $"{what}: {DisplayFormat.Count(eventsWritten - before, "event")}"; // made once: Progress runs per event
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
        Verbose($"{what}: {DisplayFormat.Count(eventsWritten - before, "event")}.");
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
