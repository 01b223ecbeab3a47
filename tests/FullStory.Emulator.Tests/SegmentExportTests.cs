using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

public class SegmentExportTests
{
    internal static async Task<string> CreateAndComplete(FullStoryEmulator em, HttpClient c, object request, int expectPending = 2)
    {
        using var create = await c.PostAsync("segments/v1/exports", T.JsonBody(request));
        Assert.Equal(HttpStatusCode.OK, create.StatusCode);
        var opId = (string)(await T.Json(create))["operationId"]!;
        Assert.False(string.IsNullOrEmpty(opId));
        int lastPct = -1;
        for (int i = 0; i < expectPending; i++)
        {
            var op = await T.Json(await c.GetAsync($"operations/v1/{opId}"));
            Assert.Equal(opId, (string?)op["id"]);
            Assert.Equal("SEARCH_EXPORT", (string?)op["type"]);
            Assert.Equal("PENDING", (string?)op["state"]);
            int pct = (int)op["estimatePctComplete"]!;
            Assert.InRange(pct, 0, 99);
            Assert.True(pct > lastPct);
            lastPct = pct;
            Assert.Null(op["results"]);
        }
        var done = await T.Json(await c.GetAsync($"operations/v1/{opId}"));
        Assert.Equal("COMPLETED", (string?)done["state"]);
        Assert.Equal(100, (int)done["estimatePctComplete"]!);
        var exportId = (string)done["results"]!["searchExportId"]!;
        Assert.True(DateTimeOffset.TryParse((string?)done["results"]!["expires"], out _));
        // polling again stays COMPLETED with the same id
        var again = await T.Json(await c.GetAsync($"operations/v1/{opId}"));
        Assert.Equal(exportId, (string?)again["results"]!["searchExportId"]);
        return exportId;
    }

    internal static async Task<Uri> Location(HttpClient c, string exportId)
    {
        using var r = await c.GetAsync($"search/v1/exports/{exportId}/results");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var j = await T.Json(r);
        Assert.True(DateTimeOffset.TryParse((string?)j["expires"], CultureInfo.InvariantCulture, out _));
        return new Uri((string)j["location"]!);
    }

    [Theory]
    [InlineData("FORMAT_NDJSON")]
    [InlineData("FORMAT_JSON")]
    public async Task Full_flow_filters_on_EventStart_start_inclusive_end_exclusive(string format)
    {
        await using var em = await T.Start(T.Options(bundles: 3, events: 300));
        using var c = T.Client(em);
        // bounds exactly on events' EventStart, across a bundle boundary
        var b0 = em.Dataset.EventsOf(em.Dataset.Bundles[0].Id).ToList();
        var b1 = em.Dataset.EventsOf(em.Dataset.Bundles[1].Id).ToList();
        var start = DateTimeOffset.Parse((string)b0[123]["EventStart"]!, CultureInfo.InvariantCulture);
        var end = DateTimeOffset.Parse((string)b1[77]["EventStart"]!, CultureInfo.InvariantCulture);
        var exportId = await CreateAndComplete(em, c, T.ExportRequest(start, end, format));
        var location = await Location(c, exportId);
        Assert.Equal(em.BaseUri.Authority, location.Authority);
        Assert.Contains("Signature=", location.Query);
        Assert.Contains("Expires=", location.Query);

        using var plain = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None });
        using var dl = await plain.GetAsync(location);
        Assert.Equal(HttpStatusCode.OK, dl.StatusCode);
        var raw = await dl.Content.ReadAsByteArrayAsync();
        Assert.True(T.IsGzip(raw));
        var body = T.Gunzip(raw);
        var events = format == "FORMAT_NDJSON" ? T.ParseNdjson(body) : T.ParseArray(body);
        if (format == "FORMAT_NDJSON") Assert.Equal(events.Count, Encoding.UTF8.GetString(body).Count(ch => ch == '\n'));
        else Assert.Equal((byte)'[', body[0]);

        var expected = em.Dataset.EventsBetween(start, end).ToList();
        T.SameEvents(expected, events);
        // exactness against the legacy data
        var times = b0.Concat(b1).Select(e => DateTimeOffset.Parse((string)e["EventStart"]!, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(times.Count(t => t >= start && t < end), events.Count);
        Assert.Equal(start, DateTimeOffset.Parse((string)events[0]["EventStart"]!, CultureInfo.InvariantCulture));
        Assert.All(events, e => Assert.True(DateTimeOffset.Parse((string)e["EventStart"]!, CultureInfo.InvariantCulture) < end));
        Assert.All(events, e => { Assert.True(e.ContainsKey("PageUserAgent")); Assert.False(e.ContainsKey("PageAgent")); });

        Assert.Equal(expected.Count, em.Served.EventsServed);
        Assert.Equal(0, em.Served.KeyLeaks);
        var dlReq = Assert.Single(em.Served.Requests, r => r.Endpoint == "download");
        Assert.False(dlReq.HadAuthorization);
        Assert.True(dlReq.Completed);
        Assert.Contains("Signature=REDACTED", dlReq.PathAndQuery);
        Assert.DoesNotContain(location.Query.Split("Signature=")[1], em.Served.ToJson().ToJsonString());
    }

    [Fact]
    public async Task Pending_polls_is_configurable()
    {
        var o = T.Options(); o.OperationPendingPolls = 0;
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        await CreateAndComplete(em, c, T.ExportRequest(T.Day0, T.Day0.AddHours(1)), expectPending: 0);
        o = T.Options(); o.OperationPendingPolls = 5;
        await using var em5 = await T.Start(o);
        using var c5 = T.Client(em5);
        await CreateAndComplete(em5, c5, T.ExportRequest(T.Day0, T.Day0.AddHours(1)), expectPending: 5);
    }

    [Fact]
    public async Task Sample_bundle_events_appear_in_segment_export_with_segment_names()
    {
        var o = T.Options(); o.SampleBundleFiles.Add(Path.Combine(T.Samples, "bundle-legacy-fields.json"));
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var start = new DateTimeOffset(2020, 8, 27, 6, 20, 26, 913, TimeSpan.Zero); // the 3rd event; the first two are at .900
        var end = new DateTimeOffset(2020, 8, 30, 0, 0, 0, TimeSpan.Zero);
        var id = await CreateAndComplete(em, c, T.ExportRequest(start, end));
        using var plain = new HttpClient();
        var events = T.ParseNdjson(T.Gunzip(await plain.GetByteArrayAsync(await Location(c, id))));
        var segmentFile = JsonNode.Parse(File.ReadAllBytes(Path.Combine(T.Samples, "segment-export-fields.json")))!.AsArray()
            .Select(n => n!.AsObject()).Where(e => { var t = DateTimeOffset.Parse((string)e["EventStart"]!, CultureInfo.InvariantCulture); return t >= start && t < end; }).ToList();
        Assert.Equal(segmentFile.Count, events.Count);
        Assert.Equal(segmentFile.Select(e => (string?)e["PageUserAgent"]), events.Select(e => (string?)e["PageUserAgent"]));
        T.SameEvents(em.Dataset.EventsBetween(start, end).ToList(), events);
    }

    [Fact]
    public async Task Fields_filter_with_wildcards()
    {
        await using var em = await T.Start(T.Options(1, 200));
        using var c = T.Client(em);
        var b = em.Dataset.Bundles[0];
        var req = new
        {
            segmentId = "everyone", type = "TYPE_EVENT", format = "FORMAT_NDJSON",
            timeRange = new { start = b.Start.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"), end = b.Stop.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'") },
            fields = new[] { "EventStart", "EventType", "evt_*" },
        };
        var id = await CreateAndComplete(em, c, req);
        using var plain = new HttpClient();
        var events = T.ParseNdjson(T.Gunzip(await plain.GetByteArrayAsync(await Location(c, id))));
        Assert.Equal(200, events.Count);
        Assert.All(events, e => Assert.All(e, p => Assert.True(p.Key is "EventStart" or "EventType" || p.Key.StartsWith("evt_"), p.Key)));
        Assert.Contains(events, e => e.Any(p => p.Key.StartsWith("evt_")));
    }

    public static TheoryData<string> BadBodies => new()
    {
        "not json",
        "[]",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_CSV","timeRange":{"start":"2025-03-01T00:00:00Z","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_INDIVIDUAL","format":"FORMAT_JSON","timeRange":{"start":"2025-03-01T00:00:00Z","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_WHAT","format":"FORMAT_JSON","timeRange":{"start":"2025-03-01T00:00:00Z","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_XML","timeRange":{"start":"2025-03-01T00:00:00Z","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_JSON"}""",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_JSON","timeRange":{"start":"2025-03-01","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_JSON","timeRange":{"start":"yesterday","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_JSON","timeRange":{"start":"2025-03-02T00:00:00Z","end":"2025-03-02T00:00:00Z"}}""",
        """{"segmentId":"everyone","type":"TYPE_EVENT","format":"FORMAT_JSON","timeRange":{"start":"2025-03-03T00:00:00Z","end":"2025-03-02T00:00:00Z"}}""",
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Create_validates_the_body(string body)
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        using var r = await c.PostAsync("segments/v1/exports", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var j = await T.Json(r);
        Assert.Equal("invalid_argument", (string?)j["code"]);
        Assert.False(string.IsNullOrEmpty((string?)j["message"]));
    }

    [Fact]
    public async Task Unknown_operation_and_export_are_404()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("operations/v1/nope")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("search/v1/exports/nope/results")).StatusCode);
    }

    [Fact]
    public async Task Download_with_authorization_header_is_refused_and_counted_as_key_leak()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        var id = await CreateAndComplete(em, c, T.ExportRequest(T.Day0, T.Day0.AddHours(6)));
        var location = await Location(c, id);
        using var leaky = await c.GetAsync(location); // the API client sends its key along
        Assert.Equal(HttpStatusCode.BadRequest, leaky.StatusCode);
        var xml = await leaky.Content.ReadAsStringAsync();
        Assert.Contains("<Error><Code>InvalidAuthorizationHeader</Code>", xml);
        Assert.Equal(1, em.Served.KeyLeaks);
        var path = Assert.Single(em.Served.KeyLeakPaths);
        Assert.StartsWith($"/storage/{id}", path);
        Assert.DoesNotContain(location.Query.Split("Signature=")[1], path);
        Assert.DoesNotContain(em.ApiKey, em.Served.ToJson().ToJsonString());
        // without the header it works
        using var plain = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await plain.GetAsync(location)).StatusCode);
        Assert.Equal(1, em.Served.KeyLeaks);
    }

    [Fact]
    public async Task Bad_signature_and_expired_location_are_403_xml()
    {
        var o = T.Options(); o.DownloadLocationLifetime = TimeSpan.FromMinutes(5);
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var id = await CreateAndComplete(em, c, T.ExportRequest(T.Day0, T.Day0.AddHours(6)));
        var location = await Location(c, id);
        using var plain = new HttpClient();
        var tampered = location.ToString().Replace("Expires=", "Expires=1");
        using var bad = await plain.GetAsync(tampered);
        Assert.Equal(HttpStatusCode.Forbidden, bad.StatusCode);
        Assert.Contains("<Code>SignatureDoesNotMatch</Code>", await bad.Content.ReadAsStringAsync());
        using var noSig = await plain.GetAsync(new Uri(em.BaseUri, $"storage/{id}"));
        Assert.Equal(HttpStatusCode.Forbidden, noSig.StatusCode);

        em.Faults.Expired();
        var expired = await Location(c, id);
        using var exp = await plain.GetAsync(expired);
        Assert.Equal(HttpStatusCode.Forbidden, exp.StatusCode);
        Assert.Contains("<Code>ExpiredToken</Code>", await exp.Content.ReadAsStringAsync());
        // a fresh location works again
        Assert.Equal(HttpStatusCode.OK, (await plain.GetAsync(await Location(c, id))).StatusCode);
        Assert.Equal(1, em.Served.FaultsFired);
    }
}
