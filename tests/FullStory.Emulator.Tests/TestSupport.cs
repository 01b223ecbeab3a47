using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

internal static class T
{
    public static readonly DateTimeOffset Day0 = new(2025, 3, 1, 0, 0, 0, TimeSpan.Zero);

    public static string Samples => Path.Combine(RepoRoot, "tests", "data", "samples");

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    public static EmulatorOptions Options(int bundles = 3, int events = 200, int seed = 1) => new()
    {
        BundleCount = bundles,
        EventsPerBundle = events,
        Seed = seed,
        FirstBundleStart = Day0,
    };

    public static Task<FullStoryEmulator> Start(EmulatorOptions? o = null) => FullStoryEmulator.StartAsync(o ?? Options());

    /// <summary>A client that authenticates like the module: the key verbatim, and no automatic decompression.</summary>
    public static HttpClient Client(FullStoryEmulator em, string? key = "<default>")
    {
        var c = new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None }) { BaseAddress = em.BaseUri, Timeout = TimeSpan.FromMinutes(3) };
        key = key == "<default>" ? em.ApiKey : key;
        if (key is not null) c.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Basic " + key);
        return c;
    }

    public static HttpClient Anonymous(FullStoryEmulator em) => Client(em, null);

    public static async Task<JsonNode> Json(HttpResponseMessage r) => JsonNode.Parse(await r.Content.ReadAsStringAsync())!;

    public static byte[] Gunzip(byte[] gz)
    {
        using var ms = new MemoryStream();
        using (var z = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress)) z.CopyTo(ms);
        return ms.ToArray();
    }

    public static bool IsGzip(byte[] b) => b.Length > 2 && b[0] == 0x1F && b[1] == 0x8B;

    public static async Task<byte[]> GetBundleBytes(HttpClient c, long id)
    {
        using var r = await c.GetAsync($"api/v1/export/get?id={id}");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var b = await r.Content.ReadAsByteArrayAsync();
        return IsGzip(b) ? Gunzip(b) : b;
    }

    public static List<JsonObject> ParseArray(byte[] json) => JsonNode.Parse(json)!.AsArray().Select(n => n!.AsObject()).ToList();

    public static List<JsonObject> ParseNdjson(byte[] ndjson)
        => Encoding.UTF8.GetString(ndjson).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();

    public static void SameEvents(IReadOnlyList<JsonObject> expected, IReadOnlyList<JsonObject> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(JsonNode.DeepEquals(expected[i], actual[i]), $"event {i} differs:\nexpected {expected[i].ToJsonString()}\nactual   {actual[i].ToJsonString()}");
    }

    public static StringContent JsonBody(object o) => new(JsonSerializer.Serialize(o), Encoding.UTF8, "application/json");

    public static object ExportRequest(DateTimeOffset start, DateTimeOffset end, string format = "FORMAT_NDJSON", string type = "TYPE_EVENT") => new
    {
        segmentId = "everyone",
        type,
        format,
        timeRange = new { start = start.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"), end = end.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'") },
        segmentTimeRange = new { start = "", end = "" },
    };
}
