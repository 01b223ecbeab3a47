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

    /// <summary>How many exports FullStory prepares at once (default 4) for a range longer than one window (7 days); events still come in time order.</summary>
    [Parameter(ParameterSetName = ExportSet)]
    [ValidateRange(1, 32)]
    public int ThrottleLimit { get; set; } = SegmentExportSchedule.DefaultThrottleLimit;

    /// <summary>Files to read, with wildcards: bundles or exports as FullStory delivers them (.json.gz, .json, .ndjson).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    /// <summary>Files to read, taken literally (no wildcards: brackets are part of the name). Files piped from Get-ChildItem
    /// bind here by their PSPath, as with the built-in cmdlets.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralPathSet)]
    [Alias("PSPath", "LP", "FullName")]
    public string[]? LiteralPath { get; set; }

    /// <summary>Keep every raw download in this folder exactly as received (replay later with -Path).</summary>
    [Parameter(ParameterSetName = BundleSet)]
    [Parameter(ParameterSetName = IdSet)]
    [Parameter(ParameterSetName = ExportSet)]
    public string? OutDirectory { get; set; }

    // With pipeline input the parameter set is only known in ProcessRecord (files from Get-ChildItem need no session).
    protected override bool RequiresSession => !MyInvocation.ExpectingInput && !ReadsFiles;

    private bool ReadsFiles => ParameterSetName is PathSet or LiteralPathSet;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        messenger = new PipelineMessenger(this, 2, "Receiving FullStory events");
    }

    protected override void ProcessRecord()
    {
        if (!ReadsFiles) ThrowIfNoSession();
        // The deprecation is about downloading bundles, not about reading files.
        if (ParameterSetName is BundleSet or IdSet) GetFullStoryBundleCommand.WarnLegacyOnce(this);
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
        long before = eventsWritten;
        if (Stream(() => ReadFile(path), path, path, terminating: false) && eventsWritten == before)
            WriteWarning($"The file '{path}' holds no events: it is empty (no bytes, only whitespace, '[]' or an empty gzip).");
    }

    private IEnumerable<FullStoryEvent> ReadFile(string path)
    {
        using var reader = new EventStreamReader(File.OpenRead(path), path, "file:" + path) { CancellationToken = CancellationToken };
        foreach (var e in reader.ReadAll()) yield return e;
    }

    /// <summary>Writes the events of one source; false when it failed (reported as an error).</summary>
    private bool Stream(Func<IEnumerable<FullStoryEvent>> source, string what, object target, bool terminating = true)
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
            return false;
        }
        messenger!.Drain();
        Verbose($"{what}: {DisplayFormat.Count(eventsWritten - before, "event")}.");
        return true;
    }

    /// <summary>
    /// The files to read. What matches nothing or is not a file is an error that says what to pass instead (like
    /// Get-Content), never silence; the other paths are still read.
    /// </summary>
    private IEnumerable<string> ResolveFiles()
    {
        if (ParameterSetName == LiteralPathSet)
        {
            foreach (var p in LiteralPath!)
            {
                string path = GetUnresolvedProviderPathFromPSPath(p);
                if (IsUsableFile(p, path)) yield return path;
            }
            yield break;
        }
        foreach (var p in Path!)
        {
            List<string> resolved;
            try
            {
                resolved = GetResolvedProviderPathFromPSPath(p, out var provider).ToList();
                if (provider.ImplementingType != typeof(Microsoft.PowerShell.Commands.FileSystemProvider))
                {
                    WriteError(Error(new ArgumentException($"'{p}' is not a file system path ({provider.Name}): pass files (.json.gz, .json, .ndjson)."),
                        "FullStory.NotAFile", ErrorCategory.InvalidArgument, p));
                    continue;
                }
            }
            catch (ItemNotFoundException)
            {
                resolved = [];
            }
            if (resolved.Count == 0)
            {
                WriteError(Error(new ItemNotFoundException(NothingMatches(p)), "FullStory.FileNotFound", ErrorCategory.ObjectNotFound, p));
                continue;
            }
            foreach (var r in resolved)
                if (IsUsableFile(p, r)) yield return r;
        }
    }

    private string NothingMatches(string pattern)
    {
        string message = $"Cannot find a file that matches '{pattern}'.";
        if (pattern.IndexOfAny(['[', ']']) < 0) return message;
        // Brackets are wildcards in -Path ([1] matches the character 1): a name that contains them needs -LiteralPath.
        bool literalExists = File.Exists(GetUnresolvedProviderPathFromPSPath(pattern));
        return message + (literalExists ? " A file with exactly that name exists: its brackets" : " Brackets")
            + $" are wildcard characters in -Path; to read a file whose name contains them, use -LiteralPath '{pattern}'.";
    }

    private bool IsUsableFile(string given, string path)
    {
        if (given.Contains("::")) given = path; // a provider-qualified PSPath from Get-ChildItem: show the plain path
        if (Directory.Exists(path))
        {
            string example = System.IO.Path.Combine(given, "*.json.gz");
            WriteError(Error(new ArgumentException($"'{given}' is a directory. Pass the files in it, e.g. -Path '{example}'."),
                "FullStory.PathIsDirectory", ErrorCategory.InvalidArgument, given, $"Receive-FullStoryEvent -Path '{example}'"));
            return false;
        }
        if (!File.Exists(path))
        {
            WriteError(Error(new ItemNotFoundException($"Cannot find the file '{given}' because it does not exist."),
                "FullStory.FileNotFound", ErrorCategory.ObjectNotFound, given));
            return false;
        }
        return true;
    }
}
