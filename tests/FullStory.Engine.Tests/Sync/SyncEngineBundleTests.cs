using System.Globalization;
using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;

namespace FullStory.Engine.Tests.Sync;

/// <summary>The scheduled sync over the legacy bundle API, against the emulator and real SQLite files.</summary>
public class SyncEngineBundleTests
{
    private static SyncOptions FromDay0() => new() { Start = SyncFixture.Day0 };

    [Fact]
    public async Task First_run_loads_every_bundle_since_the_start_with_exact_counts_and_values()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 5);
        var bundles = f.Emulator.Dataset.Bundles;

        var summary = f.Sync(FromDay0());

        Assert.Equal("Succeeded", summary.Outcome);
        Assert.Null(summary.Error);
        Assert.Equal(5, summary.Batches);
        Assert.Equal(bundles.Select(b => "bundle:" + b.Id), summary.Loaded.Select(r => r.BatchKey));
        Assert.Equal(f.ExpectedRows(bundles), summary.Rows);
        Assert.Equal(f.ExpectedRows(bundles), Db.Rows(f.DbPath));
        var perBatch = Db.RowsPerBatch(f.DbPath);
        foreach (var b in bundles) Assert.Equal(b.EventCount, perBatch["bundle:" + b.Id]);
        Assert.True(summary.Bytes > 0);
        Assert.Equal(bundles[^1].Stop, summary.DataThrough);
        Assert.Equal(f.Emulator.Dataset.Bundles.Count, f.Emulator.Served.CountFor("get"));

        // Spot-check values of one bundle, row by row, against what the emulator generated.
        var bundle = bundles[2];
        var expected = f.Emulator.Dataset.EventsOf(bundle.Id).ToList();
        var rows = Db.Select(f.DbPath, "bundle:" + bundle.Id, "EventStart", "EventType", "UserId", "SessionId", "PageUrl", "EventTargetText");
        Assert.Equal(expected.Count, rows.Count);
        for (int i = 0; i < expected.Count; i += 7)
        {
            var e = expected[i];
            Assert.Equal(DateTimeOffset.Parse(e["EventStart"]!.GetValue<string>(), CultureInfo.InvariantCulture),
                DateTimeOffset.Parse((string)rows[i]["EventStart"]!, CultureInfo.InvariantCulture));
            Assert.Equal(e["EventType"]!.GetValue<string>(), rows[i]["EventType"]);
            Assert.Equal(e["UserId"]!.GetValue<long>(), rows[i]["UserId"]);
            Assert.Equal(e["SessionId"]!.GetValue<long>(), rows[i]["SessionId"]);
            Assert.Equal(e["PageUrl"]?.GetValue<string>(), rows[i]["PageUrl"]);
            Assert.Equal(e["EventTargetText"]?.GetValue<string>(), rows[i]["EventTargetText"]);
        }

        var run = Assert.Single(f.History());
        Assert.Equal(summary.RunId, run.RunId);
        Assert.Equal("Succeeded", run.Outcome);
        Assert.Equal("Bundles", run.Api);
        Assert.Equal("events", run.Table);
        Assert.Equal(5, run.Batches);
        Assert.Equal(summary.Rows, run.Rows);
        Assert.Equal(summary.Bytes, run.Bytes);
        Assert.Equal(0, run.Retries);
        Assert.NotNull(run.EndedAt);
        Assert.Equal(bundles[^1].Stop, run.DataThrough);
        Assert.Null(run.Error);
    }

    [Fact]
    public async Task The_start_date_excludes_older_bundles()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4);
        var bundles = f.Emulator.Dataset.Bundles;
        var summary = f.Sync(new SyncOptions { Start = bundles[2].Start });
        Assert.Equal("Succeeded", summary.Outcome);
        Assert.Equal(bundles.Skip(2).Select(b => "bundle:" + b.Id), summary.Loaded.Select(r => r.BatchKey));
        Assert.Equal(f.ExpectedRows(bundles.Skip(2)), Db.Rows(f.DbPath));
    }

    [Fact]
    public async Task Second_run_loads_only_the_new_bundles_and_a_third_loads_nothing()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4);
        var first = f.Sync(FromDay0());
        Assert.Equal("Succeeded", first.Outcome);
        Assert.Equal(4, first.Batches);
        int getsBefore = f.Emulator.Served.CountFor("get");

        var added = f.Emulator.AppendBundles(2);
        var second = f.Sync(FromDay0());

        Assert.Equal("Succeeded", second.Outcome);
        Assert.Equal(2, second.Loaded.Count);
        Assert.Equal(added.Select(b => "bundle:" + b.Id), second.Loaded.Select(r => r.BatchKey));
        Assert.Equal(f.ExpectedRows(added), second.Rows);
        Assert.Equal(2, f.Emulator.Served.CountFor("get") - getsBefore); // only the new bundles were downloaded
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath));
        Assert.All(Db.RowsPerBatch(f.DbPath), kv => Assert.Equal(f.Emulator.Dataset.Find(long.Parse(kv.Key["bundle:".Length..]))!.EventCount, kv.Value));
        // Resumed from the bookmark: the list started at the end of the newest loaded bundle, not at the start date.
        long resumeAt = f.Emulator.Dataset.Bundles[3].Stop.ToUnixTimeSeconds();
        Assert.Contains(f.Emulator.Served.Requests, r => r.Endpoint == "list" && r.PathAndQuery.EndsWith("start=" + resumeAt));

        var third = f.Sync(FromDay0());
        Assert.Equal("Succeeded", third.Outcome);
        Assert.Equal(0, third.Batches);
        Assert.Empty(third.Loaded);
        Assert.Equal(2 + 4, f.Emulator.Served.CountFor("get"));
        Assert.Equal(added[^1].Stop, third.DataThrough);

        var history = f.History();
        Assert.Equal(3, history.Count);
        Assert.Equal(new[] { third.RunId, second.RunId, first.RunId }, history.Select(r => (long?)r.RunId)); // newest first
        Assert.Equal(new[] { 0, 2, 4 }, history.Select(r => r.Batches));
        Assert.All(history, r => Assert.Equal("Succeeded", r.Outcome));
    }

    [Fact]
    public async Task A_run_that_fails_halfway_records_the_failure_and_the_next_run_completes_without_duplicates()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 5);
        var bundles = f.Emulator.Dataset.Bundles;
        var broken = bundles[2];
        f.Emulator.Faults.Status("get", 500, times: 0, bundleId: broken.Id);

        var failed = f.Sync(FromDay0());

        Assert.Equal("Failed", failed.Outcome);
        Assert.Equal(2, failed.Batches);
        Assert.Equal(f.ExpectedRows(bundles.Take(2)), failed.Rows);
        Assert.NotNull(failed.Error);
        Assert.Contains(broken.Id.ToString(CultureInfo.InvariantCulture), failed.Error);
        Assert.Contains("500", failed.Error);
        Assert.DoesNotContain(f.Emulator.ApiKey, failed.Error);
        Assert.True(failed.Retries >= 2); // the request pipeline's attempts on the broken bundle
        Assert.Equal(bundles[1].Stop, failed.DataThrough);
        Assert.Equal(f.ExpectedRows(bundles.Take(2)), Db.Rows(f.DbPath)); // nothing of the broken bundle, nothing after it

        var record = Assert.Single(f.History());
        Assert.Equal("Failed", record.Outcome);
        Assert.Equal(failed.Error, record.Error);
        Assert.Equal(2, record.Batches);
        Assert.Equal(failed.Rows, record.Rows);
        Assert.Equal(failed.Retries, record.Retries);
        Assert.NotNull(record.EndedAt);

        f.Emulator.Faults.Clear();
        var next = f.Sync(FromDay0());

        Assert.Equal("Succeeded", next.Outcome);
        Assert.Equal(bundles.Skip(2).Select(b => "bundle:" + b.Id), next.Loaded.Select(r => r.BatchKey));
        Assert.Equal(f.ExpectedRows(bundles), Db.Rows(f.DbPath));
        var perBatch = Db.RowsPerBatch(f.DbPath);
        Assert.Equal(5, perBatch.Count);
        foreach (var b in bundles) Assert.Equal(b.EventCount, perBatch["bundle:" + b.Id]);
        Assert.Equal(new[] { "Succeeded", "Failed" }, f.History().Select(r => r.Outcome));
    }

    [Fact]
    public async Task A_download_that_breaks_off_is_loaded_again_as_a_whole_batch()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 3, eventsPerBundle: 400);
        var bundles = f.Emulator.Dataset.Bundles;
        f.Emulator.Faults.Truncate("get", afterBytes: 6000, times: 1, bundleId: bundles[1].Id);
        f.Emulator.Faults.MalformedJson("get", afterEvents: 100, times: 1, bundleId: bundles[2].Id);

        var summary = f.Sync(FromDay0());

        Assert.Equal("Succeeded", summary.Outcome);
        Assert.Equal(2, f.Emulator.Served.FaultsFired);
        Assert.True(summary.Retries >= 2);
        Assert.Equal(f.ExpectedRows(bundles), Db.Rows(f.DbPath));
        foreach (var b in bundles) Assert.Equal(b.EventCount, Db.RowsPerBatch(f.DbPath)["bundle:" + b.Id]);
        Assert.Equal(summary.Retries, Assert.Single(f.History()).Retries);
    }

    [Fact]
    public async Task A_cancelled_run_is_recorded_as_Cancelled_with_what_it_loaded()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4);
        using var cts = new CancellationTokenSource();
        var options = FromDay0();
        options.BatchLoaded = _ => cts.Cancel(); // Ctrl+C right after the first bundle

        var summary = f.Sync(options, cancellationToken: cts.Token);

        Assert.Equal("Cancelled", summary.Outcome);
        Assert.Equal(1, summary.Batches);
        var record = Assert.Single(f.History());
        Assert.Equal("Cancelled", record.Outcome);
        Assert.Equal(1, record.Batches);
        Assert.Equal(f.Emulator.Dataset.Bundles[0].EventCount, Db.Rows(f.DbPath));

        var next = f.Sync(FromDay0());
        Assert.Equal(3, next.Batches);
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath));
    }

    [Fact]
    public async Task A_run_left_Running_by_a_dead_process_is_recorded_as_Failed_by_the_next_run()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 2);
        long dead;
        using (var store = f.Destination().OpenStore())
            dead = store.BeginRun(new SyncRunRecord { StartedAt = SyncFixture.Day0, Api = "Bundles", Table = "events", Outcome = "Running" });

        var summary = f.Sync(FromDay0());

        Assert.Equal("Succeeded", summary.Outcome);
        var old = f.History().Single(r => r.RunId == dead);
        Assert.Equal("Failed", old.Outcome);
        Assert.Contains("did not finish", old.Error);
    }

    [Fact]
    public async Task Data_freshness_says_how_far_behind_the_destination_is()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 3);
        var last = f.Emulator.Dataset.Bundles[^1];
        var options = FromDay0();
        options.Clock = () => last.Stop + TimeSpan.FromHours(30); // a day-long bundle, published about a day after its end
        var fresh = f.Sync(options);
        Assert.Equal(last.Stop, fresh.DataThrough);
        Assert.Equal(TimeSpan.FromHours(30), fresh.Lag);
        Assert.True(fresh.IsUpToDate);

        options.Clock = () => last.Stop + TimeSpan.FromDays(4); // FullStory has published nothing new for days
        var stale = f.Sync(options);
        Assert.Equal(TimeSpan.FromDays(4), stale.Lag);
        Assert.False(stale.IsUpToDate);
    }

    [Fact]
    public async Task A_run_while_another_holds_the_lock_is_Skipped_and_touches_nothing()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 3);
        using (var held = f.Destination().TryAcquireRunLock(TimeSpan.Zero))
        {
            Assert.NotNull(held);
            var skipped = f.Sync(FromDay0());
            Assert.Equal("Skipped", skipped.Outcome);
            Assert.Contains("Another sync", skipped.Message);
            Assert.Null(skipped.Error);
            Assert.Equal(0, skipped.Batches);
            Assert.Equal(0, f.Emulator.Served.CountFor("list"));
            Assert.Equal(0, f.Emulator.Served.CountFor("get"));
            Assert.Empty(f.History()); // not yet: it waits beside the lock for the run holding it (here: none) to record it
        }

        // Released on dispose: the next run proceeds, and records the skipped run first.
        var next = f.Sync(FromDay0());
        Assert.Equal("Succeeded", next.Outcome);
        Assert.Equal(3, next.Batches);
        Assert.Equal(new[] { "Succeeded", "Skipped" }, f.History().Select(r => r.Outcome));
    }

    [Fact]
    public async Task A_run_that_waits_for_the_lock_proceeds_once_it_is_released()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 2);
        var held = f.Destination().TryAcquireRunLock(TimeSpan.Zero)!;
        var options = FromDay0();
        options.LockWait = TimeSpan.FromMinutes(2);
        using var asking = new ManualResetEventSlim();
        var observer = new OperationObserver { Verbose = m => { if (m.StartsWith("Taking the sync lock")) asking.Set(); } };
        var waiting = Task.Run(() => f.Sync(options, observer));
        asking.Wait(TimeSpan.FromMinutes(1));
        held.Dispose(); // the waiter takes the lock once it is free, however long it had to wait
        var summary = await waiting;
        Assert.Equal("Succeeded", summary.Outcome);
        Assert.Equal(2, summary.Batches);
    }

    [Fact]
    public async Task Two_concurrent_syncs_never_duplicate_and_one_skips_or_finds_nothing_left()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 6);
        using var go = new Barrier(2);
        SyncSummary RunOne() { go.SignalAndWait(); return f.Sync(FromDay0()); }
        var results = await Task.WhenAll(Task.Run(RunOne), Task.Run(RunOne));

        Assert.All(results, r => Assert.Contains(r.Outcome, new[] { "Succeeded", "Skipped" }));
        Assert.Contains(results, r => r.Outcome == "Succeeded");
        Assert.Equal(6, results.Sum(r => r.Batches));
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath));
        Assert.All(Db.RowsPerBatch(f.DbPath), kv => Assert.Equal(f.Emulator.Dataset.Find(long.Parse(kv.Key["bundle:".Length..]))!.EventCount, kv.Value));
        // Every run is recorded: a skipped one enters the history by the next run that holds the lock, at the latest.
        Assert.Equal(0, f.Sync(FromDay0()).Batches);
        Assert.Equal(3, f.History().Count);
        Assert.Equal(results.Count(r => r.Outcome == "Skipped"), f.History().Count(r => r.Outcome == "Skipped"));
    }

    [Fact]
    public async Task Two_concurrent_syncs_with_a_long_lock_wait_both_succeed_with_exact_totals()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 6);
        using var go = new Barrier(2);
        SyncSummary RunOne()
        {
            go.SignalAndWait();
            return f.Sync(new SyncOptions { Start = SyncFixture.Day0, LockWait = TimeSpan.FromMinutes(5) });
        }
        var results = await Task.WhenAll(Task.Run(RunOne), Task.Run(RunOne));

        Assert.All(results, r => Assert.Equal("Succeeded", r.Outcome));
        Assert.Equal(6, results.Sum(r => r.Batches));
        Assert.Contains(results, r => r.Batches == 0); // the second found everything loaded
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath));
        Assert.Equal(6, f.Emulator.Served.CountFor("get"));
        Assert.Equal(2, f.History().Count);
    }
}
