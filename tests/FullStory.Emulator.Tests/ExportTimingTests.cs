using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

/// <summary>
/// What the real Segment Export API does at scale: exports that take time (fixed, or growing with their size), a limit on
/// exports running at once per key (429 + Retry-After), and chosen windows that FAIL or are refused. Time is the
/// emulator's clock, moved by hand: nothing here depends on how fast the machine is.
/// </summary>
public class ExportTimingTests
{
    /// <summary>A clock the test moves.</summary>
    private sealed class ManualClock
    {
        public DateTimeOffset Now { get; set; } = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
        public void Advance(TimeSpan by) => Now += by;
    }

    private static async Task<(FullStoryEmulator Em, ManualClock Clock)> Start(Action<EmulatorOptions> configure)
    {
        var clock = new ManualClock();
        var o = T.Options(bundles: 4, events: 300);
        o.Clock = () => clock.Now;
        configure(o);
        return (await T.Start(o), clock);
    }

    private static async Task<HttpResponseMessage> Create(HttpClient c, DateTimeOffset start, DateTimeOffset end) =>
        await c.PostAsync("segments/v1/exports", T.JsonBody(T.ExportRequest(start, end)));

    private static async Task<string> CreateId(HttpClient c, DateTimeOffset start, DateTimeOffset end)
    {
        using var r = await Create(c, start, end);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        return (string)(await T.Json(r))["operationId"]!;
    }

    private static async Task<JsonNode> Poll(HttpClient c, string id) => await T.Json(await c.GetAsync($"operations/v1/{id}"));

    [Fact]
    public async Task A_timed_export_is_pending_until_its_time_has_passed_and_completes_whether_or_not_it_is_polled()
    {
        var (em, clock) = await Start(o => o.ExportDuration = TimeSpan.FromSeconds(10));
        await using var _ = em;
        using var c = T.Client(em);
        var polled = await CreateId(c, T.Day0, T.Day0.AddDays(1));
        var unpolled = await CreateId(c, T.Day0.AddDays(1), T.Day0.AddDays(2));
        Assert.Equal(2, em.RunningExports);

        for (int i = 0; i < 5; i++) // polling does not make it faster
        {
            var op = await Poll(c, polled);
            Assert.Equal("PENDING", (string?)op["state"]);
            Assert.Equal(0, (int)op["estimatePctComplete"]!);
        }
        clock.Advance(TimeSpan.FromSeconds(3));
        var partly = await Poll(c, polled);
        Assert.Equal("PENDING", (string?)partly["state"]);
        Assert.Equal(30, (int)partly["estimatePctComplete"]!);
        Assert.Null(partly["results"]);

        clock.Advance(TimeSpan.FromSeconds(7));
        Assert.Equal(0, em.RunningExports); // both done on the clock, the unpolled one too
        var done = await Poll(c, polled);
        Assert.Equal("COMPLETED", (string?)done["state"]);
        Assert.Equal(100, (int)done["estimatePctComplete"]!);
        var exportId = (string)done["results"]!["searchExportId"]!;
        Assert.Equal("COMPLETED", (string?)(await Poll(c, unpolled))["state"]);

        // The completed export downloads exactly its window.
        var location = await SegmentExportTests.Location(c, exportId);
        using var plain = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None });
        var events = T.ParseNdjson(T.Gunzip(await plain.GetByteArrayAsync(location)));
        T.SameEvents(em.Dataset.EventsBetween(T.Day0, T.Day0.AddDays(1)).ToList(), events);

        var records = em.Exports;
        Assert.Equal(2, records.Count);
        Assert.Equal(new ExportWindow(T.Day0, T.Day0.AddDays(1)), records[0].Window);
        Assert.Equal(clock.Now, records[0].FinishedAt);
        Assert.Equal(1, records[0].DownloadsCompleted);
        Assert.Equal(0, records[1].DownloadsStarted);
    }

    [Fact]
    public async Task Export_time_grows_with_the_number_of_events_in_the_window()
    {
        var (em, clock) = await Start(o => { o.ExportDuration = TimeSpan.FromSeconds(1); o.ExportDurationPer1000Events = TimeSpan.FromSeconds(20); });
        await using var _ = em;
        using var c = T.Client(em);
        // 300 events and 600 events (whole days of 300-event bundles): 1 s + 6 s and 1 s + 12 s.
        var small = await CreateId(c, T.Day0, T.Day0.AddDays(1));
        var large = await CreateId(c, T.Day0, T.Day0.AddDays(2));
        Assert.Equal(300, em.Dataset.CountBetween(T.Day0, T.Day0.AddDays(1)));
        Assert.Equal(600, em.Dataset.CountBetween(T.Day0, T.Day0.AddDays(2)));

        clock.Advance(TimeSpan.FromSeconds(6.9));
        Assert.Equal("PENDING", (string?)(await Poll(c, small))["state"]);
        clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal("COMPLETED", (string?)(await Poll(c, small))["state"]);
        var largeOp = await Poll(c, large);
        Assert.Equal("PENDING", (string?)largeOp["state"]);
        Assert.Equal(53, (int)largeOp["estimatePctComplete"]!); // 7 s of 13 s
        clock.Advance(TimeSpan.FromSeconds(5.9));
        Assert.Equal("PENDING", (string?)(await Poll(c, large))["state"]);
        clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal("COMPLETED", (string?)(await Poll(c, large))["state"]);
        Assert.Equal(new long[] { 300, 600 }, em.Exports.Select(e => e.Events));
    }

    [Fact]
    public async Task Beyond_the_running_limit_create_answers_429_with_Retry_After_until_a_place_frees()
    {
        var (em, clock) = await Start(o => { o.ExportDuration = TimeSpan.FromSeconds(5); o.MaxRunningExports = 2; });
        await using var _ = em;
        using var c = T.Client(em);
        await CreateId(c, T.Day0, T.Day0.AddDays(1));
        clock.Advance(TimeSpan.FromSeconds(1));
        await CreateId(c, T.Day0.AddDays(1), T.Day0.AddDays(2));

        using (var refused = await Create(c, T.Day0.AddDays(2), T.Day0.AddDays(3)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(4), refused.Headers.RetryAfter!.Delta); // the first one completes 4 s from now
            var body = await T.Json(refused);
            Assert.Equal("resource_exhausted", (string?)body["code"]);
            Assert.Contains("at most 2", (string?)body["message"]);
        }
        clock.Advance(TimeSpan.FromSeconds(3));
        using (var again = await Create(c, T.Day0.AddDays(2), T.Day0.AddDays(3)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, again.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), again.Headers.RetryAfter!.Delta);
        }
        clock.Advance(TimeSpan.FromSeconds(1));
        var third = await CreateId(c, T.Day0.AddDays(2), T.Day0.AddDays(3));
        Assert.Equal(2, em.RunningExports);
        Assert.Equal(2, em.PeakRunningExports);
        Assert.Equal(2, em.ExportsRefusedForLimit);
        Assert.Equal(3, em.Exports.Count); // refused creates made no export

        // A FAILED export frees its place too.
        em.Faults.Failed("broken", times: 1);
        Assert.Equal("FAILED", (string?)(await Poll(c, third))["state"]);
        await CreateId(c, T.Day0.AddDays(3), T.Day0.AddDays(4));

        using var anon = new HttpClient { BaseAddress = em.BaseUri };
        var stats = await T.Json(await anon.GetAsync("_emulator/stats"));
        Assert.Equal(2, (int)stats["exports"]!["refusedForLimit"]!);
        Assert.Equal(2, (int)stats["exports"]!["peakRunning"]!);
        Assert.Equal(4, stats["exports"]!["list"]!.AsArray().Count);
        Assert.Equal(2, stats["requests"]!.AsArray().Count(r => (int)r!["status"]! == 429));
    }

    [Fact]
    public async Task Limits_are_safe_under_concurrent_creates()
    {
        await using var em = await T.Start(new EmulatorOptions { BundleCount = 2, EventsPerBundle = 50, FirstBundleStart = T.Day0, ExportDuration = TimeSpan.FromHours(1), MaxRunningExports = 3 });
        using var c = T.Client(em);
        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Create(c, T.Day0.AddHours(i), T.Day0.AddHours(i + 1))));
        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(9, responses.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests));
        Assert.Equal(3, em.PeakRunningExports);
        foreach (var r in responses) r.Dispose();
    }

    [Fact]
    public async Task Chosen_windows_fail_or_are_refused_and_the_others_complete()
    {
        await using var em = await T.Start(T.Options(bundles: 4, events: 100));
        using var c = T.Client(em);
        using var anon = new HttpClient { BaseAddress = em.BaseUri };
        // Through the control API, as the Pester tests and the bench do: exports containing noon of day 2 fail;
        // windows longer than a day are refused at create.
        var rules = """
            [{"Endpoint":"operation","Kind":"Failed","ExportContains":"2025-03-02T12:00:00Z","ErrorDetails":"chosen to fail","Times":0},
             {"Endpoint":"create","Kind":"Status","Status":400,"ExportLongerThan":"1.00:00:00","Body":{"code":"invalid_argument","message":"time range too large"},"Times":0}]
            """;
        using (var added = await anon.PostAsync("_emulator/faults", new StringContent(rules, Encoding.UTF8, "application/json")))
            Assert.Equal(2, (int)(await T.Json(added))["added"]!);

        using (var tooLarge = await Create(c, T.Day0, T.Day0.AddDays(2)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, tooLarge.StatusCode);
            Assert.Equal("time range too large", (string?)(await T.Json(tooLarge))["message"]);
        }
        var failing = await CreateId(c, T.Day0.AddDays(1).AddHours(6), T.Day0.AddDays(1).AddHours(18)); // contains noon of 2 March
        var fine = await CreateId(c, T.Day0, T.Day0.AddDays(1));
        var failed = await Poll(c, failing);
        Assert.Equal("FAILED", (string?)failed["state"]);
        Assert.Equal("chosen to fail", (string?)failed["errorDetails"]);
        for (int i = 0; i < 2; i++) Assert.Equal("PENDING", (string?)(await Poll(c, fine))["state"]);
        Assert.Equal("COMPLETED", (string?)(await Poll(c, fine))["state"]);

        // The window is on the request log, and the rule stays (Times 0) for the next export of that window.
        var again = await CreateId(c, T.Day0.AddDays(1).AddHours(11), T.Day0.AddDays(1).AddHours(13));
        Assert.Equal("FAILED", (string?)(await Poll(c, again))["state"]);
        var creates = em.Served.Requests.Where(r => r.Endpoint == "create").ToList();
        Assert.Equal("2025-03-01T00:00:00Z/2025-03-03T00:00:00Z", creates[0].Window);
        Assert.Equal(400, creates[0].Status);
        Assert.Equal(new[] { "Status create", "Failed operation", "Failed operation" }, em.Served.FiredFaults);
    }

    [Fact]
    public async Task The_count_endpoint_says_how_many_events_a_window_holds()
    {
        await using var em = await T.Start(T.Options(bundles: 3, events: 200));
        using var anon = new HttpClient { BaseAddress = em.BaseUri };
        var body = await T.Json(await anon.GetAsync("_emulator/events/count?start=2025-03-01T06:00:00Z&end=2025-03-02T03:00:00Z"));
        long expected = em.Dataset.EventsBetween(T.Day0.AddHours(6), T.Day0.AddHours(27)).LongCount();
        Assert.InRange(expected, 1, 399); // part of each of two bundles
        Assert.Equal(expected, (long)body["count"]!);
        Assert.Equal(400, (long)(await T.Json(await anon.GetAsync("_emulator/events/count?start=2025-03-01T00:00:00Z&end=2025-03-03T00:00:00Z")))["count"]!);
        Assert.Equal(HttpStatusCode.BadRequest, (await anon.GetAsync("_emulator/events/count?start=x")).StatusCode);
    }

    [Fact]
    public async Task Export_time_and_limit_can_be_changed_through_the_control_api()
    {
        var (em, clock) = await Start(o => { });
        await using var _ = em;
        using var c = T.Client(em);
        using var anon = new HttpClient { BaseAddress = em.BaseUri };
        var settings = await T.Json(await anon.GetAsync("_emulator/settings"));
        Assert.Equal(0, (double)settings["exportSeconds"]!);
        Assert.Equal(2, (int)settings["pendingPolls"]!);

        using (var set = await anon.PostAsync("_emulator/settings", new StringContent("""{"exportSeconds":5,"maxRunningExports":1}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
            Assert.Equal(1, (int)(await T.Json(set))["maxRunningExports"]!);
        }
        var id = await CreateId(c, T.Day0, T.Day0.AddDays(1));
        using (var refused = await Create(c, T.Day0.AddDays(1), T.Day0.AddDays(2)))
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("COMPLETED", (string?)(await Poll(c, id))["state"]);
        Assert.Equal(HttpStatusCode.BadRequest, (await anon.PostAsync("_emulator/settings", new StringContent("""{"exportMinutes":1}""", Encoding.UTF8))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await anon.PostAsync("_emulator/settings", new StringContent("""{"exportSeconds":-1}""", Encoding.UTF8))).StatusCode);
    }

    [Fact]
    public async Task Process_mode_takes_the_export_time_and_the_running_limit()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "FullStory.Emulator.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "--no-stdin", "--first-bundle-start", "2025-03-01T00:00:00Z", "--export-seconds", "3600", "--max-running-exports", "1" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        try
        {
            var line = JsonNode.Parse((await p.StandardOutput.ReadLineAsync())!)!;
            using var c = new HttpClient { BaseAddress = new Uri((string)line["baseUri"]!) };
            c.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Basic " + (string)line["apiKey"]!);
            var id = await CreateId(c, T.Day0, T.Day0.AddDays(1));
            Assert.Equal("PENDING", (string?)(await Poll(c, id))["state"]);
            using var refused = await Create(c, T.Day0.AddDays(1), T.Day0.AddDays(2));
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.InRange(refused.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 3000, 3600);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
    }
}
