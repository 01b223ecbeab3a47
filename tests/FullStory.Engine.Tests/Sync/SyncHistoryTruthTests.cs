using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Tests.Sync;

/// <summary>
/// Issue 12, item 6, where SQLite differs: the file has one writer at a time, so a skipped run must not wait for the
/// running one's batch; a path that is not a database cannot hold a history. The destination-neutral part is
/// <see cref="SyncRunHistorySuite"/>. Each test reproduces a symptom seen with the code before the fix.
/// </summary>
public class SyncHistoryTruthTests
{
    private static SyncOptions FromDay0() => new() { Start = SyncFixture.Day0 };

    /// <summary>True while another connection holds the file's write lock (a batch transaction is open).</summary>
    private static bool IsWriteLocked(string path)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWrite, Pooling = false, DefaultTimeout = 1 }.ConnectionString);
        c.Open();
        using var busy = c.CreateCommand();
        busy.CommandText = "PRAGMA busy_timeout = 0;";
        busy.ExecuteNonQuery();
        using var begin = c.CreateCommand();
        begin.CommandText = "BEGIN IMMEDIATE;";
        try { begin.ExecuteNonQuery(); }
        catch (SqliteException ex) when (ex.SqliteErrorCode is 5 or 6) { return true; } // SQLITE_BUSY, SQLITE_LOCKED
        using var rollback = c.CreateCommand();
        rollback.CommandText = "ROLLBACK;";
        rollback.ExecuteNonQuery();
        return false;
    }

    [Fact]
    public async Task A_run_skipped_for_the_lock_is_recorded_without_waiting_for_the_running_batch()
    {
        // The running sync loads a bundle that trickles in: it holds the SQLite file's write lock for seconds.
        await using var f = await SyncFixture.StartAsync(bundles: 3, eventsPerBundle: 3000);
        var bundles = f.Emulator.Dataset.Bundles;
        f.Emulator.Faults.Add(new FullStory.Emulator.FaultRule { Endpoint = "get", BundleId = bundles[1].Id, Kind = FullStory.Emulator.FaultKind.Slow, BytesPerSecond = 40_000 });
        using var loadingSecond = new ManualResetEventSlim();
        var options = FromDay0();
        options.BatchLoaded = r => { if (r.BatchKey == "bundle:" + bundles[0].Id) loadingSecond.Set(); };
        var running = Task.Run(() => f.Sync(options));
        Assert.True(loadingSecond.Wait(TimeSpan.FromMinutes(1)));
        Assert.True(ExportClock.WaitUntil(() => IsWriteLocked(f.DbPath)), "the running sync never held the write lock");

        var skipped = await Task.Run(() => f.Sync(FromDay0())).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(IsWriteLocked(f.DbPath), "the skipped run should have ended while the other still loads its batch");
        Assert.Equal("Skipped", skipped.Outcome);
        Assert.Null(skipped.RunId); // numbered once it enters the history
        Assert.Contains("enters the run history", skipped.Message);
        var done = await running;
        Assert.Equal("Succeeded", done.Outcome);

        var history = f.History();
        Assert.Equal(2, history.Count);
        var recorded = Assert.Single(history, r => r.Outcome == "Skipped");
        Assert.Equal(skipped.StartedAt.ToUnixTimeMilliseconds(), recorded.StartedAt.ToUnixTimeMilliseconds());
        Assert.Equal(0, recorded.Batches);
        Assert.Contains("Another sync", recorded.Error);
        Assert.Equal(done.RunId, Assert.Single(history, r => r.Outcome == "Succeeded").RunId);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(f.DbPath)!, "*.pending-*")); // moved, not copied
    }

    [Fact]
    public async Task A_run_that_cannot_open_its_destination_says_so_and_is_never_run_0()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 1);
        var directory = Path.GetDirectoryName(f.DbPath)!; // a directory is not a database
        var summary = new SyncEngine(f.FullStory.Session, SyncDestination.Sqlite(directory), FromDay0(), new OperationObserver()).Run();

        Assert.Equal("Failed", summary.Outcome);
        Assert.Null(summary.RunId);
        Assert.Contains("not in the run history", summary.Message);
        Assert.DoesNotContain("run 0", summary.Message);
        Assert.Equal(0, f.Emulator.Served.CountFor("list")); // nothing was asked of FullStory
    }

    [Fact]
    public async Task A_run_that_fails_taking_the_lock_is_recorded_once_a_run_can_take_it()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 2);
        // Something else sits where the lock file goes: taking the lock fails, but the database itself is fine.
        string lockPath = f.DbPath + ".sync-events.lock";
        Directory.CreateDirectory(lockPath);

        var failed = f.Sync(FromDay0());

        Assert.Equal("Failed", failed.Outcome);
        Assert.Null(failed.RunId);
        Assert.Contains("enters the run history", failed.Message);
        Assert.Equal(0, f.Emulator.Served.CountFor("list"));

        Directory.Delete(lockPath);
        var next = f.Sync(FromDay0());
        Assert.Equal("Succeeded", next.Outcome);
        Assert.Equal(new[] { "Succeeded", "Failed" }, f.History().Select(r => r.Outcome)); // newest first: the failed run came first
        Assert.Equal(failed.StartedAt.ToUnixTimeMilliseconds(), f.History()[1].StartedAt.ToUnixTimeMilliseconds());
        Assert.Equal(failed.Error, f.History()[1].Error);
    }
}
