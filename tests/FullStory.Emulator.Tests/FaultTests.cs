using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

public class FaultTests
{
    [Theory]
    [InlineData("list", 500)]
    [InlineData("get", 502)]
    [InlineData("get", 503)]
    [InlineData("create", 500)]
    [InlineData("operation", 503)]
    [InlineData("results", 404)]
    [InlineData("any", 401)]
    public async Task Status_fault_fires_once_by_default(string endpoint, int status)
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        em.Faults.Status(endpoint, status);
        string opId = endpoint is "operation" or "results" ? await NewOperation(c) : "";
        string exportId = endpoint == "results" ? await Complete(c, opId) : "";
        Func<Task<HttpResponseMessage>> call = endpoint switch
        {
            "list" or "any" => () => c.GetAsync("api/v1/export/list?start=0"),
            "get" => () => c.GetAsync($"api/v1/export/get?id={em.Dataset.Bundles[0].Id}"),
            "create" => () => c.PostAsync("segments/v1/exports", T.JsonBody(T.ExportRequest(T.Day0, T.Day0.AddDays(1)))),
            "operation" => () => c.GetAsync($"operations/v1/{opId}"),
            _ => () => c.GetAsync($"search/v1/exports/{exportId}/results"),
        };
        using (var r = await call())
        {
            Assert.Equal(status, (int)r.StatusCode);
            var j = await T.Json(r);
            Assert.False(string.IsNullOrEmpty((string?)j["code"]));
        }
        using (var r = await call()) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(1, em.Served.FaultsFired);
        Assert.Equal("Status", em.Served.Requests.Single(q => q.Fault is not null).Fault);
    }

    private static async Task<string> NewOperation(HttpClient c)
        => (string)(await T.Json(await c.PostAsync("segments/v1/exports", T.JsonBody(T.ExportRequest(T.Day0, T.Day0.AddHours(2))))))["operationId"]!;

    private static async Task<string> Complete(HttpClient c, string opId)
    {
        while (true)
        {
            var op = await T.Json(await c.GetAsync($"operations/v1/{opId}"));
            if ((string?)op["state"] == "COMPLETED") return (string)op["results"]!["searchExportId"]!;
        }
    }

    [Fact]
    public async Task Status_fault_with_custom_body_times_and_bundle_filter()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        var ids = em.Dataset.Bundles.Select(b => b.Id).ToArray();
        em.Faults.Add(new FaultRule { Endpoint = "get", BundleId = ids[1], Kind = FaultKind.Status, Status = 503, Times = 2, Body = new JsonObject { ["code"] = "unavailable", ["message"] = "try later" } });
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"api/v1/export/get?id={ids[0]}")).StatusCode);
        for (int i = 0; i < 2; i++)
        {
            using var r = await c.GetAsync($"api/v1/export/get?id={ids[1]}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Equal("try later", (string?)(await T.Json(r))["message"]);
        }
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"api/v1/export/get?id={ids[1]}")).StatusCode);
        Assert.Equal(2, em.Served.FaultsFired);
        Assert.Equal(1, em.Served.TimesServedComplete(ids[1]));
        Assert.Empty(em.Faults.Active);
    }

    [Fact]
    public async Task Times_zero_fires_forever_until_cleared()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        em.Faults.Status("list", 500, times: 0);
        for (int i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.InternalServerError, (await c.GetAsync("api/v1/export/list?start=0")).StatusCode);
        em.Faults.Clear();
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("api/v1/export/list?start=0")).StatusCode);
        Assert.Equal(5, em.Served.FaultsFired);
        em.Reset();
        Assert.Equal(0, em.Served.FaultsFired);
        Assert.Empty(em.Served.Requests);
    }

    [Fact]
    public async Task TooManyRequests_has_the_configured_retry_after_or_none()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        em.Faults.TooManyRequests("get", retryAfterSeconds: 7);
        em.Faults.TooManyRequests("get", retryAfterSeconds: null);
        var id = em.Dataset.Bundles[0].Id;
        using var first = await c.GetAsync($"api/v1/export/get?id={id}");
        Assert.Equal(HttpStatusCode.TooManyRequests, first.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), first.Headers.RetryAfter!.Delta);
        using var second = await c.GetAsync($"api/v1/export/get?id={id}");
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Null(second.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"api/v1/export/get?id={id}")).StatusCode);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Truncate_sends_headers_then_a_short_broken_body(bool gzip)
    {
        var o = T.Options(1, 2000); o.GzipBundles = gzip;
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var id = em.Dataset.Bundles[0].Id;
        var full = await (await c.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync();
        em.Faults.Truncate("get", afterBytes: 10_000);

        using var r = await c.GetAsync($"api/v1/export/get?id={id}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode); // valid status and headers
        var stream = await r.Content.ReadAsStreamAsync();
        var got = new MemoryStream();
        var buf = new byte[8192];
        bool failed = false;
        try { int n; while ((n = await stream.ReadAsync(buf)) > 0) got.Write(buf, 0, n); }
        catch (Exception ex) when (ex is HttpRequestException or IOException) { failed = true; }
        Assert.True(failed, "reading a truncated body must fail (the connection is aborted)");
        Assert.True(got.Length <= 10_000 && got.Length < full.Length, $"got {got.Length} bytes of {full.Length}");
        Assert.Equal(full.AsSpan(0, (int)got.Length).ToArray(), got.ToArray());
        // and the prefix does not decode to a complete document
        Assert.ThrowsAny<Exception>(() => JsonDocument.Parse(gzip ? SafeGunzip(got.ToArray()) : got.ToArray()));

        // The server logs the request when its handler ends, which can be just after the client saw the abort.
        ServedRequest? rec = null;
        for (int i = 0; i < 100 && rec is null; i++)
        {
            rec = em.Served.Requests.SingleOrDefault(q => q.Fault == "Truncate");
            if (rec is null) await Task.Delay(50);
        }
        Assert.NotNull(rec);
        Assert.False(rec.Completed);
        Assert.Equal(10_000, rec.BytesSent);
        Assert.Equal(1, em.Served.TimesServedComplete(id)); // only the first, full download
        // next time it is complete again
        Assert.Equal(full, await (await c.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync());
    }

    private static byte[] SafeGunzip(byte[] gz)
    {
        var ms = new MemoryStream();
        try { using var z = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress); z.CopyTo(ms); } catch (Exception) { }
        return ms.ToArray();
    }

    [Fact]
    public async Task Truncate_works_on_the_segment_download()
    {
        await using var em = await T.Start(T.Options(1, 3000));
        using var c = T.Client(em);
        var id = await SegmentExportTests.CreateAndComplete(em, c, T.ExportRequest(T.Day0, T.Day0.AddDays(1)));
        var loc = await SegmentExportTests.Location(c, id);
        em.Faults.Truncate("download", 5000);
        using var plain = new HttpClient();
        await Assert.ThrowsAnyAsync<Exception>(() => plain.GetByteArrayAsync(loc));
        Assert.False(em.Served.Requests.Single(r => r.Endpoint == "download").Completed);
        Assert.Equal(0, em.Served.EventsServed);
        var events = T.ParseNdjson(T.Gunzip(await plain.GetByteArrayAsync(loc)));
        Assert.Equal(3000, events.Count);
    }

    [Theory]
    [InlineData("get", "FORMAT_JSON")]
    [InlineData("download", "FORMAT_JSON")]
    [InlineData("download", "FORMAT_NDJSON")]
    public async Task UnfinishedGzip_body_is_complete_json_of_the_first_events_without_a_gzip_end(string endpoint, string format)
    {
        await using var em = await T.Start(T.Options(1, 200));
        using var c = T.Client(em);
        var b = em.Dataset.Bundles[0];
        em.Faults.UnfinishedGzip(endpoint, afterEvents: 37);
        byte[] raw;
        if (endpoint == "get")
        {
            using var r = await c.GetAsync($"api/v1/export/get?id={b.Id}");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode); // the HTTP response itself ends normally
            raw = await r.Content.ReadAsByteArrayAsync();
        }
        else
        {
            var id = await SegmentExportTests.CreateAndComplete(em, c, T.ExportRequest(b.Start, b.Stop, format));
            using var plain = new HttpClient();
            raw = await plain.GetByteArrayAsync(await SegmentExportTests.Location(c, id));
        }
        // GZipStream reads it without complaint, and the JSON in it is complete: 37 events...
        byte[] text = T.Gunzip(raw);
        var events = format == "FORMAT_NDJSON" ? T.ParseNdjson(text) : T.ParseArray(text);
        Assert.Equal(37, events.Count);
        // ...but the gzip stream has no end: it stops on a block boundary (a sync flush: 00 00 FF FF), with no trailer.
        Assert.Equal(new byte[] { 0x00, 0x00, 0xFF, 0xFF }, raw[^4..]);
        Assert.NotEqual((uint)text.Length, BitConverter.ToUInt32(raw, raw.Length - 4)); // not the length field of a trailer
        Assert.Equal(0, em.Served.EventsServed);
        Assert.Equal(0, em.Served.TimesServedComplete(b.Id));
    }

    [Theory]
    [InlineData("get", 0)]
    [InlineData("get", 57)]
    [InlineData("download", 3)]
    public async Task MalformedJson_body_is_really_invalid_at_the_given_event(string endpoint, int afterEvents)
    {
        await using var em = await T.Start(T.Options(1, 200));
        using var c = T.Client(em);
        var b = em.Dataset.Bundles[0];
        byte[] body;
        em.Faults.MalformedJson(endpoint, afterEvents);
        if (endpoint == "get")
        {
            body = await T.GetBundleBytes(c, b.Id);
        }
        else
        {
            var id = await SegmentExportTests.CreateAndComplete(em, c, T.ExportRequest(b.Start, b.Stop, "FORMAT_JSON"));
            using var plain = new HttpClient();
            body = T.Gunzip(await plain.GetByteArrayAsync(await SegmentExportTests.Location(c, id)));
        }
        var ex = Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(body));
        // the events before the break are intact
        var text = Encoding.UTF8.GetString(body);
        var lines = text.Split(",\n");
        Assert.Contains("\"UserId\":}", lines[afterEvents]);
        if (afterEvents > 0)
        {
            var prefix = "[" + string.Join(",", lines.Take(afterEvents)).TrimStart('[') + "]";
            Assert.Equal(afterEvents, JsonNode.Parse(prefix)!.AsArray().Count);
        }
        Assert.Equal(0, em.Served.EventsServed);
        Assert.Equal(0, em.Served.TimesServedComplete(b.Id));
    }

    [Fact]
    public async Task Slow_delays_and_trickles_but_serves_the_same_bytes()
    {
        await using var em = await T.Start(T.Options(1, 50));
        using var c = T.Client(em);
        var id = em.Dataset.Bundles[0].Id;
        var full = await (await c.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync();
        em.Faults.Slow("get", delayMs: 100, bytesPerSecond: 200_000);
        var slow = await (await c.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync();
        Assert.Equal(full, slow);
        Assert.Equal("Slow", em.Served.Requests[^1].Fault);
        Assert.True(em.Served.Requests[^1].Completed);
        Assert.Equal(2, em.Served.TimesServedComplete(id));
    }

    [Fact]
    public async Task Failed_operation_ends_FAILED_with_error_details()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        em.Faults.Failed("quota exceeded for exports");
        var opId = await NewOperation(c);
        var op = await T.Json(await c.GetAsync($"operations/v1/{opId}"));
        Assert.Equal("FAILED", (string?)op["state"]);
        Assert.Equal("quota exceeded for exports", (string?)op["errorDetails"]);
        Assert.Null(op["results"]);
        // stays failed
        op = await T.Json(await c.GetAsync($"operations/v1/{opId}"));
        Assert.Equal("FAILED", (string?)op["state"]);
        // a new export works
        var id = await Complete(c, await NewOperation(c));
        Assert.False(string.IsNullOrEmpty(id));
    }

    [Fact]
    public async Task Faults_from_json_as_the_control_api_and_cli_take_them()
    {
        const string json = """
            [ {"endpoint":"get","kind":"tooManyRequests","retryAfterSeconds":3},
              {"Endpoint":"list","Kind":"Status","Status":502,"Body":{"code":"bad_gateway","message":"upstream"},"Times":2},
              {"Endpoint":"get","Kind":"Truncate","AfterBytes":100} ]
            """;
        await using var em = await T.Start();
        using var anon = new HttpClient { BaseAddress = em.BaseUri };
        using var r = await anon.PostAsync("_emulator/faults", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(3, (int)(await T.Json(r))["added"]!);
        var rules = em.Faults.All;
        Assert.Equal(FaultKind.TooManyRequests, rules[0].Kind);
        Assert.Equal(3, rules[0].RetryAfterSeconds);
        Assert.Equal(502, rules[1].Status);
        Assert.Equal(2, rules[1].Times);
        Assert.Equal(100, rules[2].AfterBytes);
        using var c = T.Client(em);
        using var list = await c.GetAsync("api/v1/export/list?start=0");
        Assert.Equal(HttpStatusCode.BadGateway, list.StatusCode);
        Assert.Equal("bad_gateway", (string?)(await T.Json(list))["code"]);
        Assert.Equal(HttpStatusCode.OK, (await anon.DeleteAsync("_emulator/faults")).StatusCode);
        Assert.Empty(em.Faults.All);
    }
}
