using System.Collections.Concurrent;
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
/// (-ConnectionString). Events are grouped into batches by their Source (e.g. bundle:156314880048): each batch is
/// loaded in one transaction together with a record of its key, so a batch is loaded exactly once; a batch already
/// recorded is skipped, and a failed or interrupted batch (error, Ctrl+C) is rolled back completely.
/// Keep each source's events together in the pipeline (do not sort across bundles): once a source's batch is
/// committed, later events of that source are skipped. A Where-Object filter before this command decides what is
/// recorded for a source: loading the same source again later, unfiltered, is skipped as already loaded.
/// Events without a Source are loaded as one batch keyed pipeline:&lt;new guid&gt;, which cannot be deduplicated:
/// running the same command twice loads them twice.
/// </summary>
/// <remarks>
/// Pipeline input arrives one object per ProcessRecord; IEventStore.LoadBatch wants an IEnumerable. A worker thread runs
/// LoadBatch over a small bounded queue that ProcessRecord fills, so a batch streams into its open transaction and is never
/// buffered whole. Everything PowerShell-facing (ShouldProcess for CREATE/ALTER, verbose text) is marshalled back to the
/// pipeline thread, which pumps those requests whenever it waits for the worker.
/// Parameter sets: Sqlite and SqlServer take -InputObject events; a bundle input (-Bundle, FullStoryBundle from the pipeline)
/// can be added as further sets (e.g. SqliteBundle / SqlServerBundle) without changing these.
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

    private readonly ConcurrentQueue<Action> pipelineWork = new();
    private readonly HashSet<string> finishedKeys = new(StringComparer.Ordinal);
    private readonly HashSet<string> warnedLate = new(StringComparer.Ordinal);
    private int pipelineThread;
    private CancellationTokenSource? abort;
    private IEventStore? store;
    private string tableName = "events";
    private OpenBatch? current;
    private long eventsSeen, eventsSkipped, errors;

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

    /// <summary>Also give every custom var (evt_*, user_*, page_*) a typed column of its own, added as new ones appear; CustomVars keeps them all anyway.</summary>
    [Parameter]
    public SwitchParameter CustomVarColumns { get; set; }

    private sealed class OpenBatch
    {
        public OpenBatch(string? source, string key) { Source = source; Key = key; }
        public string? Source { get; }
        public string Key { get; }
        public BlockingCollection<FullStoryEvent>? Queue { get; set; }
        public Task<LoadReport>? Worker { get; set; }
        /// <summary>Already loaded, declined, or its load ended early: its remaining events are dropped.</summary>
        public bool Skipping { get; set; }
        public long Events { get; set; }
    }

    protected override void BeginProcessing()
    {
        DebugInvocation();
        pipelineThread = Environment.CurrentManagedThreadId;
        abort = CancellationTokenSource.CreateLinkedTokenSource(CancellationToken);

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
            CustomVarColumns = CustomVarColumns.IsPresent,
            Log = message => OnPipelineThread(() => Verbose(message), wait: false),
            ConfirmSchemaChange = change => OnPipelineThread(() => ShouldProcess(store?.Destination ?? tableName, change), wait: true),
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
        if (Bundle is not null)
        {
            LoadBundles(Bundle);
            return;
        }
        if (InputObject is null) return;
        try
        {
            foreach (var ev in InputObject)
            {
                if (ev is null) continue;
                eventsSeen++;
                if (current is not null && !string.Equals(current.Source, ev.Source, StringComparison.Ordinal)) FinishBatch();
                current ??= StartBatch(ev.Source);
                current.Events++;
                if (current.Skipping) { eventsSkipped++; continue; }
                Feed(current, ev);
            }
            Pump();
        }
        catch (OperationCanceledException) when (abort!.IsCancellationRequested)
        {
            AbandonBatch();
            throw new PipelineStoppedException();
        }
    }

    protected override void EndProcessing()
    {
        try
        {
            if (current is not null) FinishBatch();
        }
        catch (OperationCanceledException) when (abort!.IsCancellationRequested)
        {
            AbandonBatch();
            throw new PipelineStoppedException();
        }
        messenger?.Complete();
        if (eventsSeen > 0 && eventsSkipped == eventsSeen && errors == 0)
            WriteWarning($"All {eventsSeen} events were skipped: their batches are already loaded into {tableName} (or were not confirmed). Nothing was written.");
    }

    private OpenBatch StartBatch(string? source)
    {
        string key = source ?? "pipeline:" + Guid.NewGuid().ToString("D");
        var batch = new OpenBatch(source, key);
        if (finishedKeys.Contains(key))
        {
            // Events of a source arrived after its batch was committed (input not grouped by source).
            batch.Skipping = true;
            if (warnedLate.Add(key))
                WriteWarning($"More events of {key} arrived after its batch was committed; they are skipped. Keep each source's events together (do not sort across bundles).");
            return batch;
        }
        if (source is null)
            Verbose($"Events without a Source are loaded as batch {key}: they cannot be deduplicated if loaded again.");

        try
        {
            if (store!.IsLoaded(key))
            {
                batch.Skipping = true;
                Verbose($"Batch {key} is already loaded into {tableName}; its events are skipped.");
                return batch;
            }
        }
        catch (ArgumentException ex)
        {
            batch.Skipping = true;
            errors++;
            WriteError(Error(ex, "FullStory.InvalidBatch", ErrorCategory.InvalidData, key, "Events need a Source of at most 320 characters."));
            return batch;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            batch.Skipping = true;
            WriteError(ExportError(ex, key));
            return batch;
        }

        if (!ShouldProcess(store.Destination, $"Load batch {key} into table {tableName}"))
        {
            batch.Skipping = true;
            return batch;
        }

        var queue = new BlockingCollection<FullStoryEvent>(QueueBound);
        var token = abort!.Token;
        batch.Queue = queue;
        batch.Worker = Task.Run(() => store.LoadBatch(new BatchInfo(key), queue.GetConsumingEnumerable(token), null, token), token);
        return batch;
    }

    private BatchLoader? bundleLoader;
    private PipelineMessenger? messenger;

    /// <summary>The fast path: each bundle downloaded and loaded by the engine's BatchLoader, on the pipeline thread.</summary>
    private void LoadBundles(FullStoryBundle[] bundles)
    {
        if (bundleLoader is null)
        {
            ActiveSession = Session ?? DefaultSessionStore.Get();
            if (ActiveSession is null)
                ThrowTerminatingError(Error(new InvalidOperationException("There is no FullStory session to download the bundles. Run Connect-FullStory -ApiKey <key> first, or pass -Session."),
                    "FullStory.NotConnected", ErrorCategory.ConnectionError, null));
            messenger = new PipelineMessenger(this, 3, $"Loading FullStory bundles into {tableName}");
            var m = messenger;
            bundleLoader = new BatchLoader(ActiveSession!, store!, messenger.Observer)
            {
                ArchiveDirectory = OutDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(OutDirectory),
                RowProgress = (key, rows) => m.Progress(() => $"{key}: {rows:N0} rows"),
            };
        }
        foreach (var bundle in bundles)
        {
            if (bundle is null) continue;
            if (!ShouldProcess(store!.Destination, $"Load {bundle.BatchKey} into table {tableName}")) continue;
            try
            {
                var report = bundleLoader.LoadBundle(bundle, abort!.Token);
                messenger!.Drain();
                if (report.AlreadyLoaded) { eventsSkipped++; Verbose($"{bundle.BatchKey} is already loaded into {tableName}; not downloaded."); }
                else WriteObject(report);
            }
            catch (OperationCanceledException) when (abort!.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
            catch (SchemaChangeDeclinedException declined)
            {
                Verbose($"{bundle.BatchKey} not loaded: '{declined.Change}' was not confirmed.");
            }
            catch (Exception ex) when (ex is not PipelineStoppedException)
            {
                messenger!.Drain();
                // Download failures say what FullStory did; anything else is a failed load, rolled back whole.
                if (ex is FullStoryApiException or EventDataException) { errors++; WriteError(ToErrorRecord(ex, bundle)); }
                else WriteError(ExportError(ex, bundle.BatchKey));
            }
        }
    }

    /// <summary>Hands one event to the batch's worker, pumping the worker's requests while the queue is full.</summary>
    private void Feed(OpenBatch batch, FullStoryEvent ev)
    {
        while (true)
        {
            if (batch.Worker!.IsCompleted)
            {
                // The load ended before its input did (an error, or a declined schema change): the rest is dropped and
                // the outcome reported when the batch finishes.
                batch.Skipping = true;
                eventsSkipped++;
                return;
            }
            if (batch.Queue!.TryAdd(ev, (int)PumpInterval.TotalMilliseconds, abort!.Token)) return;
            Pump();
        }
    }

    /// <summary>The source changed or the input ended: let the worker record and commit, then report.</summary>
    private void FinishBatch()
    {
        var batch = current!;
        current = null;
        finishedKeys.Add(batch.Key);
        if (batch.Worker is null) return;

        batch.Queue!.CompleteAdding();
        while (!batch.Worker.Wait(PumpInterval)) Pump(); // Wait returns (true) when faulted too
        Pump();
        batch.Queue.Dispose();

        if (batch.Worker.IsCompletedSuccessfully)
        {
            var report = batch.Worker.Result;
            if (report.AlreadyLoaded)
            {
                eventsSkipped += batch.Events;
                Verbose($"Batch {batch.Key} was loaded by another process meanwhile; its events are skipped.");
            }
            else WriteObject(report);
            return;
        }

        var ex = batch.Worker.Exception?.GetBaseException() ?? new OperationCanceledException();
        eventsSkipped += batch.Events;
        switch (ex)
        {
            case OperationCanceledException when abort!.IsCancellationRequested:
                throw new OperationCanceledException(abort.Token);
            case SchemaChangeDeclinedException declined:
                Verbose($"Batch {batch.Key} not loaded: '{declined.Change}' was not confirmed.");
                break;
            default:
                WriteError(ExportError(ex, batch.Key));
                break;
        }
    }

    private ErrorRecord ExportError(Exception ex, string key)
    {
        errors++;
        return Error(ex, "FullStory.ExportFailed", ErrorCategory.WriteError, key,
        $"Batch {key} was rolled back, nothing of it was written. Fix the cause (connection, permissions, disk space) and run the command again: " +
        "batches already loaded are skipped.");
    }

    /// <summary>Cancels and waits for the open batch's rollback (Ctrl+C, or the pipeline ended early).</summary>
    private void AbandonBatch()
    {
        var batch = current;
        current = null;
        if (batch?.Worker is null) return;
        try { abort?.Cancel(); } catch (ObjectDisposedException) { }
        try { batch.Queue!.CompleteAdding(); } catch (ObjectDisposedException) { }
        try { batch.Worker.Wait(TimeSpan.FromSeconds(60)); } catch (AggregateException) { }
        if (batch.Worker.IsCompleted) batch.Queue!.Dispose();
    }

    /// <summary>Runs PowerShell-facing work on the pipeline thread: at once when already there, else queued for <see cref="Pump"/>.</summary>
    private bool OnPipelineThread(Func<bool> work, bool wait)
    {
        if (Environment.CurrentManagedThreadId == pipelineThread) return work();
        if (!wait)
        {
            pipelineWork.Enqueue(() => work());
            return true;
        }
        var answer = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        pipelineWork.Enqueue(() =>
        {
            try { answer.SetResult(work()); }
            catch (Exception ex) { answer.SetException(ex); }
        });
        answer.Task.Wait(abort!.Token); // OperationCanceledException on Ctrl+C: the load rolls back
        return answer.Task.Result;
    }

    private void OnPipelineThread(Action work, bool wait) => OnPipelineThread(() => { work(); return true; }, wait);

    private void Pump()
    {
        while (pipelineWork.TryDequeue(out var work)) work();
    }

    protected override void StopProcessing()
    {
        base.StopProcessing();
        try { abort?.Cancel(); } catch (ObjectDisposedException) { }
    }

    void IDisposable.Dispose()
    {
        // Reached without EndProcessing when the pipeline stops early (Ctrl+C, Select-Object -First, an error downstream):
        // an open batch is incomplete, so it is rolled back.
        AbandonBatch();
        store?.Dispose();
        store = null;
        abort?.Dispose();
        Dispose();
    }
}
