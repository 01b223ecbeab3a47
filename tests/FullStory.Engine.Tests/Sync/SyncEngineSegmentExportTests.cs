using FullStory.Engine.Api;
using FullStory.Engine.Sync;

namespace FullStory.Engine.Tests.Sync;

/// <summary>The scheduled sync over the Segment Export API: time windows, only those FullStory has had time to complete.</summary>
public class SyncEngineSegmentExportTests
{
    private static readonly DateTimeOffset Day0 = SyncFixture.Day0;

    private static SyncOptions Windows(DateTimeOffset now, TimeSpan? size = null) => new()
    {
        Api = SyncApi.SegmentExport,
        Start = Day0,
        WindowSize = size ?? TimeSpan.FromHours(12),
        Clock = () => now,
    };

    private static string Key(DateTimeOffset s, DateTimeOffset e) => new SegmentExportRequest(s, e).BatchKey;

    [Fact]
    public async Task First_run_loads_every_completed_window_with_exact_counts_and_the_second_only_newly_completed_ones()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4);
        var now = Day0.AddDays(4); // with the default lag of one day, windows ending by Day0 + 3 days are complete
        var first = f.Sync(Windows(now));

        Assert.Equal("Succeeded", first.Outcome);
        var expectedWindows = Enumerable.Range(0, 6).Select(i => (S: Day0.AddHours(12 * i), E: Day0.AddHours(12 * (i + 1)))).ToList();
        Assert.Equal(expectedWindows.Select(w => Key(w.S, w.E)), first.Loaded.Select(r => r.BatchKey));
        long expectedRows = expectedWindows.Sum(w => (long)f.Emulator.Dataset.EventsBetween(w.S, w.E).Count());
        Assert.True(expectedRows > 0);
        Assert.Equal(expectedRows, first.Rows);
        Assert.Equal(expectedRows, Db.Rows(f.DbPath));
        var perBatch = Db.RowsPerBatch(f.DbPath);
        foreach (var w in expectedWindows)
        {
            long n = f.Emulator.Dataset.EventsBetween(w.S, w.E).Count();
            Assert.Equal(n, perBatch.GetValueOrDefault(Key(w.S, w.E)));
        }
        Assert.Equal(Day0.AddDays(3), first.DataThrough);
        Assert.Equal(TimeSpan.FromDays(1), first.Lag);
        Assert.True(first.IsUpToDate);
        Assert.Equal(6, f.Emulator.Served.CountFor("create"));

        // Spot-check values of one window against the emulator's segment export.
        var w2 = expectedWindows[2];
        var expected = f.Emulator.Dataset.EventsBetween(w2.S, w2.E).ToList();
        var rows = Db.Select(f.DbPath, Key(w2.S, w2.E), "EventType", "UserId", "PageUrl", "EventTargetText", "PageUserAgent");
        Assert.Equal(expected.Count, rows.Count);
        for (int i = 0; i < expected.Count; i += 5)
        {
            Assert.Equal(expected[i]["EventType"]!.GetValue<string>(), rows[i]["EventType"]);
            Assert.Equal(expected[i]["UserId"]!.GetValue<long>(), rows[i]["UserId"]);
            Assert.Equal(expected[i]["PageUrl"]?.GetValue<string>(), rows[i]["PageUrl"]);
            Assert.Equal(expected[i]["EventTargetText"]?.GetValue<string>(), rows[i]["EventTargetText"]);
        }

        // A day later two more windows are complete: only they are asked for.
        var second = f.Sync(Windows(now.AddDays(1)));
        Assert.Equal("Succeeded", second.Outcome);
        Assert.Equal(new[] { Key(Day0.AddDays(3), Day0.AddHours(84)), Key(Day0.AddHours(84), Day0.AddDays(4)) }, second.Loaded.Select(r => r.BatchKey));
        Assert.Equal(8, f.Emulator.Served.CountFor("create"));
        Assert.Equal(f.Emulator.Dataset.EventsBetween(Day0, Day0.AddDays(4)).LongCount(), Db.Rows(f.DbPath));
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath)); // every generated event, once

        // Nothing newly complete: nothing asked for.
        var third = f.Sync(Windows(now.AddDays(1).AddHours(6)));
        Assert.Equal(0, third.Batches);
        Assert.Equal(8, f.Emulator.Served.CountFor("create"));
        Assert.Equal(new[] { 0, 2, 6 }, f.History().Select(r => r.Batches));
        Assert.All(f.History(), r => Assert.Equal("SegmentExport", r.Api));
    }

    [Fact]
    public async Task Windows_are_aligned_to_the_start_and_only_end_once_the_lag_has_passed()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 3);
        var options = Windows(Day0.AddDays(3).AddHours(23), TimeSpan.FromDays(1));
        options.Start = Day0.AddHours(6);
        var summary = f.Sync(options);
        // Horizon = now - 1 day = Day0 + 2d23h: the windows [6h, 30h) and [30h, 54h) are complete; [54h, 78h) is not.
        Assert.Equal(new[] { Key(Day0.AddHours(6), Day0.AddHours(30)), Key(Day0.AddHours(30), Day0.AddHours(54)) }, summary.Loaded.Select(r => r.BatchKey));
        Assert.Equal(f.Emulator.Dataset.EventsBetween(Day0.AddHours(6), Day0.AddHours(54)).LongCount(), Db.Rows(f.DbPath));
    }

    [Fact]
    public async Task A_window_that_fails_halfway_is_recorded_and_the_next_run_completes_without_duplicates()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 3);
        var now = Day0.AddDays(4); // six 12-hour windows
        var options = Windows(now);
        // Every export that covers the first minute of 2 March fails (the third window, then each half of it that holds that
        // minute, down to the smallest window allowed).
        f.Emulator.Faults.FailWindow(Day0.AddDays(1).AddMinutes(1), errorDetails: "the export broke (injected)");

        var failed = f.Sync(options);

        Assert.Equal("Failed", failed.Outcome);
        Assert.Equal(2, failed.Batches);
        Assert.Contains("the export broke (injected)", failed.Error);
        Assert.Contains("2025-03-02T00:00:00Z", failed.Error); // names the window
        Assert.DoesNotContain(f.Emulator.ApiKey, failed.Error);
        Assert.Equal(Day0.AddDays(1), failed.DataThrough);
        var record = Assert.Single(f.History());
        Assert.Equal("Failed", record.Outcome);
        Assert.Equal(2, record.Batches);
        Assert.Equal(failed.Error, record.Error);
        Assert.Equal(f.Emulator.Dataset.EventsBetween(Day0, Day0.AddDays(1)).LongCount(), Db.Rows(f.DbPath));

        f.Emulator.Faults.Clear();
        var next = f.Sync(Windows(now));
        Assert.Equal("Succeeded", next.Outcome);
        Assert.Equal(4, next.Batches);
        Assert.Equal(f.Emulator.Dataset.EventsBetween(Day0, Day0.AddDays(3)).LongCount(), Db.Rows(f.DbPath));
        using (var store = f.Destination().OpenStore()) Assert.Equal(6, store.GetLoadedBatches().Count); // every window recorded once
        Assert.All(Db.RowsPerBatch(f.DbPath), kv =>
        {
            var range = kv.Key["export:everyone:".Length..].Split('/');
            Assert.Equal(f.Emulator.Dataset.EventsBetween(DateTimeOffset.Parse(range[0]), DateTimeOffset.Parse(range[1])).LongCount(), kv.Value);
        });
    }

    [Fact]
    public async Task A_broken_export_download_is_loaded_again_as_a_whole_window()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 2, eventsPerBundle: 400);
        f.Emulator.Faults.Truncate("download", afterBytes: 3000, times: 1);
        var summary = f.Sync(Windows(Day0.AddDays(3), TimeSpan.FromDays(1)));
        Assert.Equal("Succeeded", summary.Outcome);
        Assert.Equal(1, f.Emulator.Served.FaultsFired);
        Assert.True(summary.Retries >= 1);
        Assert.Equal(2, f.Emulator.Served.CountFor("create")); // the export itself was not asked for again
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath));
    }

    [Fact]
    public async Task Two_concurrent_window_syncs_never_duplicate()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 3);
        using var go = new Barrier(2);
        SyncSummary RunOne() { go.SignalAndWait(); return f.Sync(Windows(Day0.AddDays(4))); }
        var results = await Task.WhenAll(Task.Run(RunOne), Task.Run(RunOne));
        Assert.All(results, r => Assert.Contains(r.Outcome, new[] { "Succeeded", "Skipped" }));
        Assert.Equal(6, results.Sum(r => r.Batches));
        Assert.Equal(f.ExpectedRows(f.Emulator.Dataset.Bundles), Db.Rows(f.DbPath));
        Assert.Equal(6, f.Emulator.Served.CountFor("create"));
    }
}
