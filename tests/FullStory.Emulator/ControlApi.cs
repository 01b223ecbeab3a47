using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace FullStory.Emulator;

/// <summary>Control API for out-of-process use (no auth): /_emulator/…</summary>
public sealed partial class FullStoryEmulator
{
    private async Task ControlAsync(HttpContext http, string path)
    {
        var req = http.Request;
        var res = http.Response;
        string route = path.TrimEnd('/');
        try
        {
            switch (req.Method, route)
            {
                case ("GET", "/_emulator/stats"):
                    {
                        var stats = Served.ToJson();
                        stats["exports"] = ExportsJson();
                        await Json(200, stats);
                        return;
                    }
                case ("GET", "/_emulator/settings"):
                    await Json(200, SettingsJson());
                    return;
                case ("POST", "/_emulator/settings"):
                    {
                        using var reader = new StreamReader(req.Body, Encoding.UTF8);
                        if (JsonNode.Parse(await reader.ReadToEndAsync(http.RequestAborted)) is not JsonObject o)
                        {
                            await Json(400, Error("Give a JSON object, e.g. {\"exportSeconds\":2,\"maxRunningExports\":4}."));
                            return;
                        }
                        foreach (var (name, value) in o)
                        {
                            double? number = value is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
                            if (number is not { } n || n < 0) { await Json(400, Error($"{name} must be a number >= 0.")); return; }
                            switch (name.ToLowerInvariant())
                            {
                                case "exportseconds": _options.ExportDuration = TimeSpan.FromSeconds(n); break;
                                case "exportmsper1000events": _options.ExportDurationPer1000Events = TimeSpan.FromMilliseconds(n); break;
                                case "maxrunningexports": _options.MaxRunningExports = (int)n; break;
                                case "pendingpolls": _options.OperationPendingPolls = (int)n; break;
                                default: await Json(400, Error($"Unknown setting {name}: exportSeconds, exportMsPer1000Events, maxRunningExports, pendingPolls.")); return;
                            }
                        }
                        await Json(200, SettingsJson());
                        return;
                    }
                case ("GET", "/_emulator/events/count"):
                    {
                        if (!TryRfc3339(req.Query["start"], out var start) || !TryRfc3339(req.Query["end"], out var end))
                        {
                            await Json(400, Error("Give start=<RFC 3339>&end=<RFC 3339>."));
                            return;
                        }
                        await Json(200, new JsonObject { ["count"] = Dataset.CountBetween(start, end) });
                        return;
                    }
                case ("GET", "/_emulator/faults"):
                    await Json(200, JsonSerializer.SerializeToNode(Faults.All, FaultRule.Json)!);
                    return;
                case ("POST", "/_emulator/faults"):
                    {
                        using var reader = new StreamReader(req.Body, Encoding.UTF8);
                        var rules = FaultPlan.Parse(await reader.ReadToEndAsync(http.RequestAborted));
                        Faults.AddRange(rules);
                        await Json(200, new JsonObject { ["added"] = rules.Count, ["active"] = Faults.Active.Count });
                        return;
                    }
                case ("DELETE", "/_emulator/faults"):
                    Faults.Clear();
                    await Json(200, new JsonObject { ["active"] = 0 });
                    return;
                case ("POST", "/_emulator/reset"):
                    Reset();
                    await Json(200, new JsonObject { ["reset"] = true });
                    return;
                case ("POST", "/_emulator/bundles"):
                    {
                        int count = int.TryParse(req.Query["count"], out var n) ? n : 1;
                        if (count < 0) { await Json(400, Error("count must be >= 0")); return; }
                        var added = AppendBundles(count);
                        await Json(200, new JsonObject { ["added"] = BundlesJson(added) });
                        return;
                    }
                case ("GET", "/_emulator/dataset"):
                    await Json(200, new JsonObject { ["baseUri"] = BaseUri.ToString(), ["bundles"] = BundlesJson(Dataset.Bundles) });
                    return;
                case ("GET", "/_emulator/events"):
                    await EventsAsync(http);
                    return;
                default:
                    await Json(404, Error($"No control endpoint {req.Method} {path}. Try GET /_emulator/stats, /_emulator/dataset, /_emulator/events?bundleId=, /_emulator/events/count?start=&end=, /_emulator/faults; POST /_emulator/faults, /_emulator/reset, /_emulator/bundles?count=N, /_emulator/settings; GET /_emulator/settings; DELETE /_emulator/faults."));
                    return;
            }
        }
        catch (JsonException ex)
        {
            if (!res.HasStarted) await Json(400, Error("Invalid JSON: " + ex.Message));
        }

        async Task Json(int status, JsonNode body)
        {
            res.StatusCode = status;
            res.ContentType = "application/json; charset=utf-8";
            var bytes = Encoding.UTF8.GetBytes(body.ToJsonString(MinimalJsonEncoder.SerializerOptions));
            res.ContentLength = bytes.Length;
            await res.Body.WriteAsync(bytes, http.RequestAborted);
        }
    }

    /// <summary>How segment exports behave now (GET/POST /_emulator/settings): changes apply to exports created afterwards.</summary>
    private JsonObject SettingsJson() => new()
    {
        ["exportSeconds"] = _options.ExportDuration.TotalSeconds,
        ["exportMsPer1000Events"] = _options.ExportDurationPer1000Events.TotalMilliseconds,
        ["maxRunningExports"] = _options.MaxRunningExports,
        ["pendingPolls"] = _options.OperationPendingPolls,
    };

    /// <summary>The segment exports part of the stats: running now, the most at once, creates refused for the limit, and each export.</summary>
    private JsonObject ExportsJson()
    {
        var list = new JsonArray();
        foreach (var e in Exports)
            list.Add(new JsonObject
            {
                ["operationId"] = e.OperationId, ["start"] = Timestamps.Rfc3339(e.Window.Start), ["end"] = Timestamps.Rfc3339(e.Window.End),
                ["created"] = e.Created.ToString("O"), ["state"] = e.State, ["events"] = e.Events, ["finishedAt"] = e.FinishedAt?.ToString("O"),
                ["downloadsStarted"] = e.DownloadsStarted, ["downloadsCompleted"] = e.DownloadsCompleted,
            });
        return new JsonObject
        {
            ["running"] = RunningExports, ["peakRunning"] = PeakRunningExports, ["refusedForLimit"] = ExportsRefusedForLimit, ["list"] = list,
        };
    }

    private static JsonObject Error(string message) => new() { ["code"] = "invalid_argument", ["message"] = message };

    private static JsonArray BundlesJson(IEnumerable<EmulatorBundle> bundles)
    {
        var a = new JsonArray();
        foreach (var b in bundles)
            a.Add(new JsonObject
            {
                ["Id"] = b.Id,
                ["Start"] = b.Start.ToUnixTimeSeconds(),
                ["Stop"] = b.Stop.ToUnixTimeSeconds(),
                ["EventCount"] = b.EventCount,
                ["StartTime"] = Timestamps.Rfc3339(b.Start),
                ["StopTime"] = Timestamps.Rfc3339(b.Stop),
                ["SourceFile"] = b.SourceFile,
            });
        return a;
    }

    /// <summary>
    /// The expected events as one plain JSON array: <c>?bundleId=</c> (legacy names, = the bundle body) or
    /// <c>?start=&amp;end=</c> (RFC 3339; segment export names, = the segment export of [start, end)).
    /// </summary>
    private async Task EventsAsync(HttpContext http)
    {
        var q = http.Request.Query;
        var res = http.Response;
        IEnumerable<EventItem> items;
        FieldNaming naming;
        if (long.TryParse(q["bundleId"], out long id))
        {
            var b = Dataset.Find(id);
            if (b is null)
            {
                res.StatusCode = 404;
                await res.WriteAsJsonAsync(new { code = "not_found", message = $"No bundle {id}" });
                return;
            }
            items = Dataset.ItemsOf(b);
            naming = FieldNaming.Legacy;
        }
        else if (TryRfc3339(q["start"], out var start) && TryRfc3339(q["end"], out var end))
        {
            items = Dataset.ItemsBetween(start, end);
            naming = FieldNaming.SegmentExport;
        }
        else
        {
            res.StatusCode = 400;
            await res.WriteAsJsonAsync(new { code = "invalid_argument", message = "Give bundleId=<id>, or start=<RFC 3339>&end=<RFC 3339>." });
            return;
        }
        res.StatusCode = 200;
        res.ContentType = "application/json; charset=utf-8";
        await EventStreamer.StreamAsync(res.Body, items, Dataset.Generator, naming, ndjson: false, null, -1, http.RequestAborted);
    }
}
