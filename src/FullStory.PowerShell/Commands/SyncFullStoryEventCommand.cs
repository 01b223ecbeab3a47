using System.Management.Automation;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>
/// Sync-FullStoryEvent: one incremental replication run, for a scheduled task every 30 minutes (Stitch's job in one
/// command). The first run loads everything since -Start (one year ago by default); later runs resume after what the
/// destination's own sync-state table says is loaded, so the database is the bookmark. Each bundle (or Segment Export
/// window) is loaded exactly once, in one transaction. Overlapping runs are safe: a run that finds another one going
/// waits up to -LockWait, then ends with Outcome Skipped. Every run is recorded (Get-FullStorySyncHistory).
/// Writes one summary object; a failed run then ends in a terminating error (FullStory.SyncFailed), so $? is false and
/// `pwsh -File` exits non-zero.
/// </summary>
[Cmdlet(VerbsData.Sync, "FullStoryEvent", DefaultParameterSetName = SqliteSet)]
[Alias("Sync-FullStoryEvents")]
[OutputType(typeof(SyncSummary))]
public sealed class SyncFullStoryEventCommand : FullStorySessionCmdlet
{
    internal const string SqliteSet = "Sqlite";
    internal const string SqlServerSet = "SqlServer";

    /// <summary>The SQLite database file; created when missing. Default: fullstory.db in the current location.</summary>
    [Parameter(Position = 0, ParameterSetName = SqliteSet)]
    [Alias("Database")]
    public string? Path { get; set; }

    /// <summary>A SQL Server (or compatible) connection string. Its password is never shown.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SqlServerSet)]
    public string? ConnectionString { get; set; }

    /// <summary>The table to load into (default events); created when missing.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(Completers.TableCompleter))]
    public string Table { get; set; } = "events";

    /// <summary>SQL Server schema (default dbo); it must exist.</summary>
    [Parameter(ParameterSetName = SqlServerSet)]
    public string? Schema { get; set; }

    /// <summary>Rows per SqlBulkCopy round trip (SQL Server). A batch always commits as a whole.</summary>
    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public int BatchSize { get; set; } = 10000;

    /// <summary>
    /// SQL Server: how long the server may take to answer a statement, or to take more rows of the bulk copy, before the
    /// batch fails and is rolled back (default 5 minutes). Not a limit on a whole batch, which takes as long as its data needs.
    /// </summary>
    [Parameter(ParameterSetName = SqlServerSet)]
    [TimeSpanArgument]
    [ValidatePositiveTimeSpan]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Also give every custom var a typed column of its own; CustomVars keeps them all anyway.</summary>
    [Parameter]
    public SwitchParameter CustomVarColumns { get; set; }

    /// <summary>Where the FIRST run starts (default: one year ago). Later runs continue from the destination's bookmark. A DateTime without a kind is taken as UTC.</summary>
    [Parameter]
    public DateTime? Start { get; set; }

    /// <summary>Bundles (the legacy export, default) or SegmentExport (FullStory's current API, in time windows).</summary>
    [Parameter]
    public SyncApi Api { get; set; } = SyncApi.Bundles;

    /// <summary>SegmentExport: the largest window (one export and one transaction each). Default: 7 days while catching up, one day near now. At least one minute; a bare number is refused (give a time span).</summary>
    [Parameter]
    [TimeSpanArgument]
    [ValidateWindowSize]
    public TimeSpan WindowSize { get; set; }

    /// <summary>SegmentExport: how many exports FullStory prepares at once (default 4); windows are still loaded one at a time, oldest first.</summary>
    [Parameter]
    [ValidateRange(1, 32)]
    public int ThrottleLimit { get; set; } = FullStory.Engine.Api.SegmentExportSchedule.DefaultThrottleLimit;

    /// <summary>SegmentExport: only windows that ended at least this long ago are asked for (FullStory publishes about a day later). Default one day.</summary>
    [Parameter]
    [TimeSpanArgument]
    public TimeSpan Lag { get; set; } = TimeSpan.FromDays(1);

    /// <summary>SegmentExport: the segment to export (everyone = all data).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(Completers.SegmentIdCompleter))]
    public string SegmentId { get; set; } = "everyone";

    /// <summary>How long to wait for another run into the same table to finish before ending as Skipped. Default 0: do not wait. E.g. (New-TimeSpan -Minutes 10).</summary>
    [Parameter]
    [TimeSpanArgument]
    public TimeSpan LockWait { get; set; } = TimeSpan.Zero;

    /// <summary>Keep every raw download in this folder exactly as received (replay with Receive-FullStoryEvent -Path).</summary>
    [Parameter]
    public string? OutDirectory { get; set; }

    protected override void EndProcessing()
    {
        SyncDestination destination = null!;
        try { destination = SyncDestinations.Resolve(this, ParameterSetName, Path, ConnectionString, Table, Schema, BatchSize, CustomVarColumns, CommandTimeout); }
        catch (InvalidDestinationException ex) { ThrowTerminatingError(Error(ex.InnerException!, ex.ErrorId, ErrorCategory.InvalidArgument, ex.Target, ex.Action)); }
        if (Lag < TimeSpan.Zero || LockWait < TimeSpan.Zero)
            ThrowTerminatingError(Error(new ArgumentException("-Lag and -LockWait must not be negative."), "FullStory.InvalidArgument", ErrorCategory.InvalidArgument, null));
        if (Api == SyncApi.Bundles) GetFullStoryBundleCommand.WarnLegacyOnce(this);

        var messenger = new PipelineMessenger(this, 3, $"Syncing FullStory events ({Api})");
        // Messages are best effort: once Ctrl+C is pressed PowerShell refuses every Write, and a refused message must not
        // turn a batch that just committed into a failure.
        destination.StoreOptions.Log = m => { try { messenger.Verbose(m); } catch (PipelineStoppedException) { } };
        var options = new SyncOptions
        {
            Api = Api,
            Start = Start is { } s ? AsUtc(s) : null,
            WindowSize = MyInvocation.BoundParameters.ContainsKey(nameof(WindowSize)) ? WindowSize : null,
            ThrottleLimit = ThrottleLimit,
            Lag = Lag,
            SegmentId = SegmentId,
            LockWait = LockWait,
            ArchiveDirectory = OutDirectory is null ? null : GetUnresolvedProviderPathFromPSPath(OutDirectory),
            Progress = p => { try { ShowProgress(messenger, p); } catch (PipelineStoppedException) { } },
        };

        SyncSummary summary;
        try
        {
            summary = new SyncEngine(CurrentSession, destination, options, messenger.Observer).Run(CancellationToken);
        }
        finally
        {
            messenger.Complete();
        }

        // Ctrl+C: the engine recorded Outcome Cancelled; PowerShell is stopping the pipeline and takes no more output.
        if (CancellationToken.IsCancellationRequested) return;

        if (summary.Outcome == "Skipped" && summary.Message is not null) WriteWarning(summary.Message);
        WriteObject(summary);
        if (summary.Outcome == "Failed")
        {
            string which = summary.RunId is { } id ? $"(run {id})" : "before it could be recorded";
            ThrowTerminatingError(Error(new InvalidOperationException($"Sync-FullStoryEvent failed {which}: {summary.Message ?? summary.Error}"),
                "FullStory.SyncFailed", ErrorCategory.NotSpecified, summary.Destination,
                "See the summary and Get-FullStorySyncHistory; the next run retries the batch that failed and never loads a batch twice."));
        }
    }

    /// <summary>
    /// Segment Export: windows loaded of all, exports in flight, rows and the time left; the window being loaded or what the
    /// run waits for. Bundles: the bundle being loaded.
    /// </summary>
    private static void ShowProgress(PipelineMessenger messenger, SyncProgress p)
    {
        messenger.Drain(); // verbose lines of the exports running on other threads
        if (p.BatchKey is null && p.Waiting is null)
        {
            messenger.Progress(p.Activity, p.PercentComplete, force: true);
            return;
        }
        if (p.InFlight == 0 && p.Waiting is null)
        {
            messenger.Progress($"{p.BatchKey} (batch {p.BatchNumber} of {p.BatchCount}): {p.Rows:N0} rows", p.PercentComplete, force: p.Rows == 0);
            return;
        }
        int percent = p.BatchCount <= 0 ? -1 : (int)Math.Clamp(100L * p.Loaded / p.BatchCount, 0, 100);
        string now = p.Waiting ?? $"loading {p.BatchKey}: {p.Rows:N0} rows";
        int seconds = p.Remaining is { } r ? (int)Math.Min(int.MaxValue, r.TotalSeconds) : -1;
        messenger.Progress($"{p.Loaded} of {p.BatchCount} windows loaded, {p.InFlight} in flight, {p.RowsLoaded:N0} rows; {now}", percent, force: p.Rows == 0, secondsRemaining: seconds);
    }
}

/// <summary>Destination parameters shared by Sync-FullStoryEvent and Get-FullStorySyncHistory (as Export-FullStoryEvent takes them).</summary>
internal static class SyncDestinations
{
    public static SyncDestination Resolve(PSCmdlet cmdlet, string parameterSet, string? path, string? connectionString, string table, string? schema,
        int batchSize, bool customVarColumns, TimeSpan? commandTimeout = null)
    {
        var options = new EventStoreOptions { Schema = schema, BatchSize = batchSize, CustomVarColumns = customVarColumns };
        if (commandTimeout is { } timeout) { options.CommandTimeout = timeout; options.BulkCopyTimeout = timeout; }
        try
        {
            options.Table = Identifiers.ValidateName(table, "Table");
            SyncDestination destination;
            if (parameterSet == SyncFullStoryEventCommand.SqlServerSet)
            {
                destination = SyncDestination.SqlServer(connectionString!, options);
            }
            else
            {
                destination = SyncDestination.Sqlite(DatabasePath.Resolve(cmdlet, path), options);
            }
            // Validates the table, schema and connection string now (nothing is opened or created yet).
            destination.OpenStore().Dispose();
            return destination;
        }
        catch (ArgumentException ex) when (ex.ParamName is "Table" or "Schema")
        {
            throw Terminate(cmdlet, ex, ex.ParamName == "Table" ? "FullStory.InvalidTable" : "FullStory.InvalidSchema", ex.ParamName == "Table" ? table : schema,
                $"Pass another -{ex.ParamName}.");
        }
        catch (ArgumentException ex) when (ex.ParamName == "connectionString")
        {
            throw Terminate(cmdlet, ex, "FullStory.InvalidConnectionString", null,
                "Check -ConnectionString, e.g. 'Server=host;Database=db;Integrated Security=true;TrustServerCertificate=true'.");
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or IOException)
        {
            throw Terminate(cmdlet, ex, "FullStory.InvalidPath", path, "Pass -Path with a file system path for the database file.");
        }
    }

    private static Exception Terminate(PSCmdlet cmdlet, Exception ex, string id, object? target, string action) =>
        new InvalidDestinationException(ex, id, target, action);
}

/// <summary>A destination parameter that cannot work; the cmdlet turns it into a terminating error with <see cref="ErrorId"/>.</summary>
internal sealed class InvalidDestinationException(Exception inner, string errorId, object? target, string action) : Exception(inner.Message, inner)
{
    public string ErrorId { get; } = errorId;
    public object? Target { get; } = target;
    public string Action { get; } = action;
}
