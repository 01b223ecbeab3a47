using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FullStory.Emulator;

/// <summary>
/// A local emulator of FullStory's export APIs: the legacy bundle API (/api/v1/export/list, /get) and the segment export
/// flow (/segments/v1/exports, /operations/v1/{id}, /search/v1/exports/{id}/results, signed /storage download),
/// plus a control API under /_emulator/. Binds 127.0.0.1 only.
/// </summary>
public sealed partial class FullStoryEmulator : IAsyncDisposable
{
    private readonly EmulatorOptions _options;
    private readonly byte[] _signingKey = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, Operation> _operations = new();
    private readonly ConcurrentDictionary<string, Operation> _exports = new();
    private readonly Queue<long> _downloads = new();
    private WebApplication? _app;

    private FullStoryEmulator(EmulatorOptions options)
    {
        _options = options;
        Dataset = new EmulatorDataset(options);
    }

    public Uri BaseUri { get; private set; } = null!;
    public string ApiKey => _options.ApiKey;
    public EmulatorDataset Dataset { get; }
    public FaultPlan Faults { get; } = new();
    public ServedLog Served { get; } = new();
    public EmulatorOptions Options => _options;

    /// <summary>Log Kestrel warnings to stderr (process mode).</summary>
    internal bool LogToStderr { get; init; }

    public static Task<FullStoryEmulator> StartAsync(EmulatorOptions options, CancellationToken ct = default)
        => StartAsync(options, logToStderr: false, ct);

    internal static async Task<FullStoryEmulator> StartAsync(EmulatorOptions options, bool logToStderr, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var emulator = new FullStoryEmulator(options) { LogToStderr = logToStderr };
        await emulator.StartCoreAsync(ct);
        return emulator;
    }

    private async Task StartCoreAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "FullStory.Emulator" });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, _options.Port);
            k.AddServerHeader = false;
            k.Limits.MinResponseDataRate = null; // the Slow fault trickles bodies
        });
        builder.Services.AddSingleton<IHostLifetime, NoopLifetime>();
        if (LogToStderr)
        {
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync(ct);
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address.TrimEnd('/') + "/");
    }

    public void Reset()
    {
        Faults.Clear();
        Served.Clear();
        lock (_downloads) _downloads.Clear();
        lock (_exportGate) { _peakRunning = RunningExportsUnlocked(); _refusedForLimit = 0; }
    }

    private int RunningExportsUnlocked() { var now = Now(); return _operations.Values.Count(o => IsRunning(o, now)); }

    public IReadOnlyList<EmulatorBundle> AppendBundles(int count) => Dataset.AppendBundles(count);

    public async ValueTask DisposeAsync()
    {
        if (_app is null) return;
        var app = _app;
        _app = null;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try { await app.StopAsync(cts.Token); } catch (OperationCanceledException) { }
        await app.DisposeAsync();
    }

    private sealed class NoopLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    // ======================================================================== dispatch

    private sealed class Ctx
    {
        public required HttpContext Http;
        public required ServeStream Body;
        public required string Endpoint;
        public FaultRule? Fault;
        public long? BundleId;
        public long Events;
        public bool Completed = true;
        /// <summary>The segment export the request is about (create, operation, results, download), when known.</summary>
        public ExportWindow? Window;
        /// <summary>The create request's body, read before faults are matched (they may choose a window).</summary>
        public string? CreateBody;
    }

    private async Task HandleAsync(HttpContext http)
    {
        string path = http.Request.Path.Value ?? "/";
        if (path.StartsWith("/_emulator/", StringComparison.Ordinal) || path == "/_emulator")
        {
            await ControlAsync(http, path);
            return;
        }

        string method = http.Request.Method;
        string endpoint; string? arg = null;
        if (method == "GET" && path == "/api/v1/export/list") endpoint = "list";
        else if (method == "GET" && path == "/api/v1/export/get") endpoint = "get";
        else if (method == "POST" && path.TrimEnd('/') == "/segments/v1/exports") endpoint = "create";
        else if (method == "GET" && path.StartsWith("/operations/v1/", StringComparison.Ordinal)) { endpoint = "operation"; arg = path["/operations/v1/".Length..]; }
        else if (method == "GET" && ResultsPath().Match(path) is { Success: true } m) { endpoint = "results"; arg = m.Groups[1].Value; }
        else if (method == "GET" && path.StartsWith("/storage/", StringComparison.Ordinal)) { endpoint = "download"; arg = path["/storage/".Length..]; }
        else endpoint = "unknown";

        var serve = new ServeStream(http.Response.Body);
        http.Response.Body = serve;
        var c = new Ctx { Http = http, Body = serve, Endpoint = endpoint };
        Served.Begin();
        try
        {
            await DispatchAsync(c, arg);
        }
        catch (TruncatedBodyException)
        {
            c.Completed = false;
            await Task.Delay(150); // let the bytes already flushed reach the client before the connection goes
            http.Abort();
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException || http.RequestAborted.IsCancellationRequested)
        {
            c.Completed = false;
        }
        finally
        {
            Served.Record(new ServedRequest(DateTimeOffset.UtcNow, method, RedactSignature(http.Request.Path + http.Request.QueryString), endpoint,
                http.Response.StatusCode, http.Request.Headers.ContainsKey("Authorization"), serve.BytesSent, c.Completed, c.Fault?.Kind.ToString(), c.BundleId, c.Events)
            { Window = c.Window?.ToString() });
            Served.End();
        }
    }

    [GeneratedRegex("^/search/v1/exports/([^/]+)/results/?$")]
    private static partial Regex ResultsPath();

    [GeneratedRegex("(?i)(Signature=)[^&]*")]
    private static partial Regex SignatureParam();

    private static string RedactSignature(string pathAndQuery) => SignatureParam().Replace(pathAndQuery, "$1REDACTED");

    private async Task DispatchAsync(Ctx c, string? arg)
    {
        var http = c.Http;
        if (c.Endpoint == "unknown")
        {
            await WriteErrorAsync(c, 404, "not_found", $"No such endpoint in the emulator: {http.Request.Method} {http.Request.Path}");
            return;
        }
        if (c.Endpoint == "download")
        {
            if (_exports.TryGetValue(arg!, out var exported)) c.Window = exported.Window;
            await DownloadAsync(c, arg!);
            return;
        }
        if (!IsAuthorized(http))
        {
            if (c.Endpoint == "list") await WriteErrorAsync(c, 404, "not_found", "Not found (check the API key and that the account has the Data Export add-on)");
            else await WriteErrorAsync(c, 401, "unauthenticated", "Missing or invalid API key. Send 'Authorization: Basic <API key>'.");
            return;
        }
        if (c.Endpoint == "get" && long.TryParse(http.Request.Query["id"], out long bid)) c.BundleId = bid;
        if (c.Endpoint == "create")
        {
            using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
            c.CreateBody = await reader.ReadToEndAsync(http.RequestAborted);
            c.Window = TryReadWindow(c.CreateBody);
        }
        else if (c.Endpoint == "operation" && _operations.TryGetValue(arg!, out var polled)) c.Window = polled.Window;
        else if (c.Endpoint == "results" && _exports.TryGetValue(arg!, out var resulted)) c.Window = resulted.Window;
        if (!await ApplyFaultAsync(c)) return;
        switch (c.Endpoint)
        {
            case "list": await ListAsync(c); break;
            case "get": await GetAsync(c); break;
            case "create": await CreateAsync(c); break;
            case "operation": await OperationAsync(c, arg!); break;
            case "results": await ResultsAsync(c, arg!); break;
        }
    }

    private bool IsAuthorized(HttpContext http)
    {
        var values = http.Request.Headers.Authorization;
        return values.Count == 1 && string.Equals(values[0], "Basic " + _options.ApiKey, StringComparison.Ordinal);
    }

    /// <summary>Takes the next matching fault; answers the request itself for Status/TooManyRequests (returns false).</summary>
    private async Task<bool> ApplyFaultAsync(Ctx c)
    {
        var f = Faults.TryTake(c.Endpoint, c.BundleId, c.Window);
        if (f is null) return true;
        c.Fault = f;
        Served.FaultFired(f, c.Endpoint);
        switch (f.Kind)
        {
            case FaultKind.Status:
                {
                    var r = c.Http.Response;
                    r.StatusCode = f.Status;
                    byte[] body;
                    if (f.Body is JsonValue v && v.TryGetValue<string>(out var raw)) { body = Encoding.UTF8.GetBytes(raw); r.ContentType = "text/plain; charset=utf-8"; }
                    else
                    {
                        var node = f.Body?.DeepClone() ?? new JsonObject { ["code"] = StatusCode(f.Status), ["message"] = $"Injected fault: HTTP {f.Status}" };
                        body = Encoding.UTF8.GetBytes(node.ToJsonString());
                        r.ContentType = "application/json";
                    }
                    if (f.Status is not (204 or 304) && !(f.Status >= 100 && f.Status < 200))
                    {
                        r.ContentLength = body.Length;
                        await c.Body.WriteAsync(body);
                    }
                    return false;
                }
            case FaultKind.TooManyRequests:
                if (f.RetryAfterSeconds is int s) c.Http.Response.Headers.RetryAfter = s.ToString();
                await WriteErrorAsync(c, 429, "resource_exhausted", "Too many requests (injected fault)");
                return false;
            case FaultKind.Slow:
                if (f.DelayMs > 0) await Task.Delay(f.DelayMs, c.Http.RequestAborted);
                if (f.BytesPerSecond > 0) c.Body.BytesPerSecond = f.BytesPerSecond;
                return true;
            case FaultKind.Truncate:
                c.Body.TruncateAfter = f.AfterBytes;
                return true;
            default:
                return true; // Failed / Expired / MalformedJson: handled by the endpoint
        }
    }

    private static string StatusCode(int status) => status switch
    {
        400 => "invalid_argument",
        401 => "unauthenticated",
        403 => "permission_denied",
        404 => "not_found",
        409 => "already_exists",
        429 => "resource_exhausted",
        500 => "internal",
        501 => "unimplemented",
        503 => "unavailable",
        504 => "deadline_exceeded",
        _ => "unknown",
    };

    // ======================================================================== responses

    private static async Task WriteJsonAsync(Ctx c, int status, JsonNode body)
    {
        var r = c.Http.Response;
        r.StatusCode = status;
        r.ContentType = "application/json; charset=utf-8";
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString(MinimalJsonEncoder.SerializerOptions));
        r.ContentLength = bytes.Length;
        await c.Body.WriteAsync(bytes, c.Http.RequestAborted);
    }

    private static Task WriteErrorAsync(Ctx c, int status, string code, string message)
        => WriteJsonAsync(c, status, new JsonObject { ["code"] = code, ["message"] = message });

    private static async Task WriteXmlErrorAsync(Ctx c, int status, string code, string message)
    {
        var r = c.Http.Response;
        r.StatusCode = status;
        r.ContentType = "application/xml; charset=UTF-8";
        var bytes = Encoding.UTF8.GetBytes($"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{System.Security.SecurityElement.Escape(message)}</Message></Error>");
        r.ContentLength = bytes.Length;
        await c.Body.WriteAsync(bytes, c.Http.RequestAborted);
    }

    // ======================================================================== legacy API

    private async Task ListAsync(Ctx c)
    {
        if (!long.TryParse(c.Http.Request.Query["start"], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long start))
        {
            await WriteErrorAsync(c, 400, "invalid_argument", "Query parameter 'start' (unix seconds) is required.");
            return;
        }
        var exports = new JsonArray();
        foreach (var b in Dataset.Bundles.Where(b => b.Stop.ToUnixTimeSeconds() > start).OrderBy(b => b.Start).Take(20))
            exports.Add(new JsonObject { ["Id"] = b.Id, ["Start"] = b.Start.ToUnixTimeSeconds(), ["Stop"] = b.Stop.ToUnixTimeSeconds() });
        await WriteJsonAsync(c, 200, new JsonObject { ["exports"] = exports });
    }

    private async Task GetAsync(Ctx c)
    {
        if (c.BundleId is not long id)
        {
            await WriteErrorAsync(c, 400, "invalid_argument", "Query parameter 'id' (bundle id) is required.");
            return;
        }
        if (_options.DownloadsPerWindow > 0)
        {
            long now = Environment.TickCount64, window = (long)_options.DownloadWindow.TotalMilliseconds;
            long retryMs = 0;
            lock (_downloads)
            {
                while (_downloads.Count > 0 && _downloads.Peek() <= now - window) _downloads.Dequeue();
                if (_downloads.Count >= _options.DownloadsPerWindow) retryMs = _downloads.Peek() + window - now;
                else _downloads.Enqueue(now);
            }
            if (retryMs > 0)
            {
                c.Http.Response.Headers.RetryAfter = Math.Max(1, (retryMs + 999) / 1000).ToString();
                await WriteErrorAsync(c, 429, "resource_exhausted", $"Rate limit exceeded: {_options.DownloadsPerWindow} downloads per {_options.DownloadWindow.TotalSeconds:0} seconds.");
                return;
            }
        }
        var bundle = Dataset.Find(id);
        if (bundle is null)
        {
            await WriteErrorAsync(c, 404, "not_found", $"No export bundle with id {id}.");
            return;
        }
        long malformedAt = c.Fault?.Kind == FaultKind.MalformedJson ? Math.Max(0, c.Fault.AfterEvents) : -1;
        long stopAfter = c.Fault?.Kind == FaultKind.UnfinishedGzip ? Math.Max(0, c.Fault.AfterEvents) : -1;
        bool gzip = _options.GzipBundles;
        var r = c.Http.Response;
        r.StatusCode = 200;
        r.ContentType = gzip ? "application/octet-stream" : "application/json";
        r.Headers.ContentDisposition = gzip ? "attachment; filename=\"DataExport.json.gz\"" : "attachment; filename=\"DataExport.json\"";
        var ct = c.Http.RequestAborted;

        if (bundle.SourceFile is not null && malformedAt < 0 && stopAfter < 0)
        {
            // Sample bundles: byte for byte from the file.
            await using var file = new FileStream(bundle.SourceFile, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, useAsync: true);
            if (gzip)
            {
                var gz = new GZipStream(c.Body, _options.GzipLevel, leaveOpen: true);
                await file.CopyToAsync(gz, ct);
                await gz.DisposeAsync();
            }
            else
            {
                r.ContentLength = file.Length;
                await file.CopyToAsync(c.Body, ct);
            }
            c.Events = bundle.EventCount;
            return;
        }

        if (gzip)
        {
            c.Events = await StreamGzipAsync(c.Body, stopAfter, gz => EventStreamer.StreamAsync(gz, Dataset.ItemsOf(bundle), Dataset.Generator, FieldNaming.Legacy, ndjson: false, null, malformedAt, ct, stopAfter));
        }
        else
        {
            c.Events = await EventStreamer.StreamAsync(c.Body, Dataset.ItemsOf(bundle), Dataset.Generator, FieldNaming.Legacy, ndjson: false, null, malformedAt, ct, stopAfter);
        }
    }

    /// <summary>Writes a gzip body; for the UnfinishedGzip fault (<paramref name="stopAfter"/> >= 0) it stops at a deflate block boundary, without final block and trailer.</summary>
    private async Task<long> StreamGzipAsync(Stream body, long stopAfter, Func<Stream, Task<long>> write)
    {
        var target = new CuttableStream(body);
        var gz = new GZipStream(target, _options.GzipLevel, leaveOpen: true);
        long events = await write(gz);
        if (stopAfter >= 0)
        {
            await gz.FlushAsync(); // a sync flush: everything so far, ending on a block boundary
            target.Cut();          // what Dispose writes next (the final block and the trailer) never reaches the client
        }
        await gz.DisposeAsync();
        return events;
    }

    // ======================================================================== segment export

    private sealed class Operation
    {
        public required string Id;
        public required DateTimeOffset Start, End;
        public required bool Ndjson;
        public required Func<string, bool>? Filter;
        public required DateTimeOffset Created;
        /// <summary>Timed exports: when it completes (on the emulator's clock); null = completes after OperationPendingPolls polls.</summary>
        public DateTimeOffset? CompletesAt;
        public long EventCount;
        public long Sequence = Interlocked.Increment(ref _operationSequence);
        public int Polls;
        public string State = "PENDING";
        public string? SearchExportId;
        public string? ErrorDetails;
        public DateTimeOffset Expires;
        public DateTimeOffset? FinishedAt;
        public int DownloadsStarted, DownloadsCompleted;
        public ExportWindow Window => new(Start, End);
    }

    private static long _operationSequence;

    // Guards the running-export limit (count and create in one step) and the export statistics.
    private readonly object _exportGate = new();
    private int _peakRunning, _refusedForLimit;

    private DateTimeOffset Now() => _options.Clock();

    /// <summary>Created and not yet COMPLETED or FAILED (a timed export completes on the clock, whether or not it is polled).</summary>
    private bool IsRunning(Operation op, DateTimeOffset now) =>
        op.State == "PENDING" && (op.CompletesAt is not { } at || at > now);

    /// <summary>Exports running now (for the limit and the stats).</summary>
    public int RunningExports
    {
        get { var now = Now(); lock (_exportGate) return _operations.Values.Count(o => IsRunning(o, now)); }
    }

    /// <summary>The most exports that were running at once since the start (or the last reset).</summary>
    public int PeakRunningExports { get { lock (_exportGate) return _peakRunning; } }

    /// <summary>Creates refused with 429 because <see cref="EmulatorOptions.MaxRunningExports"/> were running.</summary>
    public int ExportsRefusedForLimit { get { lock (_exportGate) return _refusedForLimit; } }

    /// <summary>Every export created so far, oldest first: its window, state and how often its file was downloaded.</summary>
    public IReadOnlyList<ExportRecord> Exports
    {
        get
        {
            var now = Now();
            return _operations.Values.OrderBy(o => o.Sequence).Select(o =>
            {
                lock (o)
                {
                    Advance(o, now);
                    return new ExportRecord(o.Id, o.Window, o.Created, o.State, o.EventCount, o.FinishedAt, o.DownloadsStarted, o.DownloadsCompleted);
                }
            }).ToList();
        }
    }

    /// <summary>The window of the body of a create request, when it has one (faults may be chosen by window).</summary>
    private static ExportWindow? TryReadWindow(string body)
    {
        try
        {
            if (JsonNode.Parse(body) is JsonObject o && o["timeRange"] is JsonObject tr
                && tr["start"] is JsonValue sv && sv.TryGetValue<string>(out var st) && TryRfc3339(st, out var start)
                && tr["end"] is JsonValue ev && ev.TryGetValue<string>(out var en) && TryRfc3339(en, out var end))
                return new ExportWindow(start, end);
        }
        catch (JsonException) { }
        return null;
    }

    /// <summary>Moves a timed export to COMPLETED once its time has come. Call under lock (op).</summary>
    private void Advance(Operation op, DateTimeOffset now)
    {
        if (op.State == "PENDING" && op.CompletesAt is { } at && at <= now) Complete(op, at);
    }

    private void Complete(Operation op, DateTimeOffset at)
    {
        op.State = "COMPLETED";
        op.FinishedAt = at;
        op.SearchExportId = "exp_" + Guid.NewGuid().ToString("N");
        op.Expires = DateTimeOffset.UtcNow.AddDays(7);
        _exports[op.SearchExportId] = op;
    }

    private async Task CreateAsync(Ctx c)
    {
        JsonObject? body;
        try
        {
            body = JsonNode.Parse(c.CreateBody ?? "") as JsonObject;
        }
        catch (JsonException ex)
        {
            await WriteErrorAsync(c, 400, "invalid_argument", "Request body is not valid JSON: " + ex.Message);
            return;
        }
        if (body is null) { await WriteErrorAsync(c, 400, "invalid_argument", "Request body must be a JSON object."); return; }

        string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        string? type = Str(body["type"]), format = Str(body["format"]), segmentId = Str(body["segmentId"]);
        if (body["segmentId"] is not null && string.IsNullOrEmpty(segmentId)) { await WriteErrorAsync(c, 400, "invalid_argument", "segmentId must be a non-empty string."); return; }
        if (type == "TYPE_INDIVIDUAL") { await WriteErrorAsync(c, 400, "invalid_argument", "type TYPE_INDIVIDUAL is not supported by emulator."); return; }
        if (type != "TYPE_EVENT") { await WriteErrorAsync(c, 400, "invalid_argument", $"type must be TYPE_EVENT or TYPE_INDIVIDUAL, got '{type}'."); return; }
        if (format == "FORMAT_CSV") { await WriteErrorAsync(c, 400, "invalid_argument", "format FORMAT_CSV is not supported by emulator."); return; }
        if (format is not ("FORMAT_NDJSON" or "FORMAT_JSON")) { await WriteErrorAsync(c, 400, "invalid_argument", $"format must be FORMAT_JSON, FORMAT_NDJSON or FORMAT_CSV, got '{format}'."); return; }
        if (body["timeRange"] is not JsonObject tr || !TryRfc3339(Str(tr["start"]), out var start) || !TryRfc3339(Str(tr["end"]), out var end))
        {
            await WriteErrorAsync(c, 400, "invalid_argument", "timeRange.start and timeRange.end must be RFC 3339 timestamps.");
            return;
        }
        if (end <= start) { await WriteErrorAsync(c, 400, "invalid_argument", "timeRange.end must be after timeRange.start."); return; }
        Func<string, bool>? filter = null;
        if (body["fields"] is JsonArray fields && fields.Count > 0)
        {
            var patterns = fields.Select(f => Str(f)).Where(s => !string.IsNullOrEmpty(s)).Select(s => s!).ToArray();
            if (patterns.Length > 0) filter = name => patterns.Any(p => Glob(p, name));
        }
        else if (body["fields"] is not null and not JsonArray) { await WriteErrorAsync(c, 400, "invalid_argument", "fields must be an array of strings."); return; }

        var now = Now();
        var op = new Operation { Id = Guid.NewGuid().ToString("N"), Start = start, End = end, Ndjson = format == "FORMAT_NDJSON", Filter = filter, Created = now };
        if (_options.TimedExports)
        {
            op.EventCount = Dataset.CountBetween(start, end);
            op.CompletesAt = now + _options.ExportDuration + _options.ExportDurationPer1000Events * (op.EventCount / 1000.0);
        }
        int retryAfter = 0;
        lock (_exportGate)
        {
            // Counting and adding in one step: two creates at once cannot both take the last place.
            var running = _operations.Values.Where(o => IsRunning(o, now)).ToList();
            if (_options.MaxRunningExports > 0 && running.Count >= _options.MaxRunningExports)
            {
                _refusedForLimit++;
                var first = running.Select(o => o.CompletesAt).Where(t => t is not null).Select(t => t!.Value).DefaultIfEmpty(now.AddSeconds(1)).Min();
                retryAfter = (int)Math.Clamp(Math.Ceiling((first - now).TotalSeconds), 1, 3600);
            }
            else
            {
                _operations[op.Id] = op;
                _peakRunning = Math.Max(_peakRunning, running.Count + 1);
            }
        }
        if (retryAfter > 0)
        {
            c.Http.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WriteErrorAsync(c, 429, "resource_exhausted",
                $"Too many exports running: at most {_options.MaxRunningExports} at once per API key. Try again in {retryAfter} s.");
            return;
        }
        await WriteJsonAsync(c, 200, new JsonObject { ["operationId"] = op.Id });
    }

    private static bool Glob(string pattern, string name)
    {
        if (!pattern.Contains('*')) return string.Equals(pattern, name, StringComparison.Ordinal);
        var parts = pattern.Split('*');
        if (!name.StartsWith(parts[0], StringComparison.Ordinal) || !name.EndsWith(parts[^1], StringComparison.Ordinal)) return false;
        int pos = parts[0].Length;
        for (int i = 1; i < parts.Length - 1; i++)
        {
            int at = name.IndexOf(parts[i], pos, StringComparison.Ordinal);
            if (at < 0) return false;
            pos = at + parts[i].Length;
        }
        return pos <= name.Length - parts[^1].Length;
    }

    private static bool TryRfc3339(string? s, out DateTimeOffset value)
    {
        value = default;
        if (string.IsNullOrEmpty(s) || s.Length < 20 || s[10] is not ('T' or 't')) return false;
        return DateTimeOffset.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out value);
    }

    private async Task OperationAsync(Ctx c, string id)
    {
        if (!_operations.TryGetValue(id, out var op))
        {
            await WriteErrorAsync(c, 404, "not_found", $"No operation {id}.");
            return;
        }
        JsonObject doc;
        var now = Now();
        lock (op)
        {
            Advance(op, now);
            if (c.Fault?.Kind == FaultKind.Failed && op.State != "COMPLETED")
            {
                op.State = "FAILED";
                op.FinishedAt = now;
                op.ErrorDetails = c.Fault.ErrorDetails ?? "export failed";
            }
            else if (op.State == "PENDING")
            {
                op.Polls++;
                if (op.CompletesAt is null && op.Polls > _options.OperationPendingPolls) Complete(op, now);
            }
            int pct = op.State switch
            {
                "COMPLETED" => 100,
                _ when op.CompletesAt is { } at => (int)Math.Clamp(100 * (now - op.Created).Ticks / Math.Max(1, (at - op.Created).Ticks), 0, 99),
                _ => Math.Min(99, op.Polls * 100 / (_options.OperationPendingPolls + 1)),
            };
            doc = new JsonObject
            {
                ["id"] = op.Id,
                ["type"] = "SEARCH_EXPORT",
                ["state"] = op.State,
                ["createdAt"] = Timestamps.Rfc3339(op.Created),
                ["estimatePctComplete"] = pct,
            };
            if (op.State == "COMPLETED")
            {
                doc["results"] = new JsonObject { ["searchExportId"] = op.SearchExportId, ["expires"] = Timestamps.Rfc3339(op.Expires) };
                doc["finishedAt"] = Timestamps.Rfc3339(op.FinishedAt ?? now);
            }
            if (op.State == "FAILED") doc["errorDetails"] = op.ErrorDetails;
        }
        await WriteJsonAsync(c, 200, doc);
    }

    private async Task ResultsAsync(Ctx c, string searchExportId)
    {
        if (!_exports.TryGetValue(searchExportId, out _))
        {
            await WriteErrorAsync(c, 404, "not_found", $"No search export {searchExportId}.");
            return;
        }
        var expires = c.Fault?.Kind == FaultKind.Expired
            ? DateTimeOffset.UtcNow.AddMinutes(-1)
            : DateTimeOffset.UtcNow.Add(_options.DownloadLocationLifetime);
        long exp = expires.ToUnixTimeSeconds();
        string location = $"{BaseUri}storage/{searchExportId}?Expires={exp}&Signature={Sign(searchExportId, exp)}";
        await WriteJsonAsync(c, 200, new JsonObject { ["location"] = location, ["expires"] = Timestamps.Rfc3339(DateTimeOffset.FromUnixTimeSeconds(exp)) });
    }

    private string Sign(string id, long expires)
        => Convert.ToHexStringLower(HMACSHA256.HashData(_signingKey, Encoding.UTF8.GetBytes($"GET\n/storage/{id}\n{expires}")));

    private async Task DownloadAsync(Ctx c, string id)
    {
        var http = c.Http;
        if (http.Request.Headers.ContainsKey("Authorization"))
        {
            Served.KeyLeak(RedactSignature(http.Request.Path + http.Request.QueryString));
            await WriteXmlErrorAsync(c, 400, "InvalidAuthorizationHeader",
                "The request carries an Authorization header, but the URL is already signed. (A signed download must come without it: the API key was sent to the storage host.)");
            return;
        }
        string? expiresText = http.Request.Query["Expires"], signature = http.Request.Query["Signature"];
        if (!long.TryParse(expiresText, out long exp) || string.IsNullOrEmpty(signature)
            || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(signature.ToLowerInvariant()), Encoding.ASCII.GetBytes(Sign(id, exp))))
        {
            await WriteXmlErrorAsync(c, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.");
            return;
        }
        if (DateTimeOffset.UtcNow.ToUnixTimeSeconds() >= exp)
        {
            await WriteXmlErrorAsync(c, 403, "ExpiredToken", "The provided token has expired. Request signature expired at: " + Timestamps.Rfc3339(DateTimeOffset.FromUnixTimeSeconds(exp)));
            return;
        }
        if (!_exports.TryGetValue(id, out var op))
        {
            await WriteXmlErrorAsync(c, 404, "NoSuchKey", "The specified key does not exist.");
            return;
        }
        if (!await ApplyFaultAsync(c)) return;
        long malformedAt = c.Fault?.Kind == FaultKind.MalformedJson ? Math.Max(0, c.Fault.AfterEvents) : -1;
        long stopAfter = c.Fault?.Kind == FaultKind.UnfinishedGzip ? Math.Max(0, c.Fault.AfterEvents) : -1;
        var r = http.Response;
        r.StatusCode = 200;
        r.ContentType = "application/octet-stream";
        r.Headers.ContentDisposition = $"attachment; filename=\"{id}.{(op.Ndjson ? "ndjson" : "json")}.gz\"";
        lock (op) op.DownloadsStarted++;
        c.Events = await StreamGzipAsync(c.Body, stopAfter, gz => EventStreamer.StreamAsync(gz, Dataset.ItemsBetween(op.Start, op.End), Dataset.Generator,
            FieldNaming.SegmentExport, op.Ndjson, op.Filter, malformedAt, http.RequestAborted, stopAfter));
        lock (op) op.DownloadsCompleted++;
    }
}
