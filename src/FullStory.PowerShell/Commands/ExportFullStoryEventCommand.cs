using System.Management.Automation;
using FullStory.Engine.Api;
using FullStory.Engine.Diagnostics;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>
/// Export-FullStoryEvent: loads FullStory events append-only, one row per event, into a table (events by default) in
/// an embedded SQLite database (fullstory.db in the current location unless -Path says otherwise) or in SQL Server
/// (-ConnectionString). Every row carries its source (_fs_batch: bundle, export window or file) and its position in it
/// (_fs_index), and the destination records each source as complete or partial, so whatever the pipeline does — filter,
/// sort, stop early, run twice — every event lands exactly once: events the destination holds already are skipped, a
/// source recorded complete is skipped whole, and a complete load of a source (bundles from Get-FullStoryBundle, or a
/// sync) replaces an earlier partial one in one transaction. Events without a Source load as pipeline:&lt;new guid&gt;
/// and cannot be recognised if loaded again.
/// </summary>
/// <remarks>
/// Bundles (the fast path) load through the engine's BatchLoader, one transaction per bundle and no object per event.
/// Events load through the engine's PipelineEventLoader (a worker thread, a bounded queue, a transaction per chunk);
/// ShouldProcess and verbose text asked for by the worker run on the pipeline thread through the PipelineMessenger,
/// which the pipeline thread drains whenever it waits.
/// </remarks>
[Cmdlet(VerbsData.Export, "FullStoryEvent", SupportsShouldProcess = true, DefaultParameterSetName = SqliteSet)]
[Alias("Export-FullStoryEvents")]
[OutputType(typeof(LoadReport))]
public sealed class ExportFullStoryEventCommand : FullStoryLoadingCmdlet, IDisposable
{
    private IEventStore? store;
    private string tableName = "events";
    private PipelineMessenger? messenger;
    private PipelineEventLoader? eventLoader;
    private Func<FullStoryEvent, IReadOnlyList<LoadReport>>? addEvent;
    private BatchLoader? bundleLoader;
    private long sourcesSkipped, eventsSkipped, errors;
    private bool stopped; // a fatal error or a declined table: the rest of the input is not loaded

    /// <summary>FullStory events, usually piped from Receive-FullStoryEvent (filter, sort or cut them as you like: nothing is lost or loaded twice).</summary>
    [Parameter(ValueFromPipeline = true)]
    [AllowEmptyCollection]
    public FullStoryEvent[]? InputObject { get; set; }

    /// <summary>
    /// Bundles, usually piped from Get-FullStoryBundle: the fast path. Each is downloaded, parsed and bulk-loaded in one
    /// transaction without a PowerShell object per event; a bundle already loaded is not downloaded at all.
    /// </summary>
    [Parameter(ValueFromPipeline = true)]
    public FullStoryBundle[]? Bundle { get; set; }

    /// <summary>Keep every raw bundle download in this folder exactly as received (bundle input only).</summary>
    [Parameter]
    public string? OutDirectory { get; set; }

    protected override void BeginProcessing()
    {
        DebugInvocation();
        messenger = new PipelineMessenger(this, 3, "Loading FullStory events");
        var options = LoadingOptions();
        options.Log = message => messenger.Verbose(message);
        options.ConfirmSchemaChange = change => messenger.Invoke(() => ShouldProcess(store?.Destination ?? tableName, change), CancellationToken);
        var destination = ResolveDestination(options, DatabaseAccess.Write);
        tableName = destination.TableName;
        store = destination.OpenStore();
        Verbose($"Loading into table {tableName} of {store.Destination}.");
    }

    protected override void ProcessRecord()
    {
        if (stopped) return;
        try
        {
            if (Bundle is not null) LoadBundles(Bundle);
            else if (InputObject is not null) LoadEvents(InputObject);
        }
        catch (OperationCanceledException) when (CancellationToken.IsCancellationRequested)
        {
            eventLoader?.Abandon();
            throw new PipelineStoppedException();
        }
    }

    protected override void EndProcessing()
    {
        try
        {
            if (eventLoader is not null && !stopped) Report(static loader => loader.Complete(), eventLoader);
        }
        catch (OperationCanceledException) when (CancellationToken.IsCancellationRequested)
        {
            eventLoader?.Abandon();
            throw new PipelineStoppedException();
        }
        messenger?.Complete();
        if (eventLoader is { EventsDeclined: > 0 } declined)
            Verbose($"{declined.EventsDeclined:N0} events were not loaded: their sources were not confirmed.");
        if (sourcesSkipped > 0)
            Verbose($"{sourcesSkipped:N0} sources ({eventsSkipped:N0} events) were already loaded into {tableName} and were skipped.");
    }

    private void LoadEvents(FullStoryEvent[] events)
    {
        eventLoader ??= new PipelineEventLoader(store!, messenger!.Drain,
            admitSource: key => ShouldProcess(store!.Destination, $"Load events of {key} into table {tableName}"),
            cancellationToken: CancellationToken);
        if (eventLoader.EventsSeen == 0)
            Verbose($"Events without a Source are loaded as batch {eventLoader.FallbackKey}: they cannot be recognised if loaded again.");
        foreach (var ev in events)
        {
            if (ev is null) continue;
            Report(addEvent ??= eventLoader.Add, ev); // a cached delegate: no allocation per event
            if (stopped) return;
        }
        messenger!.Drain();
    }

    /// <summary>Writes the reports of a committed chunk; a failed chunk is a non-terminating error (its sources can be loaded again).</summary>
    private void Report<T>(Func<T, IReadOnlyList<LoadReport>> step, T argument)
    {
        IReadOnlyList<LoadReport> reports;
        try
        {
            reports = step(argument);
        }
        catch (ArgumentException ex) when (ex.ParamName == "Source")
        {
            errors++;
            WriteError(Error(ex, "FullStory.InvalidBatch", ErrorCategory.InvalidData, null, "Events need a Source of at most 320 characters (as Receive-FullStoryEvent sets it)."));
            return;
        }
        catch (PipelineLoadException ex)
        {
            messenger!.Drain();
            HandleLoadFailure(ex.InnerException!, ex.Sources.Count == 1 ? ex.Sources[0] : string.Join(", ", ex.Sources), ex.Message);
            return;
        }
        // Every event: the worker's messages reach the pipeline as they happen (a downstream Select-Object -First stops it in time).
        messenger!.Drain();
        foreach (var r in reports) WriteReport(r);
    }

    private void WriteReport(LoadReport report)
    {
        if (report.AlreadyLoaded)
        {
            sourcesSkipped++;
            eventsSkipped += report.SkippedEvents;
            Verbose($"{report.BatchKey} is already loaded into {tableName}; skipped.");
        }
        WriteObject(report);
    }

    /// <summary>
    /// A table that cannot hold the data, or a declined table, stops the command (every further load would fail the same
    /// way); any other failure is reported for its batch, which was rolled back, and the command goes on.
    /// </summary>
    private void HandleLoadFailure(Exception cause, string key, string? message = null)
    {
        switch (cause)
        {
            case SchemaChangeDeclinedException declined:
                stopped = true;
                Verbose($"Not loaded: '{declined.Change}' was not confirmed; the rest of the input is not loaded either.");
                return;
            case IncompatibleTableException incompatible:
                stopped = true;
                ThrowTerminatingError(Error(incompatible, "FullStory.IncompatibleTable", ErrorCategory.InvalidData, tableName,
                    $"Pass another -Table (a new table is created with the right types), or migrate the columns named to the types named."));
                return;
        }
        errors++;
        // The id stays FullStory.ExportFailed (scripts test it); the category and advice come from what failed.
        var advice = FailureAdvisor.Describe(cause);
        var failure = message is null ? advice.Exception : new InvalidOperationException(message, advice.Exception);
        WriteError(Error(failure, "FullStory.ExportFailed", advice.Kind == FailureKind.Unknown ? ErrorCategory.WriteError : CategoryOf(advice.Kind), key,
            (advice.RecommendedAction is { } action ? action + " " : "Fix the cause (connection, permissions, disk space). ") +
            $"Nothing of {key} was written by this load; run the command again: what is already loaded is recognised and skipped."));
    }

    /// <summary>The fast path: each bundle downloaded and loaded by the engine's BatchLoader, on the pipeline thread.</summary>
    private void LoadBundles(FullStoryBundle[] bundles)
    {
        if (bundleLoader is null)
        {
            ActiveSession = Session ?? DefaultSessionStore.Get();
            if (ActiveSession is null)
                ThrowTerminatingError(Error(new InvalidOperationException("There is no FullStory session to download the bundles. Run Connect-FullStory -ApiKey <key> first, or pass -Session."),
                    "FullStory.NotConnected", ErrorCategory.ConnectionError, null));
            var m = messenger!;
            bundleLoader = new BatchLoader(ActiveSession!, store!, m.Observer)
            {
                ArchiveDirectory = OutDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(OutDirectory),
                RowProgress = (key, rows) => m.Progress(() => $"{key}: {DisplayFormat.Count(rows, "row")}"),
            };
        }
        foreach (var bundle in bundles)
        {
            if (bundle is null) continue;
            if (stopped) return;
            if (!ShouldProcess(store!.Destination, $"Load {bundle.BatchKey} into table {tableName}")) continue;
            try
            {
                var report = bundleLoader.LoadBundle(bundle, CancellationToken);
                messenger!.Drain();
                WriteReport(report);
            }
            catch (OperationCanceledException) when (CancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex) when (ex is not PipelineStoppedException)
            {
                messenger!.Drain();
                // Download failures say what FullStory did; anything else is a failed load, rolled back whole.
                if (ex is FullStoryApiException or EventDataException) { errors++; WriteError(ToErrorRecord(ex, bundle)); }
                else HandleLoadFailure(ex, bundle.BatchKey);
            }
        }
    }

    void IDisposable.Dispose()
    {
        // Reached without EndProcessing when the pipeline stops early (Ctrl+C, an error downstream): the open chunk is
        // incomplete, so it is rolled back.
        eventLoader?.Dispose();
        eventLoader = null;
        store?.Dispose();
        store = null;
        Dispose();
    }
}
