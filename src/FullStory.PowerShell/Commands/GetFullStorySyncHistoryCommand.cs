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
[Cmdlet(VerbsCommon.Get, "FullStorySyncHistory", DefaultParameterSetName = SqliteSet)]
[OutputType(typeof(SyncRunRecord))]
public sealed class GetFullStorySyncHistoryCommand : FullStoryDestinationCmdlet
{
    /// <summary>How many runs to show, newest first (default 20).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Last { get; set; } = 20;

    protected override void EndProcessing()
    {
        DebugInvocation();
        var destination = ResolveDestination(new EventStoreOptions(), DatabaseAccess.Read);
        try
        {
            using var store = destination.OpenStore();
            Verbose($"Reading the sync history of {store.Destination}.");
            // The history is shared by every table of the destination: filter when one was asked for.
            var runs = Table is not null
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
