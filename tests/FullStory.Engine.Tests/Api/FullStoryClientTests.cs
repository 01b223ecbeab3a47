using System.Net;
using System.Text.Json.Nodes;
using FullStory.Emulator;
using FullStory.Engine.Api;
using FullStory.Engine.Events;
using FullStory.Engine.Tests.Events;

namespace FullStory.Engine.Tests.Api;

public class FullStoryClientTests
{
    private static void AssertEvents(IEnumerable<JsonObject> expected, IReadOnlyList<FullStoryEvent> actual, string source)
    {
        var list = expected.ToList();
        Assert.Equal(list.Count, actual.Count);
        for (int i = 0; i < list.Count; i++) EventStreamReaderTests.AssertSameEvent(list[i], actual[i]);
        Assert.All(actual, e => Assert.Equal(source, e.Source));
        // Each event's position in its source, exact and continuous even across re-downloads; the count on the last only.
        Assert.Equal(Enumerable.Range(0, list.Count).Select(i => (long?)i), actual.Select(e => e.SourceIndex));
        Assert.Equal(actual.Select((_, i) => i == actual.Count - 1 ? (long?)list.Count : null), actual.Select(e => e.SourceCount));
    }

    [Fact]
    public async Task Lists_every_bundle_past_the_20_per_call_limit_oldest_first()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => o.BundleCount = 45);
        var bundles = fs.Client.ListBundles(DateTimeOffset.UnixEpoch, observer: fs.Observer).ToList();
        Assert.Equal(fs.Emulator.Dataset.Bundles.Select(b => b.Id), bundles.Select(b => b.Id));
        Assert.Equal(45, bundles.Count);
        Assert.Equal(fs.Emulator.Dataset.Bundles.Select(b => b.Start), bundles.Select(b => b.Start.Value));
        Assert.Equal(fs.Emulator.Dataset.Bundles.Select(b => b.Stop), bundles.Select(b => b.Stop.Value));
        Assert.True(bundles.Zip(bundles.Skip(1)).All(p => p.First.Start < p.Second.Start));
        Assert.Equal(4, fs.Emulator.Served.CountFor("list")); // 20 + 20 + 5, then an empty page
    }

    [Fact]
    public async Task Start_and_end_select_the_bundles_that_overlap_the_range()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => o.BundleCount = 30);
        var all = fs.Emulator.Dataset.Bundles;
        var start = all[5].Start.AddHours(1);   // inside bundle 5: bundle 5 ends after it
        var end = all[12].Start;                 // bundle 12 starts at end: excluded
        var bundles = fs.Client.ListBundles(start, end).ToList();
        Assert.Equal(all.Skip(5).Take(7).Select(b => b.Id), bundles.Select(b => b.Id));
    }

    [Fact]
    public async Task Reads_a_bundle_exactly_as_the_emulator_generated_it()
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        var bundle = fs.Emulator.Dataset.Bundles[1];
        var events = fs.Client.ReadBundle(bundle.Id, observer: fs.Observer).ToList();
        AssertEvents(fs.Emulator.Dataset.EventsOf(bundle.Id), events, "bundle:" + bundle.Id);
        Assert.Equal(0, fs.Observer.Retries);
    }

    [Fact]
    public async Task Serves_the_real_samples_as_a_bundle_and_round_trips_them()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => o.SampleBundleFiles.Add(TestData.LegacySample));
        var bundle = fs.Client.ListBundles(DateTimeOffset.UnixEpoch).First();
        Assert.Equal(2020, bundle.Start.Value.Year);
        var events = fs.Client.ReadBundle(bundle.Id).ToList();
        Assert.Equal(144, events.Count);
        var expected = JsonNode.Parse(File.ReadAllText(TestData.LegacySample))!.AsArray().Select(n => n!.AsObject());
        AssertEvents(expected, events, "bundle:" + bundle.Id);
    }

    public static TheoryData<string> RecoverableFaults => new() { "429", "429-no-retry-after", "500", "503", "truncate", "malformed", "slow" };

    [Theory]
    [MemberData(nameof(RecoverableFaults))]
    public async Task Recovers_from_a_fault_with_no_event_lost_or_repeated(string fault)
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        var bundle = fs.Emulator.Dataset.Bundles[0];
        var faults = fs.Emulator.Faults;
        switch (fault)
        {
            case "429": faults.TooManyRequests("get", retryAfterSeconds: 1); break;
            case "429-no-retry-after": faults.TooManyRequests("get", retryAfterSeconds: null, times: 2); break;
            case "500": faults.Status("get", 500, times: 2); break;
            case "503": faults.Status("get", 503, times: 3); break;
            case "truncate": faults.Truncate("get", afterBytes: 5000, times: 2); break;
            case "malformed": faults.MalformedJson("get", afterEvents: 150); break;
            case "slow": faults.Slow("get", delayMs: 300, bytesPerSecond: 200_000); break;
        }
        var events = fs.Client.ReadBundle(bundle.Id, observer: fs.Observer).ToList();
        AssertEvents(fs.Emulator.Dataset.EventsOf(bundle.Id), events, "bundle:" + bundle.Id);
        Assert.Equal(fault == "slow" ? 0 : faults.All.Sum(f => f.Fired), fs.Observer.Retries);
        Assert.All(faults.All, f => Assert.Equal(f.Times, f.Fired)); // every injected fault really happened
    }

    [Fact]
    public async Task A_429_waits_at_least_what_Retry_After_says()
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        fs.Emulator.Faults.TooManyRequests("get", retryAfterSeconds: 1);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var events = fs.Client.ReadBundle(fs.Emulator.Dataset.Bundles[0].Id, observer: fs.Observer).ToList();
        Assert.Equal(200, events.Count);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.95), $"retried after {sw.Elapsed}, before Retry-After");
        Assert.Contains(fs.Log, l => l.Contains("HTTP 429") && l.Contains("in 1 s"));
    }

    [Fact]
    public async Task The_two_downloads_a_minute_limit_is_waited_out()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => { o.BundleCount = 4; o.DownloadsPerWindow = 2; o.DownloadWindow = TimeSpan.FromSeconds(1); }, maxAttempts: 6);
        long total = 0;
        foreach (var b in fs.Client.ListBundles(DateTimeOffset.UnixEpoch))
            total += fs.Client.ReadBundle(b.Id, observer: fs.Observer).LongCount();
        Assert.Equal(800, total);
        Assert.True(fs.Observer.Retries >= 1);
        Assert.True(fs.Emulator.Served.Requests.Count(r => r.Status == 429) >= 1);
    }

    [Fact]
    public async Task Gives_up_after_the_bounded_attempts_with_a_clear_error()
    {
        await using var fs = await EmulatedFullStory.StartAsync(maxAttempts: 3);
        fs.Emulator.Faults.Status("get", 502, times: 0);
        var ex = Assert.Throws<FullStoryApiException>(() => fs.Client.ReadBundle(fs.Emulator.Dataset.Bundles[0].Id).ToList());
        Assert.Contains("HTTP 502 after 3 attempts", ex.Message);
        Assert.Equal(3, fs.Emulator.Served.CountFor("get"));
    }

    [Fact]
    public async Task A_persistently_corrupt_bundle_fails_naming_the_bundle_and_position()
    {
        await using var fs = await EmulatedFullStory.StartAsync(maxAttempts: 2);
        var bundle = fs.Emulator.Dataset.Bundles[0];
        fs.Emulator.Faults.MalformedJson("get", afterEvents: 50, times: 0);
        var delivered = new List<FullStoryEvent>();
        var ex = Assert.Throws<EventDataException>(() => { foreach (var e in fs.Client.ReadBundle(bundle.Id)) delivered.Add(e); });
        Assert.Contains($"bundle {bundle.Id}", ex.Message);
        Assert.Equal(50, ex.EventIndex);
        Assert.Equal(50, delivered.Count); // the events before the corruption, once each
    }

    [Fact]
    public async Task Unknown_bundle_and_refused_key_say_what_to_do()
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        var notFound = Assert.Throws<FullStoryApiException>(() => fs.Client.ReadBundle(12345).ToList());
        Assert.Contains("no bundle 12345", notFound.Message);
        Assert.Contains("Get-FullStoryBundle", notFound.Message);

        await using var bad = await EmulatedFullStory.StartAsync(key: "na1.wrongkey0000000000000000000000");
        var list = Assert.Throws<FullStoryApiException>(() => bad.Client.ListBundles(DateTimeOffset.UnixEpoch).ToList());
        Assert.Contains("Data Export add-on", list.Message);
        var get = Assert.Throws<FullStoryApiException>(() => bad.Client.ReadBundle(bad.Emulator.Dataset.Bundles[0].Id).ToList());
        Assert.Equal(HttpStatusCode.Unauthorized, get.StatusCode);
        Assert.Contains("check the API key", get.Message);
        Assert.DoesNotContain("wrongkey0000000000000000000000", list.Message + get.Message);
    }

    [Fact]
    public async Task An_unreachable_host_fails_after_bounded_attempts()
    {
        int port;
        using (var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0)) { l.Start(); port = ((IPEndPoint)l.LocalEndpoint).Port; }
        var session = new FullStorySession(new ApiKeyCredential("na1.abcdefghijklmnopqrstuvwx"), baseUri: new Uri($"http://127.0.0.1:{port}/"),
            retry: new RetrySettings { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(10) });
        var ex = Assert.Throws<FullStoryApiException>(() => session.GetClient().ListBundles(DateTimeOffset.UnixEpoch).ToList());
        Assert.Contains("Cannot reach FullStory", ex.Message);
        Assert.Contains("2 attempts", ex.Message);
    }

    [Fact]
    public async Task Segment_export_streams_exactly_the_window_and_never_sends_the_key_to_storage()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => o.OperationPendingPolls = 3);
        var start = EmulatedFullStory.Day0.AddHours(12);
        var end = EmulatedFullStory.Day0.AddDays(2);
        var progress = new List<int>();
        var observer = new OperationObserver { ExportProgress = (p, _) => progress.Add(p) };
        var request = new SegmentExportRequest(start, end);
        var events = fs.Client.ReadSegmentExport(request, observer: observer).ToList();
        AssertEvents(fs.Emulator.Dataset.EventsBetween(start, end), events, request.BatchKey);
        Assert.True(events.Count > 100);
        Assert.All(events, e => Assert.InRange(e.EventStart!.Value.Value, start, end.AddTicks(-1)));
        Assert.Equal(0, fs.Emulator.Served.KeyLeaks);
        Assert.Contains(100, progress);
        Assert.True(progress.Count >= 4);
    }

    [Theory]
    [InlineData("FORMAT_JSON")]
    [InlineData("FORMAT_NDJSON")]
    public async Task Segment_export_recovers_from_an_expired_location_and_a_cut_download(string format)
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        fs.Emulator.Faults.Expired();
        fs.Emulator.Faults.Truncate("download", afterBytes: 4000);
        var request = new SegmentExportRequest(EmulatedFullStory.Day0, EmulatedFullStory.Day0.AddDays(3)) { Format = format };
        var events = fs.Client.ReadSegmentExport(request, observer: fs.Observer).ToList();
        AssertEvents(fs.Emulator.Dataset.EventsBetween(request.Start, request.End), events, request.BatchKey);
        Assert.Equal(600, events.Count);
        Assert.Equal(0, fs.Emulator.Served.KeyLeaks);
        Assert.Equal(2, fs.Observer.Retries);
    }

    [Theory]
    [InlineData("get", "FORMAT_JSON")]
    [InlineData("download", "FORMAT_JSON")]
    [InlineData("download", "FORMAT_NDJSON")]
    public async Task A_gzip_body_that_stops_at_a_block_boundary_is_downloaded_again_and_nothing_is_lost(string endpoint, string format)
    {
        // The HTTP response ends normally and the JSON in it is complete (NDJSON lines, or an array with its ']'): only
        // the missing gzip trailer shows that 100 events are all it holds.
        await using var fs = await EmulatedFullStory.StartAsync();
        fs.Emulator.Faults.UnfinishedGzip(endpoint, afterEvents: 100);
        List<FullStoryEvent> events;
        IEnumerable<JsonObject> expected;
        string source;
        if (endpoint == "get")
        {
            var bundle = fs.Emulator.Dataset.Bundles[1];
            events = fs.Client.ReadBundle(bundle.Id, observer: fs.Observer).ToList();
            (expected, source) = (fs.Emulator.Dataset.EventsOf(bundle.Id), "bundle:" + bundle.Id);
        }
        else
        {
            var request = new SegmentExportRequest(EmulatedFullStory.Day0, EmulatedFullStory.Day0.AddDays(2)) { Format = format };
            events = fs.Client.ReadSegmentExport(request, observer: fs.Observer).ToList();
            (expected, source) = (fs.Emulator.Dataset.EventsBetween(request.Start, request.End), request.BatchKey);
        }
        AssertEvents(expected, events, source);
        Assert.True(events.Count > 100);
        Assert.Equal(1, fs.Observer.Retries);
        Assert.Equal(2, fs.Emulator.Served.Requests.Count(r => r.Endpoint == endpoint && r.Status == 200));
        Assert.Contains(fs.Log, l => l.Contains("without a complete end"));
    }

    [Fact]
    public async Task A_body_that_always_stops_early_fails_and_leaves_no_archive_file()
    {
        await using var fs = await EmulatedFullStory.StartAsync(maxAttempts: 2);
        using var dir = new TestData.TempDirectory();
        var bundle = fs.Emulator.Dataset.Bundles[0];
        fs.Emulator.Faults.UnfinishedGzip("get", afterEvents: 120, times: 0);
        var delivered = new List<FullStoryEvent>();
        var ex = Assert.Throws<EventDataException>(() => { foreach (var e in fs.Client.ReadBundle(bundle.Id, dir.Path)) delivered.Add(e); });
        Assert.True(ex.IsTruncated);
        Assert.Contains($"bundle {bundle.Id}", ex.Message);
        Assert.Equal(Enumerable.Range(0, 120).Select(i => (long?)i), delivered.Select(e => e.SourceIndex));
        Assert.All(delivered, e => Assert.Null(e.SourceCount));
        Assert.Empty(Directory.GetFiles(dir.Path)); // neither a .json.gz that looks complete nor a .partial
        Assert.Equal(2, fs.Emulator.Served.CountFor("get"));
    }

    [Fact]
    public async Task The_archive_keeps_only_the_complete_download_after_an_unfinished_one()
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        using var dir = new TestData.TempDirectory();
        var bundle = fs.Emulator.Dataset.Bundles[2];
        fs.Emulator.Faults.UnfinishedGzip("get", afterEvents: 50);
        var events = fs.Client.ReadBundle(bundle.Id, dir.Path).ToList();
        var file = Assert.Single(Directory.GetFiles(dir.Path));
        using var reader = new EventStreamReader(File.OpenRead(file), file);
        var replayed = reader.ReadAll().ToList();
        Assert.Equal(200, replayed.Count);
        Assert.Equal(events.Select(e => e.CustomVars), replayed.Select(e => e.CustomVars));
        Assert.Equal(200, replayed[^1].SourceCount);
    }

    [Fact]
    public async Task A_failed_export_reports_FullStorys_details()
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        fs.Emulator.Faults.Failed("segment too large");
        var ex = Assert.Throws<FullStoryExportFailedException>(() =>
            fs.Client.ReadSegmentExport(new SegmentExportRequest(EmulatedFullStory.Day0, EmulatedFullStory.Day0.AddDays(1))).ToList());
        Assert.Contains("segment too large", ex.Message);
    }

    [Fact]
    public async Task An_export_FullStory_never_finishes_is_given_up_after_the_export_timeout()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => o.ExportDuration = TimeSpan.FromHours(1));
        fs.Session.Retry.ExportTimeout = TimeSpan.FromMilliseconds(500);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var ex = Assert.Throws<FullStoryExportTimedOutException>(() =>
            fs.Client.ReadSegmentExport(new SegmentExportRequest(EmulatedFullStory.Day0, EmulatedFullStory.Day0.AddDays(1))).ToList());
        Assert.InRange(waited.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(20));
        var export = Assert.Single(fs.Emulator.Exports);
        Assert.Contains(export.OperationId, ex.Message);
        Assert.Contains("-ExportTimeout", ex.Message);
        Assert.Equal(0, export.DownloadsStarted);
        var advice = FullStory.Engine.Diagnostics.FailureAdvisor.Describe(new AggregateException(ex));
        Assert.Equal(("FullStory.ExportTimedOut", FullStory.Engine.Diagnostics.FailureKind.OperationTimeout), (advice.ErrorId, advice.Kind));
    }

    [Fact]
    public async Task The_archive_keeps_each_download_exactly_as_received_and_replays()
    {
        await using var fs = await EmulatedFullStory.StartAsync();
        using var dir = new TestData.TempDirectory();
        var bundle = fs.Emulator.Dataset.Bundles[2];
        fs.Emulator.Faults.Truncate("get", afterBytes: 3000); // the broken first attempt must not leave a file behind
        var events = fs.Client.ReadBundle(bundle.Id, dir.Path).ToList();
        var file = Assert.Single(Directory.GetFiles(dir.Path));
        Assert.Equal($"bundle-{bundle.Id}.json.gz", Path.GetFileName(file));
        using var reader = new EventStreamReader(File.OpenRead(file), file);
        var replayed = reader.ReadAll().ToList();
        Assert.Equal(events.Select(e => e.CustomVars), replayed.Select(e => e.CustomVars));
        Assert.Equal(events.Select(e => e.EventStart), replayed.Select(e => e.EventStart));
    }

    [Fact]
    public async Task Cancellation_stops_a_slow_download_promptly()
    {
        await using var fs = await EmulatedFullStory.StartAsync(o => o.EventsPerBundle = 5000);
        fs.Emulator.Faults.Slow("get", bytesPerSecond: 20_000);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => fs.Client.ReadBundle(fs.Emulator.Dataset.Bundles[0].Id, cancellationToken: cts.Token).ToList());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
    }
}
