using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

public class ControlApiTests
{
    [Fact]
    public async Task Stats_dataset_events_bundles_reset()
    {
        await using var em = await T.Start();
        using var anon = new HttpClient { BaseAddress = em.BaseUri };
        using var c = T.Client(em);
        var b = em.Dataset.Bundles[0];
        await T.GetBundleBytes(c, b.Id);
        await c.GetAsync("api/v1/export/list?start=0");

        var stats = await T.Json(await anon.GetAsync("_emulator/stats"));
        Assert.Equal(1, (int)stats["endpointCounts"]!["get"]!);
        Assert.Equal(1, (int)stats["endpointCounts"]!["list"]!);
        Assert.Equal(1, (int)stats["bundlesServedComplete"]![b.Id.ToString()]!);
        Assert.Equal(200, (long)stats["eventsServed"]!);
        Assert.Equal(0, (int)stats["keyLeaks"]!["count"]!);
        Assert.Equal(0, (int)stats["faultsFired"]!);
        var reqs = stats["requests"]!.AsArray();
        Assert.Equal(2, reqs.Count); // control requests are not logged
        Assert.Equal("get", (string?)reqs[0]!["endpoint"]);
        Assert.True((bool)reqs[0]!["completed"]!);
        Assert.True((bool)reqs[0]!["hadAuthorization"]!);
        Assert.True((long)reqs[0]!["bytesSent"]! > 0);
        Assert.DoesNotContain(em.ApiKey, stats.ToJsonString());

        var ds = await T.Json(await anon.GetAsync("_emulator/dataset"));
        Assert.Equal(em.Dataset.Bundles.Select(x => x.Id), ds["bundles"]!.AsArray().Select(x => (long)x!["Id"]!));
        Assert.Equal(200, (long)ds["bundles"]![0]!["EventCount"]!);

        var events = JsonNode.Parse(await anon.GetByteArrayAsync($"_emulator/events?bundleId={b.Id}"))!.AsArray().Select(n => n!.AsObject()).ToList();
        T.SameEvents(em.Dataset.EventsOf(b.Id).ToList(), events);
        var between = JsonNode.Parse(await anon.GetByteArrayAsync($"_emulator/events?start=2025-03-01T06:00:00Z&end=2025-03-02T06:00:00Z"))!.AsArray().Select(n => n!.AsObject()).ToList();
        T.SameEvents(em.Dataset.EventsBetween(T.Day0.AddHours(6), T.Day0.AddHours(30)).ToList(), between);
        Assert.Equal(HttpStatusCode.NotFound, (await anon.GetAsync("_emulator/events?bundleId=1")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await anon.GetAsync("_emulator/events")).StatusCode);

        var added = await T.Json(await anon.PostAsync("_emulator/bundles?count=2", null));
        Assert.Equal(2, added["added"]!.AsArray().Count);
        Assert.Equal(5, em.Dataset.Bundles.Count);

        Assert.Equal(HttpStatusCode.OK, (await anon.PostAsync("_emulator/reset", null)).StatusCode);
        Assert.Empty(em.Served.Requests);
        Assert.Equal(0, em.Served.EventsServed);
        Assert.Equal(HttpStatusCode.NotFound, (await anon.GetAsync("_emulator/nothing")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await anon.PostAsync("_emulator/faults", new StringContent("{oops", Encoding.UTF8))).StatusCode);
    }

    [Fact]
    public async Task Binds_loopback_only_and_picks_a_free_port()
    {
        await using var a = await T.Start();
        await using var b = await T.Start();
        Assert.Equal("127.0.0.1", a.BaseUri.Host);
        Assert.NotEqual(a.BaseUri.Port, b.BaseUri.Port);
        Assert.EndsWith("/", a.BaseUri.ToString());
    }
}

public class ProcessModeTests
{
    [Fact]
    public async Task Process_prints_one_json_line_serves_and_stops_at_stdin_eof()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "FullStory.Emulator.dll");
        Assert.True(File.Exists(dll), dll);
        var faults = Path.GetTempFileName();
        await File.WriteAllTextAsync(faults, """[{"Endpoint":"get","Kind":"TooManyRequests","RetryAfterSeconds":9}]""");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { dll, "--port", "0", "--key", "na1.processkey", "--seed", "5", "--bundles", "2", "--events-per-bundle", "30",
                     "--first-bundle-start", "2025-03-01T00:00:00Z", "--period-hours", "12", "--faults", faults,
                     "--sample-bundle", Path.Combine(T.Samples, "bundle-legacy-fields.json") })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            var lineTask = p.StandardOutput.ReadLineAsync();
            Assert.True(await Task.WhenAny(lineTask, Task.Delay(TimeSpan.FromSeconds(30))) == lineTask, "no startup line");
            var line = JsonNode.Parse((await lineTask)!)!.AsObject();
            Assert.Equal(new[] { "baseUri", "apiKey" }, line.Select(kv => kv.Key));
            Assert.Equal("na1.processkey", (string?)line["apiKey"]);
            var baseUri = new Uri((string)line["baseUri"]!);
            Assert.Equal("127.0.0.1", baseUri.Host);

            using var c = new HttpClient { BaseAddress = baseUri };
            c.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Basic na1.processkey");
            var exports = (await T.Json(await c.GetAsync("api/v1/export/list?start=0")))["exports"]!.AsArray();
            Assert.Equal(3, exports.Count);
            Assert.Equal(43_200, (long)exports[1]!["Stop"]! - (long)exports[1]!["Start"]!);
            var id = (long)exports[1]!["Id"]!;
            using var limited = await c.GetAsync($"api/v1/export/get?id={id}");
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(9), limited.Headers.RetryAfter!.Delta);
            var events = T.ParseArray(await T.GetBundleBytes(c, id));
            Assert.Equal(30, events.Count);
            var expected = JsonNode.Parse(await new HttpClient().GetByteArrayAsync(new Uri(baseUri, $"_emulator/events?bundleId={id}")))!.AsArray().Select(n => n!.AsObject()).ToList();
            T.SameEvents(expected, events);
            var stats = await T.Json(await new HttpClient().GetAsync(new Uri(baseUri, "_emulator/stats")));
            Assert.Equal(1, (int)stats["faultsFired"]!);

            p.StandardInput.Close(); // EOF: the emulator stops
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await p.WaitForExitAsync(cts.Token);
            Assert.Equal(0, p.ExitCode);
            Assert.Null(await p.StandardOutput.ReadLineAsync()); // nothing else on stdout
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            File.Delete(faults);
        }
        Assert.DoesNotContain("fail", (await stderr).ToLowerInvariant());
    }

    [Fact]
    public async Task Process_stops_on_sigterm()
    {
        if (OperatingSystem.IsWindows()) return;
        var dll = Path.Combine(AppContext.BaseDirectory, "FullStory.Emulator.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--no-stdin");
        using var p = Process.Start(psi)!;
        try
        {
            var line = JsonNode.Parse((await p.StandardOutput.ReadLineAsync())!)!;
            using var c = new HttpClient();
            Assert.Equal(HttpStatusCode.OK, (await c.GetAsync(new Uri(new Uri((string)line["baseUri"]!), "_emulator/dataset"))).StatusCode);
            p.StandardInput.Close(); // ignored with --no-stdin
            await Task.Delay(300);
            Assert.False(p.HasExited);
            using var kill = Process.Start("kill", new[] { "-TERM", p.Id.ToString() });
            await kill.WaitForExitAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await p.WaitForExitAsync(cts.Token);
            Assert.Equal(0, p.ExitCode);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }
}
