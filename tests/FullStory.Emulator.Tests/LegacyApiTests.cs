using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

public class LegacyApiTests
{
    [Fact]
    public async Task List_returns_bundles_oldest_first_with_observed_id_shape()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        using var r = await c.GetAsync("api/v1/export/list?start=0");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var exports = (await T.Json(r))["exports"]!.AsArray();
        Assert.Equal(3, exports.Count);
        long prevStop = 0;
        foreach (var e in exports)
        {
            long id = (long)e!["Id"]!, start = (long)e["Start"]!, stop = (long)e["Stop"]!;
            Assert.Equal(start * 100 + 48, id);
            Assert.Equal(86_400, stop - start);
            Assert.True(start >= prevStop);
            prevStop = stop;
        }
        Assert.Equal(T.Day0.ToUnixTimeSeconds(), (long)exports[0]!["Start"]!);
        Assert.Equal(em.Dataset.Bundles.Select(b => b.Id), exports.Select(e => (long)e!["Id"]!));
    }

    [Fact]
    public async Task List_pages_past_20_by_the_last_stop()
    {
        await using var em = await T.Start(T.Options(bundles: 45, events: 10));
        using var c = T.Client(em);
        var seen = new List<long>();
        long start = 0;
        int pages = 0;
        while (true)
        {
            var exports = (await T.Json(await c.GetAsync($"api/v1/export/list?start={start}")))["exports"]!.AsArray();
            if (exports.Count == 0) break;
            pages++;
            Assert.True(exports.Count <= 20);
            seen.AddRange(exports.Select(e => (long)e!["Id"]!));
            start = (long)exports[^1]!["Stop"]!;
        }
        Assert.Equal(3, pages);
        Assert.Equal(45, seen.Count);
        Assert.Equal(em.Dataset.Bundles.Select(b => b.Id), seen);
        Assert.Equal(4, em.Served.CountFor("list"));
    }

    [Fact]
    public async Task List_filters_on_stop_after_start()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        var b1 = em.Dataset.Bundles[1];
        // start == Stop of bundle 0: bundle 0 is excluded (Stop > start), bundle 1 included
        var ex = (await T.Json(await c.GetAsync($"api/v1/export/list?start={b1.Start.ToUnixTimeSeconds()}")))["exports"]!.AsArray();
        Assert.Equal(new[] { b1.Id, em.Dataset.Bundles[2].Id }, ex.Select(e => (long)e!["Id"]!));
        // start one second earlier: bundle 0 is in
        ex = (await T.Json(await c.GetAsync($"api/v1/export/list?start={b1.Start.ToUnixTimeSeconds() - 1}")))["exports"]!.AsArray();
        Assert.Equal(3, ex.Count);
    }

    [Theory]
    [InlineData("api/v1/export/list")]
    [InlineData("api/v1/export/list?start=")]
    [InlineData("api/v1/export/list?start=yesterday")]
    public async Task List_without_valid_start_is_400(string url)
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        using var r = await c.GetAsync(url);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("invalid_argument", (string?)(await T.Json(r))["code"]);
    }

    [Fact]
    public async Task Get_serves_gzip_json_array_equal_to_EventsOf()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        foreach (var b in em.Dataset.Bundles)
        {
            using var r = await c.GetAsync($"api/v1/export/get?id={b.Id}");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("application/octet-stream", r.Content.Headers.ContentType!.MediaType);
            Assert.Contains("DataExport.json.gz", r.Content.Headers.ContentDisposition!.ToString());
            var raw = await r.Content.ReadAsByteArrayAsync();
            Assert.True(T.IsGzip(raw));
            var events = T.ParseArray(T.Gunzip(raw));
            Assert.Equal(200, events.Count);
            Assert.Equal(b.EventCount, events.Count);
            T.SameEvents(em.Dataset.EventsOf(b.Id).ToList(), events);
            Assert.Equal(1, em.Served.TimesServedComplete(b.Id));
        }
        Assert.Equal(600, em.Served.EventsServed);
        Assert.All(em.Served.Requests, q => { Assert.True(q.Completed); Assert.True(q.HadAuthorization); });
    }

    [Fact]
    public async Task Get_plain_json_when_gzip_is_off()
    {
        var o = T.Options(); o.GzipBundles = false;
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var b = em.Dataset.Bundles[0];
        using var r = await c.GetAsync($"api/v1/export/get?id={b.Id}");
        var raw = await r.Content.ReadAsByteArrayAsync();
        Assert.False(T.IsGzip(raw));
        Assert.Equal((byte)'[', raw[0]);
        T.SameEvents(em.Dataset.EventsOf(b.Id).ToList(), T.ParseArray(raw));
    }

    [Theory]
    [InlineData("api/v1/export/get?id=12345")]
    public async Task Get_unknown_id_is_404(string url)
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        using var r = await c.GetAsync(url);
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal("not_found", (string?)(await T.Json(r))["code"]);
    }

    [Fact]
    public async Task Auth_is_the_key_verbatim_list_answers_404_others_401()
    {
        await using var em = await T.Start();
        var id = em.Dataset.Bundles[0].Id;
        foreach (var key in new string?[] { null, "na1.wrong", Convert.ToBase64String(Encoding.UTF8.GetBytes(em.ApiKey)) })
        {
            using var c = T.Client(em, key);
            using var list = await c.GetAsync("api/v1/export/list?start=0");
            Assert.Equal(HttpStatusCode.NotFound, list.StatusCode);
            using var get = await c.GetAsync($"api/v1/export/get?id={id}");
            Assert.Equal(HttpStatusCode.Unauthorized, get.StatusCode);
            Assert.Equal("unauthenticated", (string?)(await T.Json(get))["code"]);
            using var create = await c.PostAsync("segments/v1/exports", T.JsonBody(T.ExportRequest(T.Day0, T.Day0.AddDays(1))));
            Assert.Equal(HttpStatusCode.Unauthorized, create.StatusCode);
            using var op = await c.GetAsync("operations/v1/whatever");
            Assert.Equal(HttpStatusCode.Unauthorized, op.StatusCode);
            using var res = await c.GetAsync("search/v1/exports/whatever/results");
            Assert.Equal(HttpStatusCode.Unauthorized, res.StatusCode);
        }
        // "Bearer" is not accepted either
        using var bearer = new HttpClient { BaseAddress = em.BaseUri };
        bearer.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + em.ApiKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bearer.GetAsync($"api/v1/export/get?id={id}")).StatusCode);
        Assert.Equal(0, em.Served.TimesServedComplete(id));
    }

    [Fact]
    public async Task Rate_limit_allows_N_downloads_per_window_then_429_with_retry_after()
    {
        var o = T.Options(); o.DownloadsPerWindow = 2; o.DownloadWindow = TimeSpan.FromMinutes(1);
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var ids = em.Dataset.Bundles.Select(b => b.Id).ToArray();
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"api/v1/export/get?id={ids[0]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"api/v1/export/get?id={ids[1]}")).StatusCode);
        using var third = await c.GetAsync($"api/v1/export/get?id={ids[2]}");
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        var retry = third.Headers.RetryAfter!.Delta!.Value.TotalSeconds;
        Assert.InRange(retry, 1, 60);
        Assert.Equal("resource_exhausted", (string?)(await T.Json(third))["code"]);
        // list is not rate limited
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("api/v1/export/list?start=0")).StatusCode);
        Assert.Equal(2, em.Served.BundlesServedComplete.Count);
        Assert.Equal(0, em.Served.TimesServedComplete(ids[2]));
    }

    [Fact]
    public async Task Rate_limit_window_slides()
    {
        var o = T.Options(); o.DownloadsPerWindow = 1; o.DownloadWindow = TimeSpan.FromMilliseconds(300);
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var id = em.Dataset.Bundles[0].Id;
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"api/v1/export/get?id={id}")).StatusCode);
        using var limited = await c.GetAsync($"api/v1/export/get?id={id}");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal(1, limited.Headers.RetryAfter!.Delta!.Value.TotalSeconds); // at least 1 second, whole seconds
        HttpStatusCode status;
        int attempts = 0;
        do { await Task.Delay(200); status = (await c.GetAsync($"api/v1/export/get?id={id}")).StatusCode; }
        while (status != HttpStatusCode.OK && ++attempts < 50);
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task AppendBundles_publishes_after_the_last_one()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        var lastStop = em.Dataset.Bundles[^1].Stop.ToUnixTimeSeconds();
        Assert.Empty((await T.Json(await c.GetAsync($"api/v1/export/list?start={lastStop}")))["exports"]!.AsArray());
        var added = em.AppendBundles(2);
        Assert.Equal(2, added.Count);
        Assert.Equal(lastStop, added[0].Start.ToUnixTimeSeconds());
        var ex = (await T.Json(await c.GetAsync($"api/v1/export/list?start={lastStop}")))["exports"]!.AsArray();
        Assert.Equal(added.Select(b => b.Id), ex.Select(e => (long)e!["Id"]!));
        Assert.Equal(5, em.Dataset.Bundles.Count);
        var events = T.ParseArray(await T.GetBundleBytes(c, added[1].Id));
        T.SameEvents(em.Dataset.EventsOf(added[1].Id).ToList(), events);
    }

    [Fact]
    public async Task Sample_bundles_are_served_byte_for_byte_before_generated_ones()
    {
        var o = T.Options();
        var file = Path.Combine(T.Samples, "bundle-legacy-fields.json");
        o.SampleBundleFiles.Add(file);
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var sample = em.Dataset.Bundles[0];
        Assert.Equal(file, sample.SourceFile);
        Assert.Equal(144, sample.EventCount);
        Assert.Equal(new DateTimeOffset(2020, 8, 27, 0, 0, 0, TimeSpan.Zero), sample.Start); // min EventStart 2020-08-27T06:20:26.900Z, rounded down
        Assert.Equal(new DateTimeOffset(2020, 8, 31, 0, 0, 0, TimeSpan.Zero), sample.Stop);  // max EventStart 2020-08-30T06:28:39.275Z, rounded up
        Assert.Equal(sample.Start.ToUnixTimeSeconds() * 100 + 48, sample.Id);
        var ex = (await T.Json(await c.GetAsync("api/v1/export/list?start=0")))["exports"]!.AsArray();
        Assert.Equal(4, ex.Count);
        Assert.Equal(sample.Id, (long)ex[0]!["Id"]!);

        var body = await T.GetBundleBytes(c, sample.Id);
        Assert.Equal(await File.ReadAllBytesAsync(file), body);
        var fromFile = JsonNode.Parse(await File.ReadAllBytesAsync(file))!.AsArray().Select(n => n!.AsObject()).ToList();
        T.SameEvents(fromFile, em.Dataset.EventsOf(sample.Id).ToList());
        Assert.Equal(144, em.Served.EventsServed);
    }

    [Fact]
    public async Task Unknown_path_is_404_json()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        using var r = await c.GetAsync("api/v2/whatever");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal(1, em.Served.CountFor("unknown"));
    }

    [Fact]
    public async Task Served_log_never_holds_the_key()
    {
        await using var em = await T.Start();
        using var c = T.Client(em);
        await c.GetAsync("api/v1/export/list?start=0");
        await c.GetAsync($"api/v1/export/get?id={em.Dataset.Bundles[0].Id}");
        var stats = em.Served.ToJson().ToJsonString();
        Assert.DoesNotContain(em.ApiKey, stats);
        Assert.DoesNotContain(em.ApiKey, JsonSerializer.Serialize(em.Served.Requests));
        Assert.All(em.Served.Requests, r => Assert.True(r.HadAuthorization));
    }
}
