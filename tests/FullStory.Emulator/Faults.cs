using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FullStory.Emulator;

/// <summary>What a fault does.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FaultKind>))]
public enum FaultKind
{
    /// <summary>Answer <see cref="FaultRule.Status"/> with <see cref="FaultRule.Body"/> (default: a JSON error body).</summary>
    Status,
    /// <summary>429 with <c>Retry-After: RetryAfterSeconds</c> (header omitted when null).</summary>
    TooManyRequests,
    /// <summary>Valid status and headers, then the body is cut after <see cref="FaultRule.AfterBytes"/> bytes (as sent, i.e. compressed) and the connection aborted.</summary>
    Truncate,
    /// <summary>Wait <see cref="FaultRule.DelayMs"/> before the headers, and/or trickle the body at <see cref="FaultRule.BytesPerSecond"/>.</summary>
    Slow,
    /// <summary>Segment export operation ends FAILED with <see cref="FaultRule.ErrorDetails"/> (endpoint "operation").</summary>
    Failed,
    /// <summary>The results endpoint hands out a location that is already expired (endpoint "results").</summary>
    Expired,
    /// <summary>The bundle/download body breaks at event index <see cref="FaultRule.AfterEvents"/>: <c>{"IndvId":…,"UserId":}</c> (endpoints "get", "download").</summary>
    MalformedJson,
    /// <summary>
    /// The gzip body holds only the first <see cref="FaultRule.AfterEvents"/> events, as complete JSON (whole NDJSON lines,
    /// or an array closed with ']'), flushed to a deflate block boundary, and then ends: no final deflate block, no CRC-32
    /// and length trailer, while the HTTP response itself ends normally (endpoints "get", "download"). What a copy killed
    /// mid-way or a proxy serving a partial object leaves; only the gzip framing shows the data is incomplete.
    /// </summary>
    UnfinishedGzip,
}

/// <summary>One fault to inject. Endpoint: list | get | create | operation | results | download | any.</summary>
public sealed class FaultRule
{
    public string Endpoint { get; set; } = "any";
    /// <summary>Only requests for this bundle (legacy <c>get</c>).</summary>
    public long? BundleId { get; set; }
    public FaultKind Kind { get; set; } = FaultKind.Status;
    /// <summary>Fire on the next N matching requests, then stop; 0 = forever.</summary>
    public int Times { get; set; } = 1;

    public int Status { get; set; } = 500;
    /// <summary>Error body for <see cref="FaultKind.Status"/>: a JSON object/array is sent as JSON, a JSON string is sent verbatim; null = <c>{"code":…,"message":…}</c>.</summary>
    public JsonNode? Body { get; set; }
    public int? RetryAfterSeconds { get; set; } = 2;
    public long AfterBytes { get; set; } = 1024;
    public int DelayMs { get; set; }
    public int BytesPerSecond { get; set; }
    public long AfterEvents { get; set; } = 10;
    public string? ErrorDetails { get; set; } = "export failed (injected by the emulator)";

    /// <summary>Only segment exports (create, operation, results, download) whose time range contains this instant: a window chosen to fail.</summary>
    public DateTimeOffset? ExportContains { get; set; }
    /// <summary>Only segment exports whose time range is longer than this, e.g. FullStory refusing (Status 400 on create) or failing a window that is too large.</summary>
    public TimeSpan? ExportLongerThan { get; set; }

    /// <summary>How many times it fired so far.</summary>
    [JsonInclude]
    public int Fired { get; internal set; }

    internal bool Exhausted => Times > 0 && Fired >= Times;

    internal bool AppliesTo(string endpoint, long? bundleId, ExportWindow? window)
    {
        if (!string.Equals(Endpoint, "any", StringComparison.OrdinalIgnoreCase) && !string.Equals(Endpoint, endpoint, StringComparison.OrdinalIgnoreCase)) return false;
        if (BundleId is not null && BundleId != bundleId) return false;
        if (ExportContains is { } instant && (window is not { } w || instant < w.Start || instant >= w.End)) return false;
        if (ExportLongerThan is { } longer && (window is not { } v || v.End - v.Start <= longer)) return false;
        return Kind switch
        {
            FaultKind.Failed => endpoint == "operation",
            FaultKind.Expired => endpoint == "results",
            FaultKind.MalformedJson or FaultKind.UnfinishedGzip => endpoint is "get" or "download",
            _ => true,
        };
    }

    public override string ToString() => $"{Kind} on {Endpoint}{(BundleId is null ? "" : $" bundle {BundleId}")}" +
        $"{(ExportContains is { } t ? $" export containing {Timestamps.Rfc3339(t)}" : "")}{(ExportLongerThan is { } l ? $" export longer than {l}" : "")} x{(Times == 0 ? "∞" : Times.ToString())}";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new JsonStringEnumConverter() },
    };
}

/// <summary>The time range of a segment export, [Start, End).</summary>
public readonly record struct ExportWindow(DateTimeOffset Start, DateTimeOffset End)
{
    public override string ToString() => $"{Timestamps.Rfc3339(Start)}/{Timestamps.Rfc3339(End)}";
}

/// <summary>Faults to inject, consumed in order of addition (thread-safe).</summary>
public sealed class FaultPlan
{
    private readonly object _gate = new();
    private readonly List<FaultRule> _rules = new();

    public FaultRule Add(FaultRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        lock (_gate) _rules.Add(rule);
        return rule;
    }

    public void AddRange(IEnumerable<FaultRule> rules) { foreach (var r in rules) Add(r); }

    public void Clear() { lock (_gate) _rules.Clear(); }

    /// <summary>Rules not yet exhausted.</summary>
    public IReadOnlyList<FaultRule> Active { get { lock (_gate) return _rules.Where(r => !r.Exhausted).ToList(); } }

    public IReadOnlyList<FaultRule> All { get { lock (_gate) return _rules.ToList(); } }

    // Shorthands
    public FaultRule Status(string endpoint, int status, int times = 1, long? bundleId = null, JsonNode? body = null)
        => Add(new FaultRule { Endpoint = endpoint, Kind = FaultKind.Status, Status = status, Times = times, BundleId = bundleId, Body = body });
    public FaultRule TooManyRequests(string endpoint, int? retryAfterSeconds = 2, int times = 1)
        => Add(new FaultRule { Endpoint = endpoint, Kind = FaultKind.TooManyRequests, RetryAfterSeconds = retryAfterSeconds, Times = times });
    public FaultRule Truncate(string endpoint, long afterBytes, int times = 1, long? bundleId = null)
        => Add(new FaultRule { Endpoint = endpoint, Kind = FaultKind.Truncate, AfterBytes = afterBytes, Times = times, BundleId = bundleId });
    public FaultRule Slow(string endpoint, int delayMs = 0, int bytesPerSecond = 0, int times = 1)
        => Add(new FaultRule { Endpoint = endpoint, Kind = FaultKind.Slow, DelayMs = delayMs, BytesPerSecond = bytesPerSecond, Times = times });
    public FaultRule MalformedJson(string endpoint, long afterEvents, int times = 1, long? bundleId = null)
        => Add(new FaultRule { Endpoint = endpoint, Kind = FaultKind.MalformedJson, AfterEvents = afterEvents, Times = times, BundleId = bundleId });
    public FaultRule UnfinishedGzip(string endpoint, long afterEvents, int times = 1, long? bundleId = null)
        => Add(new FaultRule { Endpoint = endpoint, Kind = FaultKind.UnfinishedGzip, AfterEvents = afterEvents, Times = times, BundleId = bundleId });
    public FaultRule Failed(string? errorDetails = null, int times = 1)
        => Add(new FaultRule { Endpoint = "operation", Kind = FaultKind.Failed, ErrorDetails = errorDetails ?? "export failed (injected by the emulator)", Times = times });
    public FaultRule Expired(int times = 1)
        => Add(new FaultRule { Endpoint = "results", Kind = FaultKind.Expired, Times = times });
    /// <summary>Every export whose window contains <paramref name="instant"/> (and is longer than <paramref name="longerThan"/>, when given) ends FAILED.</summary>
    public FaultRule FailWindow(DateTimeOffset instant, TimeSpan? longerThan = null, string? errorDetails = null, int times = 0)
        => Add(new FaultRule { Endpoint = "operation", Kind = FaultKind.Failed, ExportContains = instant, ExportLongerThan = longerThan, Times = times,
            ErrorDetails = errorDetails ?? "export failed (injected by the emulator for a chosen window)" });

    internal FaultRule? TryTake(string endpoint, long? bundleId, ExportWindow? window = null)
    {
        lock (_gate)
        {
            foreach (var r in _rules)
            {
                if (r.Exhausted || !r.AppliesTo(endpoint, bundleId, window)) continue;
                r.Fired++;
                return r;
            }
            return null;
        }
    }

    internal static List<FaultRule> Parse(string json)
    {
        var node = JsonNode.Parse(json);
        if (node is JsonArray) return JsonSerializer.Deserialize<List<FaultRule>>(json, FaultRule.Json) ?? new();
        if (node is JsonObject) return new() { JsonSerializer.Deserialize<FaultRule>(json, FaultRule.Json)! };
        throw new JsonException("Expected a JSON array of fault rules (or one rule object).");
    }
}
