using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.Engine.Tests.Api;
using FullStory.Engine.Tests.Loading;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Tests.Sync;

/// <summary>
/// Issue 12, item 6, for every destination: the run history agrees with what the destination committed. Each test
/// reproduces a symptom seen with the code before the fix (a run recorded Failed without the batch it had committed, a
/// skipped run never recorded).
/// </summary>
public abstract class SyncRunHistorySuite : IAsyncLifetime
{
    protected static readonly DateTimeOffset Day0 = EmulatedFullStory.Day0;
    private protected EmulatedFullStory FullStory { get; private set; } = null!;
    protected string Table { get; } = "sync_" + Guid.NewGuid().ToString("N")[..10];

    protected abstract string? SkipReason { get; }
    /// <summary>Non-null (the reason) where the server under test is a stand-in known to differ in this respect.</summary>
    protected virtual string? KnownDifference(ServerDifference difference) => null;
    protected abstract SyncDestination Destination(Action<string>? log = null);
    /// <summary>Rows in the events table, counted by the destination itself.</summary>
    protected abstract long Rows();
    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    public async Task InitializeAsync() =>
        FullStory = await EmulatedFullStory.StartAsync(o => { o.BundleCount = 5; o.EventsPerBundle = 150; }, maxAttempts: 2);

    public async Task DisposeAsync()
    {
        await FullStory.DisposeAsync();
        if (SkipReason is null) await CleanUpAsync();
    }

    private SyncSummary Sync(SyncOptions options, CancellationToken cancellationToken = default, SyncDestination? destination = null) =>
        new SyncEngine(FullStory.Session, destination ?? Destination(), options, new OperationObserver()).Run(cancellationToken);

    private static SyncOptions FromDay0() => new() { Start = Day0 };

    private IReadOnlyList<SyncRunRecord> History()
    {
        using var store = Destination().OpenStore();
        return store.GetRuns(200).Where(r => r.Table == Destination().TableName).ToList();
    }

    private IReadOnlyList<LoadedBatch> Loaded()
    {
        using var store = Destination().OpenStore();
        return store.GetLoadedBatches();
    }

    [SkippableFact]
    public void A_batch_committed_just_before_Ctrl_C_counts_as_loaded_and_the_run_is_Cancelled_not_Failed()
    {
        Skip.If(SkipReason is not null, SkipReason);
        // What PowerShell does: once Ctrl+C is pressed, every Write throws. The store reports a batch it has just committed
        // in a verbose line; that line throws. Before the fix the run was recorded Failed, without that batch, naming it.
        using var cts = new CancellationTokenSource();
        int committedMessages = 0;
        var destination = Destination(m =>
        {
            if (!m.StartsWith("Loaded ", StringComparison.Ordinal) || ++committedMessages != 3) return;
            cts.Cancel();
            throw new InvalidOperationException("The pipeline has been stopped.");
        });

        var summary = Sync(FromDay0(), cts.Token, destination);

        Assert.True(committedMessages == 3, $"{summary.Outcome}: {summary.Error}");
        var bundles = FullStory.Emulator.Dataset.Bundles;
        Assert.Equal("Cancelled", summary.Outcome);
        Assert.Equal(3, summary.Batches);
        Assert.Equal(bundles.Take(3).Select(b => "bundle:" + b.Id), summary.Loaded.Select(r => r.BatchKey));
        Assert.Equal(Rows(), summary.Rows);
        Assert.DoesNotContain(bundles[2].Id.ToString(), summary.Error); // the third bundle is loaded, not failed
        Assert.DoesNotContain("rolled back", summary.Error);             // nothing was being loaded
        var record = Assert.Single(History());
        Assert.Equal(("Cancelled", 3, Rows(), summary.Error), (record.Outcome, record.Batches, record.Rows, record.Error));
        Assert.Equal(3, Loaded().Count);

        // Summed over runs, the history says what the table holds.
        Assert.Equal("Succeeded", Sync(FromDay0()).Outcome);
        Assert.Equal(Rows(), History().Sum(r => r.Rows));
        Assert.Equal(Loaded().Count, History().Sum(r => r.Batches));
        Assert.Equal(bundles.Sum(b => b.EventCount), Rows());
    }

    [SkippableFact]
    public void A_failed_batch_is_named_and_the_history_holds_exactly_what_committed()
    {
        Skip.If(SkipReason is not null, SkipReason);
        var bundles = FullStory.Emulator.Dataset.Bundles;
        FullStory.Emulator.Faults.Status("get", 500, times: 0, bundleId: bundles[3].Id);

        var failed = Sync(FromDay0());

        Assert.Equal("Failed", failed.Outcome);
        Assert.True(failed.Batches == 3, failed.Error);
        Assert.Contains(bundles[3].Id.ToString(), failed.Error);
        Assert.Equal(bundles.Take(3).Sum(b => b.EventCount), Rows());
        var record = Assert.Single(History());
        Assert.Equal(("Failed", 3, Rows(), failed.Error), (record.Outcome, record.Batches, record.Rows, record.Error));

        FullStory.Emulator.Faults.Clear();
        Assert.Equal(2, Sync(FromDay0()).Batches);
        Assert.Equal(Rows(), History().Sum(r => r.Rows));
        Assert.Equal(bundles.Sum(b => b.EventCount), Rows());
    }

    [SkippableFact]
    public void A_process_that_dies_right_after_a_commit_leaves_that_batch_counted_in_its_run()
    {
        Skip.If(SkipReason is not null, SkipReason);
        var bundles = FullStory.Emulator.Dataset.Bundles;
        long dead;
        using (var store = Destination().OpenStore())
        {
            // What a sync does up to a batch's commit; then its process dies: no checkpoint, no outcome.
            dead = store.BeginRun(new SyncRunRecord { StartedAt = DateTimeOffset.UtcNow, Api = "Bundles", Table = Destination().TableName, Outcome = "Running" });
            var first = FullStory.Session.GetClient().ListBundles(Day0).First();
            new BatchLoader(FullStory.Session, store) { RunId = dead }.LoadBundle(first);
            // A batch that fails is rolled back, and with it its count.
            FullStory.Emulator.Faults.Status("get", 500, times: 0, bundleId: bundles[1].Id);
            var second = FullStory.Session.GetClient().ListBundles(Day0).Skip(1).First();
            Assert.ThrowsAny<Exception>(() => new BatchLoader(FullStory.Session, store) { RunId = dead }.LoadBundle(second));
            FullStory.Emulator.Faults.Clear();
        }

        var next = Sync(FromDay0());

        Assert.Equal(("Succeeded", 4), (next.Outcome, next.Batches));
        var record = History().Single(r => r.RunId == dead);
        Assert.Equal(("Failed", 1, (long)bundles[0].EventCount), (record.Outcome, record.Batches, record.Rows));
        Assert.Contains("did not finish", record.Error);
        Assert.Equal(Rows(), History().Sum(r => r.Rows)); // every row committed is in exactly one run's count
    }

    [SkippableFact]
    public void A_run_skipped_for_the_lock_is_recorded()
    {
        Skip.If(SkipReason is not null, SkipReason);
        var difference = KnownDifference(ServerDifference.AppLockWithoutWait); // the run asks for the lock without waiting
        Skip.If(difference is not null, difference);
        SyncSummary skipped;
        using (var held = Destination().TryAcquireRunLock(TimeSpan.Zero))
        {
            Assert.NotNull(held);
            skipped = Sync(FromDay0());
            Assert.True(skipped.Outcome == "Skipped", $"{skipped.Outcome}: {skipped.Error}");
            Assert.Equal(0, FullStory.Emulator.Served.CountFor("list"));
            // Numbered at once where the history can be written while another run loads (SQL Server); otherwise it waits
            // beside the lock for the run holding it, and says so.
            if (skipped.RunId is null) Assert.Contains("enters the run history", skipped.Message);
            else Assert.Equal(skipped.RunId, Assert.Single(History()).RunId);
        }

        var next = Sync(FromDay0());
        Assert.Equal("Succeeded", next.Outcome);
        var history = History();
        Assert.Equal(2, history.Count);
        var recorded = Assert.Single(history, r => r.Outcome == "Skipped");
        Assert.Equal(skipped.StartedAt.ToUnixTimeMilliseconds(), recorded.StartedAt.ToUnixTimeMilliseconds());
        Assert.Contains("Another sync", recorded.Error);
        Assert.True(recorded.RunId < next.RunId); // in the order things happened
    }
}

public sealed class SqliteSyncRunHistoryTests : SyncRunHistorySuite
{
    private readonly TestData.TempDirectory directory = new();
    private string DbPath => directory.File("fullstory.db");

    protected override string? SkipReason => null;

    protected override SyncDestination Destination(Action<string>? log = null) =>
        SyncDestination.Sqlite(DbPath, new EventStoreOptions { Table = Table, Log = log });

    protected override long Rows() => Db.Rows(DbPath, Table);

    protected override Task CleanUpAsync()
    {
        directory.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class SqlServerSyncRunHistoryTests : SyncRunHistorySuite
{
    private static string? ConnectionString => SqlServerTestServer.ConnectionString;

    protected override string? SkipReason => SqlServerTestServer.SkipReason;

    protected override string? KnownDifference(ServerDifference difference) => SqlServerTestServer.KnownDifference(difference);

    protected override SyncDestination Destination(Action<string>? log = null) =>
        SyncDestination.SqlServer(ConnectionString!, new EventStoreOptions { Table = Table, Log = log });

    protected override long Rows()
    {
        using var c = new SqlConnection(ConnectionString);
        c.Open();
        using var cmd = new SqlCommand($"SELECT count_big(*) FROM [dbo].{SqlServerStatements.Quote(Table)};", c);
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    protected override Task CleanUpAsync()
    {
        using var c = new SqlConnection(ConnectionString);
        c.Open();
        using var drop = new SqlCommand($"IF OBJECT_ID(@name, N'U') IS NOT NULL DROP TABLE [dbo].{SqlServerStatements.Quote(Table)};", c);
        drop.Parameters.Add(new SqlParameter("@name", System.Data.SqlDbType.NVarChar, 400) { Value = "[dbo]." + SqlServerStatements.Quote(Table) });
        drop.ExecuteNonQuery();
        foreach (var book in new[] { Identifiers.StateTable, Identifiers.RunsTable })
        {
            using var del = new SqlCommand($"IF OBJECT_ID(N'[dbo].{SqlServerStatements.Quote(book)}', N'U') IS NOT NULL DELETE FROM [dbo].{SqlServerStatements.Quote(book)} WHERE table_name IN (@t, @qt);", c);
            del.Parameters.Add(new SqlParameter("@t", System.Data.SqlDbType.NVarChar, 400) { Value = Table });
            del.Parameters.Add(new SqlParameter("@qt", System.Data.SqlDbType.NVarChar, 400) { Value = "dbo." + Table });
            del.ExecuteNonQuery();
        }
        return Task.CompletedTask;
    }
}

public sealed class ParquetSyncRunHistoryTests : SyncRunHistorySuite
{
    private readonly TestData.TempDirectory directory = new();
    private string Folder => directory.File("lake");

    protected override string? SkipReason => null;

    protected override SyncDestination Destination(Action<string>? log = null) =>
        SyncDestination.Parquet(Folder, new EventStoreOptions { Table = Table, Log = log });

    /// <summary>Counted by DuckDB over the table's files, as a reader of the lake sees it.</summary>
    protected override long Rows() =>
        !Directory.Exists(Path.Combine(Folder, Table)) ? 0
        : Convert.ToInt64(ParquetEventStoreTests.Query($"SELECT count(*) AS n FROM {ParquetEventStoreTests.ReadParquet(Folder, Table)};")[0]["n"]);

    protected override Task CleanUpAsync()
    {
        directory.Dispose();
        return Task.CompletedTask;
    }
}
