using FullStory.Engine.Api;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Sync;

/// <summary>
/// Loads one bundle or one Segment Export window into an <see cref="IEventStore"/> exactly once, with no PowerShell
/// object per event (the fast path of Export-FullStoryEvent and the unit of work of <see cref="SyncEngine"/>).
/// A batch already recorded in the destination is skipped without downloading it. A download that breaks off or comes
/// corrupt is retried as a WHOLE batch, a fresh download into a fresh transaction, through the session's body retry
/// pipeline (<see cref="ResiliencePolicies.ForBodies"/>): <see cref="IEventStore.LoadBatch"/> rolls a failed attempt
/// back, so a retry can never leave half a batch or a duplicate behind.
/// </summary>
public sealed class BatchLoader
{
    private readonly FullStorySession session;
    private readonly IEventStore store;
    private readonly OperationObserver observer;

    public BatchLoader(FullStorySession session, IEventStore store, OperationObserver? observer = null)
    {
        this.session = session ?? throw new ArgumentNullException(nameof(session));
        this.store = store ?? throw new ArgumentNullException(nameof(store));
        this.observer = observer ?? OperationObserver.None;
    }

    /// <summary>Keep every raw download in this folder exactly as received (replayable with Receive-FullStoryEvent -Path).</summary>
    public string? ArchiveDirectory { get; init; }

    /// <summary>The sync run the batches are loaded for: each is counted in its history record in the batch's own commit.</summary>
    public long? RunId { get; init; }

    /// <summary>Called on the loading thread as rows stream into the destination: (batch key, rows so far in this attempt).</summary>
    public Action<string, long>? RowProgress { get; init; }

    /// <summary>Loads a listed bundle; its Start/Stop are recorded with the key (the sync resumes from them).</summary>
    public LoadReport LoadBundle(FullStoryBundle bundle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        return LoadBundle(bundle.Id, new BatchInfo(bundle.BatchKey, bundle.Start.Value, bundle.Stop.Value), cancellationToken);
    }

    /// <summary>Loads a bundle known only by its id (no time range is recorded).</summary>
    public LoadReport LoadBundle(long bundleId, CancellationToken cancellationToken = default) =>
        LoadBundle(bundleId, new BatchInfo("bundle:" + bundleId), cancellationToken);

    private LoadReport LoadBundle(long bundleId, BatchInfo batch, CancellationToken cancellationToken)
    {
        if (IsAlreadyLoaded(batch, out var skipped)) return skipped;
        var client = session.GetClient();
        observer.Log($"Downloading bundle {bundleId} into {store.Destination}.");
        return LoadWithRetries(batch, $"bundle {bundleId}",
            token => client.OpenBundle(bundleId, ArchiveDirectory, observer, token), cancellationToken);
    }

    /// <summary>
    /// Loads one Segment Export window: asks FullStory for the export once, waits for it, then downloads and loads it;
    /// a broken or corrupt download is fetched again from the same export (a fresh signed location each time).
    /// </summary>
    public LoadReport LoadExport(SegmentExportRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var batch = new BatchInfo(request.BatchKey, request.Start, request.End);
        if (IsAlreadyLoaded(batch, out var skipped)) return skipped;
        var client = session.GetClient();
        string operationId = client.StartSegmentExport(request, observer, cancellationToken);
        observer.Log($"Started the export of {request} as operation {operationId}.");
        string exportId = client.WaitForExport(operationId, observer, cancellationToken);
        return LoadDownload(batch, request, exportId, cancellationToken);
    }

    /// <summary>
    /// Loads a window whose export FullStory has prepared (from <see cref="SegmentExportScheduler"/>): downloads it and loads
    /// it in one transaction; a broken or corrupt download is fetched again from the same export.
    /// </summary>
    public LoadReport LoadReadyExport(ReadyExport ready, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ready);
        var batch = new BatchInfo(ready.Request.BatchKey, ready.Request.Start, ready.Request.End);
        if (IsAlreadyLoaded(batch, out var skipped)) return skipped;
        return LoadDownload(batch, ready.Request, ready.SearchExportId, cancellationToken);
    }

    private LoadReport LoadDownload(BatchInfo batch, SegmentExportRequest request, string exportId, CancellationToken cancellationToken)
    {
        var client = session.GetClient();
        string? archiveBase = request.ArchiveBase(ArchiveDirectory);
        return LoadWithRetries(batch, $"export {exportId} ({request})",
            token => client.OpenExportDownload(exportId, request.BatchKey, archiveBase, observer, token), cancellationToken);
    }

    private bool IsAlreadyLoaded(BatchInfo batch, out LoadReport report)
    {
        report = null!;
        if (!store.IsLoaded(batch.Key)) return false;
        observer.Log($"{batch.Key} is already loaded into {store.Destination}; not downloaded.");
        report = new LoadReport(batch.Key, store.Destination, store.TableName, 0, 0, TimeSpan.Zero, alreadyLoaded: true, Array.Empty<string>(), DateTimeOffset.UtcNow);
        return true;
    }

    /// <summary>One attempt = one download streamed into one transaction; the body pipeline repeats the pair.</summary>
    private LoadReport LoadWithRetries(BatchInfo batch, string what, Func<CancellationToken, EventStreamReader> open, CancellationToken cancellationToken)
    {
        var pipeline = ResiliencePolicies.ForBodies(session.Retry, observer, what);
        if (RunId is { } runId) batch = batch with { RunId = runId };
        return pipeline.Execute(token =>
        {
            using var reader = open(token);
            // Download and parse on a worker thread while this one writes rows: the two overlap on separate cores.
            var events = ReadAhead.Buffered(reader.ReadAll(), cancellationToken: token);
            return store.LoadBatch(batch, Counted(events, batch.Key), () => reader.BytesRead, token);
        }, cancellationToken);
    }

    private IEnumerable<FullStoryEvent> Counted(IEnumerable<FullStoryEvent> events, string key)
    {
        if (RowProgress is null) return events;
        return Count(events, key, RowProgress);

        static IEnumerable<FullStoryEvent> Count(IEnumerable<FullStoryEvent> events, string key, Action<string, long> progress)
        {
            long n = 0;
            foreach (var e in events)
            {
                yield return e;
                if ((++n & 1023) == 0) progress(key, n);
            }
            progress(key, n);
        }
    }
}
