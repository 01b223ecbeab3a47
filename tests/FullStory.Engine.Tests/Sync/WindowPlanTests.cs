using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;

namespace FullStory.Engine.Tests.Sync;

/// <summary>Issue 12, item 7, and the window sizes of issue 11: sizes that would run away are refused; windows are made lazily.</summary>
public class WindowPlanTests
{
    private static readonly DateTimeOffset Day0 = SyncFixture.Day0;

    [Theory]
    [InlineData(1L)]                      // a millisecond in ticks' clothing: TimeSpan.FromTicks(1)
    [InlineData(60L)]                     // what "-WindowSize 60" used to bind to: 60 ticks
    [InlineData(10_000L)]                 // a millisecond
    [InlineData(590_000_000L)]            // 59 seconds
    public void A_window_size_below_a_minute_is_refused(long ticks)
    {
        var session = new FullStorySession(new ApiKeyCredential("na1.abcdefghijklmnopqrstuvwx"), baseUri: new Uri("http://127.0.0.1:9/"));
        var ex = Assert.Throws<ArgumentException>(() => new SyncEngine(session, SyncDestination.Sqlite("x.db"),
            new SyncOptions { Api = SyncApi.SegmentExport, WindowSize = TimeSpan.FromTicks(ticks) }));
        Assert.Contains("one minute", ex.Message);
    }

    [Fact]
    public void A_window_size_must_be_whole_seconds_and_a_minute_is_enough()
    {
        Assert.Contains("whole number of seconds", Assert.Throws<ArgumentException>(() => SegmentExportPlan.ValidateWindowSize(TimeSpan.FromSeconds(90.5))).Message);
        SegmentExportPlan.ValidateWindowSize(TimeSpan.FromMinutes(1));
        SegmentExportPlan.ValidateWindowSize(TimeSpan.FromDays(30));
    }

    [Fact]
    public void A_year_of_one_minute_windows_is_counted_not_listed_and_made_one_at_a_time()
    {
        var plan = new SyncWindowPlan(Day0, Day0.AddDays(365), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1), "everyone");
        Assert.Equal(365L * 24 * 60, plan.Count);
        Assert.Equal(Day0.AddDays(365), plan.End);
        Assert.Equal(new[] { Day0, Day0.AddMinutes(1), Day0.AddMinutes(2) }, plan.Windows().Take(3).Select(w => w.Start));

        // A thousand years of minutes: still only as many windows as are asked for.
        var huge = SegmentExportPlan.Cover(new SegmentExportRequest(Day0, Day0.AddYears(1000)), TimeSpan.FromMinutes(1));
        Assert.Equal(new[] { Day0.AddMinutes(1), Day0.AddMinutes(2) }, huge.Take(2).Select(w => w.End));
        Assert.True(SegmentExportPlan.CountCover(new SegmentExportRequest(Day0, Day0.AddYears(1000)), TimeSpan.FromMinutes(1)) > 500_000_000);
    }

    [Fact]
    public void Backfill_windows_are_weeks_until_a_week_no_longer_fits_then_days_aligned_to_the_start()
    {
        var plan = new SyncWindowPlan(Day0.AddHours(6), Day0.AddDays(17).AddHours(12), TimeSpan.FromDays(7), TimeSpan.FromDays(1), "everyone");
        var windows = plan.Windows().ToList();
        Assert.Equal(plan.Count, windows.Count);
        Assert.Equal(new[] { 7.0, 7, 1, 1, 1 }, windows.Select(w => w.Span.TotalDays));
        Assert.Equal(Day0.AddHours(6), windows[0].Start);
        Assert.All(windows.Zip(windows.Skip(1)), p => Assert.Equal(p.First.End, p.Second.Start)); // contiguous
        Assert.Equal(Day0.AddDays(17).AddHours(6), windows[^1].End); // only whole windows before the horizon
        Assert.Equal(windows[^1].End, plan.End);

        // A fraction of a second in the start is dropped: windows are asked for and recorded to the second.
        var odd = new SyncWindowPlan(Day0.AddTicks(1234567), Day0.AddDays(3), TimeSpan.FromDays(1), TimeSpan.FromDays(1), "everyone");
        Assert.Equal(Day0, odd.Windows().First().Start);
    }

    [Fact]
    public void Receive_windows_cover_the_range_exactly_with_a_shorter_last_window()
    {
        var range = new SegmentExportRequest(Day0.AddHours(6), Day0.AddDays(20)) { Format = "FORMAT_JSON" };
        var windows = SegmentExportPlan.Cover(range, TimeSpan.FromDays(7)).ToList();
        Assert.Equal(3, windows.Count);
        Assert.Equal(3, SegmentExportPlan.CountCover(range, TimeSpan.FromDays(7)));
        Assert.Equal(range.Start, windows[0].Start);
        Assert.Equal(range.End, windows[^1].End);
        Assert.Equal(TimeSpan.FromDays(20) - TimeSpan.FromHours(6) - TimeSpan.FromDays(14), windows[^1].Span);
        Assert.All(windows, w => Assert.Equal("FORMAT_JSON", w.Format));
        Assert.Throws<ArgumentException>(() => SegmentExportPlan.Cover(new SegmentExportRequest(Day0, Day0.AddMilliseconds(500)), TimeSpan.FromDays(7)));
    }

    [Fact]
    public async Task A_sync_with_one_minute_windows_over_a_year_starts_at_once_and_loads_them_in_order()
    {
        // Before the fix the window list was built first: a millisecond window size grew to gigabytes with no output.
        await using var f = await SyncFixture.StartAsync(bundles: 1, eventsPerBundle: 50);
        using var cts = new CancellationTokenSource();
        int loaded = 0;
        var options = new SyncOptions
        {
            Api = SyncApi.SegmentExport, Start = Day0.AddDays(-365), WindowSize = TimeSpan.FromMinutes(1), Clock = () => Day0.AddDays(2),
            BatchLoaded = _ => { if (++loaded == 5) cts.Cancel(); },
        };
        var progress = new List<SyncProgress>();
        options.Progress = p => progress.Add(p);

        var summary = f.Sync(options, cancellationToken: cts.Token);

        Assert.Equal("Cancelled", summary.Outcome);
        Assert.Equal(5, summary.Batches);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => new SegmentExportRequest(Day0.AddDays(-365).AddMinutes(i), Day0.AddDays(-365).AddMinutes(i + 1)).BatchKey),
            summary.Loaded.Select(r => r.BatchKey));
        Assert.Equal(366 * 24 * 60, progress.Max(p => p.BatchCount)); // the total is computed, never listed
        Assert.InRange(f.Emulator.Exports.Count, 5, 5 + SegmentExportSchedule.DefaultThrottleLimit);
    }
}

public class PollBackoffTests
{
    [Fact]
    public void The_first_status_check_comes_after_a_second_and_the_wait_grows_by_half_up_to_the_poll_interval()
    {
        var backoff = new PollBackoff(TimeSpan.FromSeconds(5));
        var waits = Enumerable.Range(0, 7).Select(_ => backoff.Next().TotalSeconds).ToList();
        Assert.Equal(new[] { 1, 1.5, 2.25, 3.375, 5, 5, 5 }, waits.Select(w => Math.Round(w, 3)));
    }

    [Fact]
    public void A_poll_interval_under_a_second_is_used_from_the_first_check()
    {
        var backoff = new PollBackoff(TimeSpan.FromMilliseconds(50));
        Assert.All(Enumerable.Range(0, 3), _ => Assert.Equal(TimeSpan.FromMilliseconds(50), backoff.Next()));
    }
}
