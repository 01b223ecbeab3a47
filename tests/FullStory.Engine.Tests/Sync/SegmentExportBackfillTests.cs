using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;

namespace FullStory.Engine.Tests.Sync;

/// <summary>
/// Issue 11: a backfill with several exports in flight, loaded strictly in time order; failures, splits, limits and
/// interruptions against the emulator over loopback, into a real SQLite file.
/// </summary>
public class SegmentExportBackfillTests
{
    private static readonly DateTimeOffset Day0 = SyncFixture.Day0;

    private static string Key(DateTimeOffset s, DateTimeOffset e) => new SegmentExportRequest(s, e).BatchKey;

    private static SyncOptions Backfill(DateTimeOffset now, TimeSpan? windowSize = null) => new()
    {
        Api = SyncApi.SegmentExport,
        Start = Day0,
        WindowSize = windowSize,
        Clock = () => now,
    };

    private static List<(DateTimeOffset S, DateTimeOffset E)> Days(int from, int to) =>
        Enumerable.Range(from, to - from).Select(i => (Day0.AddDays(i), Day0.AddDays(i + 1))).ToList();

    /// <summary>Each window's rows, exactly what the emulator's export of that window holds; no row outside a recorded window.</summary>
    private static void AssertExactWindows(SyncFixture f, IReadOnlyList<(DateTimeOffset S, DateTimeOffset E)> windows)
    {
        var perBatch = Db.RowsPerBatch(f.DbPath);
        using (var store = f.Destination().OpenStore())
            Assert.Equal(windows.Select(w => Key(w.S, w.E)), store.GetLoadedBatches().Select(b => b.Key)); // recorded, oldest first, once each
        foreach (var (s, e) in windows)
            Assert.Equal(f.Emulator.Dataset.CountBetween(s, e), perBatch.GetValueOrDefault(Key(s, e)));
        Assert.Equal(windows.Sum(w => f.Emulator.Dataset.CountBetween(w.S, w.E)), Db.Rows(f.DbPath));
        Assert.Empty(perBatch.Keys.Except(windows.Select(w => Key(w.S, w.E))));
    }

    [Fact]
    public async Task A_backfill_uses_week_windows_then_day_windows_with_four_exports_in_flight_and_exact_rows()
    {
        using var clock = new ExportClock();
        await using var f = await SyncFixture.StartAsync(bundles: 21, eventsPerBundle: 40,
            configure: o => { o.ExportDuration = TimeSpan.FromSeconds(10); o.Clock = () => clock.Now; });
        var now = Day0.AddDays(21); // the horizon (now - 1 day lag) is the end of day 20

        var run = Task.Run(() => f.Sync(Backfill(now)));
        // Exports take emulator time, and the emulator's clock stands still: the run starts four before any completes.
        Assert.True(ExportClock.WaitUntil(() => f.Emulator.RunningExports == 4), "four exports were never running at once");
        clock.Run();
        var summary = await run;

        Assert.Equal("Succeeded", summary.Outcome);
        var expected = new List<(DateTimeOffset S, DateTimeOffset E)> { (Day0, Day0.AddDays(7)), (Day0.AddDays(7), Day0.AddDays(14)) };
        expected.AddRange(Days(14, 20)); // a week no longer fits before the horizon: day windows
        Assert.Equal(expected.Select(w => Key(w.S, w.E)), summary.Loaded.Select(r => r.BatchKey));
        AssertExactWindows(f, expected);
        Assert.Equal(f.Emulator.Dataset.CountBetween(Day0, Day0.AddDays(20)), summary.Rows);
        Assert.Equal(8, f.Emulator.Served.CountFor("create"));
        Assert.Equal(4, f.Emulator.PeakRunningExports); // never more than the throttle limit
        f.Emulator.Served.WaitForIdle(TimeSpan.FromSeconds(5));
        Assert.All(f.Emulator.Exports, e => Assert.Equal(1, e.DownloadsCompleted));
        Assert.Equal(Day0.AddDays(20), summary.DataThrough);
        var record = Assert.Single(f.History());
        Assert.Equal((8, summary.Rows), (record.Batches, record.Rows));

        // Caught up: the next run asks for nothing, and a day later for exactly that day.
        Assert.Equal(0, f.Sync(Backfill(now)).Batches);
        var next = f.Sync(Backfill(now.AddDays(1)));
        Assert.Equal(new[] { Key(Day0.AddDays(20), Day0.AddDays(21)) }, next.Loaded.Select(r => r.BatchKey));
        Assert.Equal(9, f.Emulator.Served.CountFor("create"));
    }

    [Fact]
    public async Task A_later_window_that_fails_does_not_stop_the_halves_of_an_earlier_split_window()
    {
        // A week window fails and is split; while its second half waits for a place (2 in flight), the day window after
        // it fails for good. The halves still run (they come before the failure), and the run ends at the first failure.
        await using var f = await SyncFixture.StartAsync(bundles: 9, eventsPerBundle: 40);
        var options = Backfill(Day0.AddDays(9)); // a week window, then a day window
        options.ThrottleLimit = 2;
        options.MinimumWindow = TimeSpan.FromDays(2); // the week splits once; its halves and the day window do not
        f.Emulator.Faults.FailWindow(Day0.AddDays(5), errorDetails: "second half (injected)");
        f.Emulator.Faults.FailWindow(Day0.AddDays(7).AddMinutes(1), errorDetails: "day window (injected)");

        var run = Task.Run(() => f.Sync(options));
        var failed = await run.WaitAsync(TimeSpan.FromSeconds(60)); // before the fix it waited for the second half forever

        Assert.Equal("Failed", failed.Outcome);
        var half = Day0.AddHours(84);
        Assert.Contains("second half (injected)", failed.Error);
        Assert.Contains($"from {half.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} to {Day0.AddDays(7).UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}", failed.Error);
        Assert.Equal(half, failed.DataThrough);
        AssertExactWindows(f, [(Day0, half)]);
    }

    [Fact]
    public async Task When_a_middle_window_fails_everything_before_it_is_loaded_nothing_after_it_and_later_exports_are_abandoned()
    {
        using var clock = new ExportClock();
        await using var f = await SyncFixture.StartAsync(bundles: 8, eventsPerBundle: 40,
            configure: o => { o.ExportDuration = TimeSpan.FromSeconds(10); o.Clock = () => clock.Now; });
        var options = Backfill(Day0.AddDays(9), TimeSpan.FromDays(1)); // eight day windows
        options.MinimumWindow = TimeSpan.FromHours(6);
        // The second window fails, and so does every half of it that holds its first minute, down to 6 hours.
        f.Emulator.Faults.FailWindow(Day0.AddDays(1).AddMinutes(1), errorDetails: "this window cannot be exported (injected)");

        var run = Task.Run(() => f.Sync(options));
        // Windows 1 to 4 are started before anything completes; 3 and 4 come after the failing one.
        Assert.True(ExportClock.WaitUntil(() => f.Emulator.Exports.Count(e => e.Window.Start >= Day0.AddDays(2)) >= 2), "the later windows were never started");
        clock.Run();
        var failed = await run;

        Assert.Equal("Failed", failed.Outcome);
        Assert.Equal(1, failed.Batches);
        Assert.Contains("this window cannot be exported (injected)", failed.Error);
        Assert.Contains("from 2025-03-02T00:00:00Z to 2025-03-02T06:00:00Z", failed.Error); // the smallest piece that still failed
        Assert.Equal(Day0.AddDays(1), failed.DataThrough);
        AssertExactWindows(f, Days(0, 1));
        // Exports after the failure were abandoned: never downloaded.
        var later = f.Emulator.Exports.Where(e => e.Window.Start >= Day0.AddDays(1)).ToList();
        Assert.Contains(later, e => e.Window.Start == Day0.AddDays(2));
        Assert.Contains(later, e => e.Window.Start == Day0.AddDays(3));
        Assert.All(later, e => Assert.Equal(0, e.DownloadsStarted));
        // The failing window was split: 1 day, 12 hours, 6 hours.
        Assert.Equal(new[] { TimeSpan.FromDays(1), TimeSpan.FromHours(12), TimeSpan.FromHours(6) },
            f.Emulator.Exports.Where(e => e.State == "FAILED").Select(e => e.Window.End - e.Window.Start));
        var record = Assert.Single(f.History());
        Assert.Equal(("Failed", 1, f.Emulator.Dataset.CountBetween(Day0, Day0.AddDays(1)), failed.Error), (record.Outcome, record.Batches, record.Rows, record.Error));

        // Once FullStory can export it, the next run resumes exactly at the failed window.
        f.Emulator.Faults.Clear();
        var next = f.Sync(options);
        Assert.True(next.Outcome == "Succeeded", next.Error);
        Assert.Equal(Key(Day0.AddDays(1), Day0.AddDays(2)), next.Loaded[0].BatchKey);
        AssertExactWindows(f, Days(0, 8));
    }

    [Fact]
    public async Task Refused_and_failed_windows_are_split_in_halves_and_empty_windows_cost_one_export()
    {
        // Ten days of data, a sync through day 14: the last windows are empty.
        await using var f = await SyncFixture.StartAsync(bundles: 10, eventsPerBundle: 40);
        f.Emulator.Faults.Add(new FullStory.Emulator.FaultRule
        {
            Endpoint = "create", Kind = FullStory.Emulator.FaultKind.Status, Status = 400, ExportLongerThan = TimeSpan.FromDays(2), Times = 0,
            Body = System.Text.Json.Nodes.JsonNode.Parse("""{"code":"invalid_argument","message":"the time range is too large"}"""),
        });
        f.Emulator.Faults.FailWindow(Day0.AddDays(9).AddHours(1), longerThan: TimeSpan.FromDays(1), errorDetails: "too much data");

        var summary = f.Sync(Backfill(Day0.AddDays(15))); // two week windows to the horizon at day 14

        Assert.Equal("Succeeded", summary.Outcome);
        // A week is refused, and so is half a week; 1.75 days are accepted. The piece holding day 9 + 1 h fails while
        // longer than a day and is halved once more.
        var d = TimeSpan.FromDays(1.75);
        var expected = new List<(DateTimeOffset S, DateTimeOffset E)>();
        for (int i = 0; i < 4; i++) expected.Add((Day0 + i * d, Day0 + (i + 1) * d));
        expected.Add((Day0.AddDays(7), Day0.AddDays(7) + d));
        expected.Add((Day0.AddDays(7) + d, Day0.AddDays(7) + d + d / 2));
        expected.Add((Day0.AddDays(7) + d + d / 2, Day0.AddDays(10.5)));
        expected.Add((Day0.AddDays(10.5), Day0.AddDays(10.5) + d));
        expected.Add((Day0.AddDays(10.5) + d, Day0.AddDays(14)));
        Assert.Equal(expected.Select(w => Key(w.S, w.E)), summary.Loaded.Select(r => r.BatchKey));
        AssertExactWindows(f, expected);
        Assert.Equal(f.Emulator.Dataset.CountBetween(Day0, Day0.AddDays(14)), summary.Rows);
        Assert.Equal(6, f.Emulator.Served.Requests.Count(r => r.Endpoint == "create" && r.Status == 400));
        Assert.Equal(1, f.Emulator.Exports.Count(e => e.State == "FAILED"));

        // The windows after day 10 hold nothing: recorded with 0 rows, one export each, nothing split or asked again.
        var empty = expected.Where(w => w.S >= Day0.AddDays(10.5)).ToList();
        Assert.All(empty, w => Assert.Equal(0, f.Emulator.Dataset.CountBetween(w.S, w.E)));
        Assert.All(empty, w => Assert.Single(f.Emulator.Exports, e => e.Window.Start == w.S && e.Window.End == w.E));
        using (var store = f.Destination().OpenStore())
            Assert.All(store.GetLoadedBatches().Where(b => b.RangeStart >= Day0.AddDays(10.5)), b => Assert.Equal(0, b.Rows));
        Assert.Equal(Day0.AddDays(14), summary.DataThrough);
    }

    [Fact]
    public async Task A_429_on_create_lowers_the_number_in_flight_instead_of_failing()
    {
        // FullStory lets two exports run per key; the run would like four.
        await using var f = await SyncFixture.StartAsync(bundles: 12, eventsPerBundle: 30,
            configure: o => { o.ExportDuration = TimeSpan.FromMilliseconds(300); o.MaxRunningExports = 2; });
        var log = new List<string>();
        var observer = new OperationObserver { Verbose = m => { lock (log) log.Add(m); } };

        var summary = f.Sync(Backfill(Day0.AddDays(13), TimeSpan.FromDays(1)), observer);

        Assert.Equal("Succeeded", summary.Outcome);
        AssertExactWindows(f, Days(0, 12));
        Assert.Equal(2, f.Emulator.PeakRunningExports);
        Assert.True(f.Emulator.ExportsRefusedForLimit >= 1, "FullStory never had to refuse: the test did not test anything");
        // After the first refusal the run keeps two in flight and only now and then tries a third: far fewer refusals than windows.
        Assert.InRange(f.Emulator.ExportsRefusedForLimit, 1, 7);
        Assert.Contains(log, m => m.Contains("keeping at most 2 in flight"));
        Assert.Equal(12, f.Emulator.Exports.Count); // a refused create made no export; each window was exported once
    }

    [Fact]
    public async Task A_429_on_a_status_check_waits_and_slows_down()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4, eventsPerBundle: 30);
        f.Emulator.Faults.TooManyRequests("operation", retryAfterSeconds: 1, times: 2);
        var log = new List<string>();
        var summary = f.Sync(Backfill(Day0.AddDays(5), TimeSpan.FromDays(1)), new OperationObserver { Verbose = m => { lock (log) log.Add(m); } });
        Assert.Equal("Succeeded", summary.Outcome);
        AssertExactWindows(f, Days(0, 4));
        Assert.Equal(2, f.Emulator.Served.Requests.Count(r => r.Endpoint == "operation" && r.Status == 429));
        Assert.Contains(log, m => m.Contains("asked to slow down (429)"));
    }

    [Fact]
    public async Task A_backfill_cancelled_mid_way_keeps_whole_windows_and_the_next_run_resumes_exactly_after_them()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 10, eventsPerBundle: 40, configure: o => o.ExportDuration = TimeSpan.FromMilliseconds(100));
        using var cts = new CancellationTokenSource();
        var options = Backfill(Day0.AddDays(11), TimeSpan.FromDays(1));
        int loaded = 0;
        options.BatchLoaded = _ => { if (++loaded == 3) cts.Cancel(); };

        var stopped = f.Sync(options, cancellationToken: cts.Token);

        Assert.Equal("Cancelled", stopped.Outcome);
        Assert.Equal(3, stopped.Batches);
        AssertExactWindows(f, Days(0, 3));
        var first = Assert.Single(f.History());
        Assert.Equal(("Cancelled", 3, Db.Rows(f.DbPath)), (first.Outcome, first.Batches, first.Rows));
        // Exports started for later windows were abandoned: none was downloaded.
        Assert.All(f.Emulator.Exports.Where(e => e.Window.Start >= Day0.AddDays(3)), e => Assert.Equal(0, e.DownloadsStarted));

        options.BatchLoaded = null;
        var resumed = f.Sync(options);
        Assert.Equal("Succeeded", resumed.Outcome);
        Assert.Equal(Days(3, 10).Select(w => Key(w.S, w.E)), resumed.Loaded.Select(r => r.BatchKey)); // exactly after the last whole window
        AssertExactWindows(f, Days(0, 10));
        Assert.Equal(Db.Rows(f.DbPath), f.History().Sum(r => r.Rows)); // the history adds up to the table
    }

    [Fact]
    public async Task Ctrl_C_during_a_download_rolls_that_window_back_names_it_and_the_rerun_loads_it_once()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 4, eventsPerBundle: 3000);
        using var cts = new CancellationTokenSource();
        var options = Backfill(Day0.AddDays(5), TimeSpan.FromDays(1));
        int loaded = 0;
        // The third window's download trickles in; Ctrl+C arrives while it is being loaded.
        options.BatchLoaded = _ =>
        {
            if (++loaded != 2) return;
            f.Emulator.Faults.Slow("download", bytesPerSecond: 20_000);
            Task.Run(() =>
            {
                ExportClock.WaitUntil(() => f.Emulator.Exports.Any(e => e.Window.Start == Day0.AddDays(2) && e.DownloadsStarted > 0));
                cts.Cancel();
            });
        };

        var stopped = f.Sync(options, cancellationToken: cts.Token);

        Assert.Equal("Cancelled", stopped.Outcome);
        Assert.Equal(2, stopped.Batches);
        Assert.Contains($"{Key(Day0.AddDays(2), Day0.AddDays(3))} was being loaded and was rolled back", stopped.Error);
        AssertExactWindows(f, Days(0, 2));
        Assert.Equal((2, Db.Rows(f.DbPath)), (f.History()[0].Batches, f.History()[0].Rows));

        f.Emulator.Faults.Clear();
        options.BatchLoaded = null;
        Assert.Equal(2, f.Sync(options).Batches);
        AssertExactWindows(f, Days(0, 4));
    }

    [Fact]
    public async Task Receive_streams_many_windows_in_time_order_downloading_only_the_window_being_read()
    {
        using var clock = new ExportClock();
        await using var f = await SyncFixture.StartAsync(bundles: 60, eventsPerBundle: 30,
            configure: o => { o.ExportDuration = TimeSpan.FromSeconds(10); o.Clock = () => clock.Now; });
        var client = f.FullStory.Session.GetClient();
        var range = new SegmentExportRequest(Day0.AddHours(6), Day0.AddDays(59));
        var windows = SegmentExportPlan.Cover(range, TimeSpan.FromDays(7)).ToList();
        Assert.Equal(9, windows.Count);

        var seen = new List<string>();
        long count = 0;
        string? current = null;
        // The emulator's clock stands still until four exports run at once; then exports complete quickly.
        var started = Task.Run(() => { bool four = ExportClock.WaitUntil(() => f.Emulator.RunningExports == 4); clock.Run(); return four; });
        foreach (var e in client.ReadSegmentExportWindows(range, TimeSpan.FromDays(7)))
        {
            count++;
            if (e.Source == current) continue;
            current = e.Source!;
            seen.Add(current);
            // The first event of a window: every earlier window was downloaded completely; no later window is being downloaded.
            int k = windows.FindIndex(w => w.BatchKey == current);
            Assert.Equal(seen.Count - 1, k);
            var exports = f.Emulator.Exports;
            Assert.All(exports.Where(x => x.Window.Start < windows[k].Start), x => Assert.Equal(1, x.DownloadsStarted));
            Assert.All(exports.Where(x => x.Window.Start > windows[k].Start), x => Assert.Equal(0, x.DownloadsStarted));
        }
        Assert.True(await started, "four exports were never running at once");
        Assert.Equal(windows.Select(w => w.BatchKey), seen); // strictly in time order, each window once
        Assert.Equal(f.Emulator.Dataset.CountBetween(range.Start, range.End), count);
        Assert.True(count > 1000);
    }

    [Fact]
    public async Task A_run_whose_export_never_finishes_fails_in_bounded_time_and_the_next_run_loads_the_windows()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 21, eventsPerBundle: 20, configure: o => o.ExportDuration = TimeSpan.FromHours(1));
        f.FullStory.Session.Retry.ExportTimeout = TimeSpan.FromMilliseconds(800);
        var now = Day0.AddDays(21);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var failed = f.Sync(Backfill(now));

        Assert.InRange(waited.Elapsed, TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(30));
        Assert.Equal(("Failed", 0, 0L), (failed.Outcome, failed.Batches, failed.Rows));
        Assert.Contains("did not finish the export", failed.Error);
        Assert.Contains("-ExportTimeout", failed.Error);
        Assert.Equal(0L, Convert.ToInt64(Db.Scalar(f.DbPath, "SELECT count(*) FROM sqlite_master WHERE name = 'events'"))); // nothing loaded
        Assert.All(f.Emulator.Exports, e => Assert.Equal(0, e.DownloadsStarted));
        var record = Assert.Single(f.History());
        Assert.Equal(("Failed", failed.Error), (record.Outcome, record.Error));

        // FullStory is back to normal: the next run loads every window, exactly.
        f.Emulator.Options.ExportDuration = TimeSpan.Zero;
        // (and the timeout back to its default: the emulator finishes an export after a number of polls, not a time, and a
        // busy test machine may poll late)
        f.FullStory.Session.Retry.ExportTimeout = new RetrySettings().ExportTimeout;
        var next = f.Sync(Backfill(now));
        Assert.True(next.Outcome == "Succeeded", next.Error);
        Assert.Equal(f.Emulator.Dataset.CountBetween(Day0, Day0.AddDays(20)), Db.Rows(f.DbPath));
    }

    [Fact]
    public async Task Cancelling_a_receive_stops_every_poll_and_download()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 30, eventsPerBundle: 30, configure: o => o.ExportDuration = TimeSpan.FromSeconds(30));
        using var cts = new CancellationTokenSource();
        var client = f.FullStory.Session.GetClient();
        var reading = Task.Run(() => client.ReadSegmentExportWindows(new SegmentExportRequest(Day0, Day0.AddDays(28)), cancellationToken: cts.Token).Count());
        Assert.True(ExportClock.WaitUntil(() => f.Emulator.RunningExports == 4));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        // Once the read has ended, nothing more is asked of FullStory.
        int requests = f.Emulator.Served.Requests.Count;
        Thread.Sleep(300);
        Assert.Equal(requests, f.Emulator.Served.Requests.Count);
        Assert.All(f.Emulator.Exports, e => Assert.Equal(0, e.DownloadsStarted));
    }
}

public class SegmentExportBookmarkTests
{
    private static readonly DateTimeOffset Day0 = SyncFixture.Day0;

    private static string Key(DateTimeOffset s, DateTimeOffset e) => new SegmentExportRequest(s, e).BatchKey;

    [Fact]
    public async Task Day_windows_loaded_by_an_older_version_are_the_bookmark_and_the_backfill_continues_after_them()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 20, eventsPerBundle: 40);
        // What older versions did: one day at a time, aligned to -Start.
        var old = f.Sync(new SyncOptions { Api = SyncApi.SegmentExport, Start = Day0, WindowSize = TimeSpan.FromDays(1), Clock = () => Day0.AddDays(5) });
        Assert.Equal(4, old.Batches);

        var now = f.Sync(new SyncOptions { Api = SyncApi.SegmentExport, Start = Day0, Clock = () => Day0.AddDays(20) });

        Assert.Equal("Succeeded", now.Outcome);
        Assert.Equal(new[] { Key(Day0.AddDays(4), Day0.AddDays(11)), Key(Day0.AddDays(11), Day0.AddDays(18)), Key(Day0.AddDays(18), Day0.AddDays(19)) },
            now.Loaded.Select(r => r.BatchKey));
        Assert.Equal(f.Emulator.Dataset.CountBetween(Day0, Day0.AddDays(19)), Db.Rows(f.DbPath));
        Assert.All(Db.RowsPerBatch(f.DbPath), kv =>
        {
            var range = kv.Key["export:everyone:".Length..].Split('/');
            Assert.Equal(f.Emulator.Dataset.CountBetween(DateTimeOffset.Parse(range[0]), DateTimeOffset.Parse(range[1])), kv.Value);
        });
    }

    [Fact]
    public async Task A_bookmark_with_a_fraction_of_a_second_resumes_at_the_second_the_older_version_really_asked_for()
    {
        // Older versions started a year before "now", ticks included, and asked FullStory for whole seconds (the fraction was
        // dropped) while recording the exact end. The next window starts at the second that was really asked for.
        await using var f = await SyncFixture.StartAsync(bundles: 4, eventsPerBundle: 40);
        var end = Day0.AddDays(1).AddMilliseconds(123);
        using (var store = f.Destination().OpenStore())
        {
            var client = f.FullStory.Session.GetClient();
            var request = new SegmentExportRequest(Day0, end);
            store.LoadBatch(new BatchInfo(request.BatchKey, Day0, end), client.ReadSegmentExport(request));
        }

        var next = f.Sync(new SyncOptions { Api = SyncApi.SegmentExport, Start = Day0, WindowSize = TimeSpan.FromDays(1), Clock = () => Day0.AddDays(4) });

        Assert.Equal(Key(Day0.AddDays(1), Day0.AddDays(2)), next.Loaded[0].BatchKey);
        Assert.Equal(f.Emulator.Dataset.CountBetween(Day0, Day0.AddDays(3)), Db.Rows(f.DbPath)); // no event twice, none missing
    }
}
