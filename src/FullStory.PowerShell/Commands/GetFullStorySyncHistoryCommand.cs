using System.Management.Automation;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>
/// Get-FullStorySyncHistory: the run history Sync-FullStoryEvent keeps in the destination database (Stitch's extraction
/// logs and loading reports): one record per run with its outcome, batches, rows, bytes, retries, error and how far the
/// data went, newest first. Needs no FullStory session.
/// </summary>
[Cmdlet(VerbsCommon.Get, "FullStorySyncHistory", DefaultParameterSetName = SyncFullStoryEventCommand.SqliteSet)]
[OutputType(typeof(SyncRunRecord))]
public sealed class GetFullStorySyncHistoryCommand : FullStoryCmdletBase
{
    /// <summary>The SQLite database file. Default: fullstory.db in the current location.</summary>
    [Parameter(Position = 0, ParameterSetName = SyncFullStoryEventCommand.SqliteSet)]
    [Alias("Database")]
    public string? Path { get; set; }

    /// <summary>A SQL Server (or compatible) connection string.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SyncFullStoryEventCommand.SqlServerSet)]
    public string? ConnectionString { get; set; }

    /// <summary>Only the runs into this table (all tables of the database when not given).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(Completers.TableCompleter))]
    public string? Table { get; set; }

    /// <summary>SQL Server schema of -Table (default dbo).</summary>
    [Parameter(ParameterSetName = SyncFullStoryEventCommand.SqlServerSet)]
    public string? Schema { get; set; }

    /// <summary>How many runs to show, newest first (default 20).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Last { get; set; } = 20;

    protected override void EndProcessing()
    {
        DebugInvocation();
        SyncDestination destination = null!;
        try
        {
            destination = SyncDestinations.Resolve(this, ParameterSetName, Path, ConnectionString, Table ?? "events", Schema, 10000, false, DatabaseAccess.Read);
        }
        catch (InvalidDestinationException ex)
        {
            ThrowTerminatingError(Error(ex.InnerException!, ex.ErrorId, ex.Category, ex.Target, ex.Action));
        }

        try
        {
            using var store = destination.OpenStore();
            Verbose($"Reading the sync history of {store.Destination}.");
            // The history table is shared by every table of the database: filter when one was asked for.
            var runs = MyInvocation.BoundParameters.ContainsKey(nameof(Table))
                ? store.GetRuns(int.MaxValue).Where(r => string.Equals(r.Table, destination.TableName, StringComparison.OrdinalIgnoreCase)).Take(Last)
                : store.GetRuns(Last);
            foreach (var run in runs) WriteObject(run);
        }
        catch (Exception ex) when (!IsStopping(ex) && ex is not PipelineStoppedException)
        {
            ThrowTerminatingError(ToErrorRecord(ex, destination.TableName));
        }
    }
}
