using System.Management.Automation;
using FullStory.Engine.Api;
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
public sealed class ExportFullStoryEventCommand : FullStoryCmdletBase, IDisposable
{
    private const string SqliteSet = "Sqlite";
    private const string SqlServerSet = "SqlServer";
    private const string SqliteBundleSet = "SqliteBundle";
    private const string SqlServerBundleSet = "SqlServerBundle";
    private const int QueueBound = 1000;
    private static readonly TimeSpan PumpInterval = TimeSpan.FromMilliseconds(50);

    private IEventStore? store;
    private string tableName = "events";
    private PipelineMessenger? messenger;
    private PipelineEventLoader? eventLoader;
    private BatchLoader? bundleLoader;
    private long sourcesSkipped, eventsSkipped, errors;
    private bool stopped; // a fatal error or a declined table: the rest of the input is not loaded

    /// <summary>FullStory events, usually piped from Receive-FullStoryEvent (filter with Where-Object first if you like).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = SqliteSet)]
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = SqlServerSet)]
    [AllowEmptyCollection]
    public FullStoryEvent[]? InputObject { get; set; }

    /// <summary>
    /// Bundles, usually piped from Get-FullStoryBundle: the fast path. Each is downloaded, parsed and bulk-loaded in one
    /// transaction without a PowerShell object per event; a bundle already loaded is not downloaded at all.
    /// </summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = SqliteBundleSet)]
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = SqlServerBundleSet)]
    public FullStoryBundle[]? Bundle { get; set; }

    /// <summary>The session for downloading bundles; by default the one Connect-FullStory made.</summary>
    [Parameter(ParameterSetName = SqliteBundleSet)]
    [Parameter(ParameterSetName = SqlServerBundleSet)]
    public FullStorySession? Session { get; set; }

    /// <summary>Keep every raw bundle download in this folder exactly as received (bundle input only).</summary>
    [Parameter(ParameterSetName = SqliteBundleSet)]
    [Parameter(ParameterSetName = SqlServerBundleSet)]
    public string? OutDirectory { get; set; }

    /// <summary>The SQLite database file; created when missing. Default: fullstory.db in the current location.</summary>
    [Parameter(Position = 0, ParameterSetName = SqliteSet)]
    [Parameter(Position = 0, ParameterSetName = SqliteBundleSet)]
    [Alias("Database")]
    public string? Path { get; set; }

    /// <summary>A SQL Server (or compatible) connection string. Its password is never shown.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SqlServerSet)]
    [Parameter(Mandatory = true, ParameterSetName = SqlServerBundleSet)]
    public string? ConnectionString { get; set; }

    /// <summary>The table to load into; created when missing, with missing columns added.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(Completers.TableCompleter))]
    public string Table { get; set; } = "events";

    /// <summary>SQL Server schema (default dbo); it must exist.</summary>
    [Parameter(ParameterSetName = SqlServerSet)]
    [Parameter(ParameterSetName = SqlServerBundleSet)]
    public string? Schema { get; set; }

    /// <summary>Rows per SqlBulkCopy round trip (SQL Server). A batch always commits as a whole.</summary>
    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public int BatchSize { get; set; } = 10000;

    /// <summary>
    /// SQL Server: how long the server may take to answer a statement, or to take more rows of the bulk copy, before the
    /// batch fails and is rolled back (default 5 minutes). Not a limit on a whole load, which takes as long as its data needs.
    /// </summary>
    [Parameter(ParameterSetName = SqlServerSet)]
    [Parameter(ParameterSetName = SqlServerBundleSet)]
    [TimeSpanArgument]
    [ValidatePositiveTimeSpan]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Also give every custom var (evt_*, user_*, page_*) a typed column of its own, added as new ones appear; CustomVars keeps them all anyway.</summary>
    [Parameter]
    public SwitchParameter CustomVarColumns { get; set; }

    protected override void BeginProcessing()
    {
        DebugInvocation();
        messenger = new PipelineMessenger(this, 3, "Loading FullStory events");

        try { tableName = Identifiers.ValidateName(Table, nameof(Table)); }
        catch (ArgumentException ex)
        {
            ThrowTerminatingError(Error(ex, "FullStory.InvalidTable", ErrorCategory.InvalidArgument, Table,
                "Pass -Table with a name of 1 to 128 characters, without control characters or leading/trailing spaces."));
        }

        var options = new EventStoreOptions
        {
            Table = tableName,
            Schema = Schema,
            BatchSize = BatchSize,
            CommandTimeout = CommandTimeout,
            BulkCopyTimeout = CommandTimeout,
            CustomVarColumns = CustomVarColumns.IsPresent,
            Log = message => messenger.Verbose(message),
            ConfirmSchemaChange = change => messenger.Invoke(() => ShouldProcess(store?.Destination ?? tableName, change), CancellationToken),
        };

        try
        {
            // Decided by the bound destination, not ParameterSetName: with pipeline input the set is not chosen
            // until the first object arrives, after BeginProcessing.
            if (ConnectionString is not null)
            {
                store = EventStoreFactory.OpenSqlServer(ConnectionString!, options);
            }
            else
            {
                string file = DatabasePath.Resolve(this, Path);
                store = EventStoreFactory.OpenSqlite(file, options);
            }
        }
        catch (ArgumentException ex) when (ex.ParamName is "Table" or "Schema")
        {
            ThrowTerminatingError(Error(ex, ex.ParamName == "Table" ? "FullStory.InvalidTable" : "FullStory.InvalidSchema", ErrorCategory.InvalidArgument,
                ex.ParamName == "Table" ? Table : Schema, $"Pass another -{ex.ParamName}."));
        }
        catch (ArgumentException ex) when (ex.ParamName == "connectionString")
        {
            ThrowTerminatingError(Error(ex, "FullStory.InvalidConnectionString", ErrorCategory.InvalidArgument, null,
                "Check -ConnectionString, e.g. 'Server=host;Database=db;Integrated Security=true;TrustServerCertificate=true'."));
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or IOException)
        {
            ThrowTerminatingError(Error(ex, "FullStory.InvalidPath", ErrorCategory.InvalidArgument, Path, "Pass -Path with a file system path for the database file."));
        }
        Verbose($"Loading into table {tableName} of {store!.Destination}.");
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
            if (eventLoader is not null && !stopped) Report(() => eventLoader.Complete());
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
            Report(() => eventLoader.Add(ev));
            if (stopped) return;
        }
        messenger!.Drain();
    }

    /// <summary>Writes the reports of a committed chunk; a failed chunk is a non-terminating error (its sources can be loaded again).</summary>
    private void Report(Func<IReadOnlyList<LoadReport>> step)
    {
        IReadOnlyList<LoadReport> reports;
        try
        {
            reports = step();
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
        var failure = message is null ? cause : new InvalidOperationException(message, cause);
        WriteError(Error(failure, "FullStory.ExportFailed", ErrorCategory.WriteError, key,
            $"Nothing of {key} was written by this load. Fix the cause (connection, permissions, disk space) and run the command again: " +
            "what is already loaded is recognised and skipped."));
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
                RowProgress = (key, rows) => m.Progress(() => $"{key}: {rows:N0} rows"),
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
