using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.Engine.Tests.Loading;

namespace FullStory.Engine.Tests.Sync;

/// <summary>The scheduled sync into a Parquet lake folder: the same bookmark, lock and history as the databases, read back by DuckDB.</summary>
public class SyncEngineParquetTests
{
    private static SyncSummary Sync(SyncFixture f, string folder, SyncOptions? options = null, CancellationToken cancellationToken = default) =>
        new SyncEngine(f.FullStory.Session, SyncDestination.Parquet(folder), options ?? new SyncOptions { Start = SyncFixture.Day0 }, new OperationObserver())
            .Run(cancellationToken);

    private static Dictionary<string, long> RowsPerBatch(string folder) =>
        ParquetEventStoreTests.Query($"SELECT _fs_batch AS k, count(*) AS n FROM {ParquetEventStoreTests.ReadParquet(folder, "events")} GROUP BY ALL;")
            .ToDictionary(r => (string)r["k"]!, r => Convert.ToInt64(r["n"]));

    [Fact]
    public async Task A_sync_lands_every_bundle_once_a_rerun_adds_nothing_and_history_is_kept_in_the_folder()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4, eventsPerBundle: 500);
        string folder = f.Directory.File("lake");
        var bundles = f.Emulator.Dataset.Bundles;

        var first = Sync(f, folder);
        Assert.Equal("Succeeded", first.Outcome);
        Assert.Equal(4, first.Batches);
        var perBatch = RowsPerBatch(folder);
        Assert.Equal(bundles.ToDictionary(b => "bundle:" + b.Id, b => b.EventCount), perBatch);
        // Every (source, position) once, and each day's count as the emulator made it.
        Assert.Equal(f.ExpectedRows(bundles), Convert.ToInt64(ParquetEventStoreTests.Query(
            $"SELECT count(DISTINCT (_fs_batch, _fs_index)) AS n FROM {ParquetEventStoreTests.ReadParquet(folder, "events")};")[0]["n"]));

        var second = Sync(f, folder);
        Assert.Equal("Succeeded", second.Outcome);
        Assert.Equal(0, second.Rows);
        Assert.Equal(perBatch, RowsPerBatch(folder));
        Assert.Equal(bundles[^1].Stop, second.DataThrough);

        using var store = SyncDestination.Parquet(folder).OpenStore();
        var runs = store.GetRuns(10);
        Assert.Equal([second.RunId!.Value, first.RunId!.Value], runs.Select(r => r.RunId));
        Assert.Equal(["Succeeded", "Succeeded"], runs.Select(r => r.Outcome));
        Assert.Equal(f.ExpectedRows(bundles), runs[1].Rows);
    }

    [Fact]
    public async Task Two_concurrent_syncs_into_one_folder_load_each_bundle_once()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 5, eventsPerBundle: 400);
        string folder = f.Directory.File("lake");
        var options = new SyncOptions { Start = SyncFixture.Day0, LockWait = TimeSpan.FromMinutes(2) };
        var runs = await Task.WhenAll(Task.Run(() => Sync(f, folder, options)), Task.Run(() => Sync(f, folder, options)));
        Assert.All(runs, r => Assert.Equal("Succeeded", r.Outcome));
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), runs.Sum(r => r.Rows));
        Assert.All(RowsPerBatch(folder), kv => Assert.Equal(400, kv.Value));
        Assert.Equal(5, RowsPerBatch(folder).Count);
    }
}
