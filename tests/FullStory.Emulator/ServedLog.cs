using System.Text.Json.Nodes;

namespace FullStory.Emulator;

/// <summary>One request as served. The Authorization header value is never recorded, nor the URL signature.</summary>
public sealed record ServedRequest(
    DateTimeOffset At,
    string Method,
    string PathAndQuery,
    string Endpoint,
    int Status,
    bool HadAuthorization,
    long BytesSent,
    bool Completed,
    string? Fault,
    long? BundleId,
    long Events)
{
    /// <summary>Segment export requests: the export's time range, "start/end" in RFC 3339.</summary>
    public string? Window { get; init; }
}

/// <summary>Exactly what was served (thread-safe). Control API requests (/_emulator/…) are not recorded.</summary>
public sealed class ServedLog
{
    private readonly object _gate = new();
    private readonly List<ServedRequest> _requests = new();
    private readonly Dictionary<string, int> _perEndpoint = new();
    private readonly Dictionary<long, int> _bundlesComplete = new();
    private readonly List<string> _keyLeakPaths = new();
    private readonly List<string> _faults = new();
    private long _events;

    public IReadOnlyList<ServedRequest> Requests { get { lock (_gate) return _requests.ToList(); } }
    /// <summary>Requests per endpoint: list, get, create, operation, results, download, unknown.</summary>
    public IReadOnlyDictionary<string, int> EndpointCounts { get { lock (_gate) return new Dictionary<string, int>(_perEndpoint); } }
    /// <summary>Bundle id → times its body was sent completely.</summary>
    public IReadOnlyDictionary<long, int> BundlesServedComplete { get { lock (_gate) return new Dictionary<long, int>(_bundlesComplete); } }
    /// <summary>Events in bodies (bundles and segment downloads) that were sent completely.</summary>
    public long EventsServed { get { lock (_gate) return _events; } }
    /// <summary>Signed downloads that came with an Authorization header.</summary>
    public int KeyLeaks { get { lock (_gate) return _keyLeakPaths.Count; } }
    public IReadOnlyList<string> KeyLeakPaths { get { lock (_gate) return _keyLeakPaths.ToList(); } }
    public int FaultsFired { get { lock (_gate) return _faults.Count; } }
    /// <summary>"Kind endpoint" of each fault fired, in order.</summary>
    public IReadOnlyList<string> FiredFaults { get { lock (_gate) return _faults.ToList(); } }

    /// <summary>
    /// Requests to <paramref name="endpoint"/> so far. A request is logged when its handler ends, which for an aborted
    /// (truncated) body is a moment after the client saw the abort: this first waits, briefly, for requests in flight.
    /// </summary>
    public int CountFor(string endpoint)
    {
        WaitForIdle(TimeSpan.FromSeconds(3));
        lock (_gate) return _perEndpoint.GetValueOrDefault(endpoint);
    }

    private int _inFlight;
    internal void Begin() => Interlocked.Increment(ref _inFlight);
    internal void End() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Waits until no API request is being served (or the timeout passes).</summary>
    public bool WaitForIdle(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Volatile.Read(ref _inFlight) > 0)
        {
            if (DateTime.UtcNow >= deadline) return false;
            Thread.Sleep(10);
        }
        return true;
    }
    public int TimesServedComplete(long bundleId) { lock (_gate) return _bundlesComplete.GetValueOrDefault(bundleId); }

    internal void Record(ServedRequest r)
    {
        lock (_gate)
        {
            _requests.Add(r);
            _perEndpoint[r.Endpoint] = _perEndpoint.GetValueOrDefault(r.Endpoint) + 1;
            if (r.Completed && r.Status == 200 && (r.Endpoint is "get" or "download") && r.Fault is not (nameof(FaultKind.MalformedJson) or nameof(FaultKind.UnfinishedGzip)))
            {
                _events += r.Events;
                if (r.Endpoint == "get" && r.BundleId is long id) _bundlesComplete[id] = _bundlesComplete.GetValueOrDefault(id) + 1;
            }
        }
    }

    internal void KeyLeak(string pathWithoutSignature) { lock (_gate) _keyLeakPaths.Add(pathWithoutSignature); }
    internal void FaultFired(FaultRule rule, string endpoint) { lock (_gate) _faults.Add($"{rule.Kind} {endpoint}"); }

    internal void Clear()
    {
        lock (_gate)
        {
            _requests.Clear(); _perEndpoint.Clear(); _bundlesComplete.Clear(); _keyLeakPaths.Clear(); _faults.Clear(); _events = 0;
        }
    }

    /// <summary>The stats document of <c>GET /_emulator/stats</c>.</summary>
    public JsonObject ToJson()
    {
        lock (_gate)
        {
            var reqs = new JsonArray();
            foreach (var r in _requests)
                reqs.Add(new JsonObject
                {
                    ["at"] = r.At.ToString("O"), ["method"] = r.Method, ["pathAndQuery"] = r.PathAndQuery, ["endpoint"] = r.Endpoint,
                    ["status"] = r.Status, ["hadAuthorization"] = r.HadAuthorization, ["bytesSent"] = r.BytesSent, ["completed"] = r.Completed,
                    ["fault"] = r.Fault, ["bundleId"] = r.BundleId, ["events"] = r.Events, ["window"] = r.Window,
                });
            var per = new JsonObject(); foreach (var kv in _perEndpoint.OrderBy(k => k.Key)) per[kv.Key] = kv.Value;
            var bundles = new JsonObject(); foreach (var kv in _bundlesComplete.OrderBy(k => k.Key)) bundles[kv.Key.ToString()] = kv.Value;
            return new JsonObject
            {
                ["endpointCounts"] = per,
                ["bundlesServedComplete"] = bundles,
                ["eventsServed"] = _events,
                ["keyLeaks"] = new JsonObject { ["count"] = _keyLeakPaths.Count, ["paths"] = new JsonArray(_keyLeakPaths.Select(p => (JsonNode)p!).ToArray()) },
                ["faultsFired"] = _faults.Count,
                ["firedFaults"] = new JsonArray(_faults.Select(p => (JsonNode)p!).ToArray()),
                ["requests"] = reqs,
            };
        }
    }
}

/// <summary>One segment export as the emulator saw it: window, state, and how often its file was downloaded.</summary>
public sealed record ExportRecord(string OperationId, ExportWindow Window, DateTimeOffset Created, string State, long Events,
    DateTimeOffset? FinishedAt, int DownloadsStarted, int DownloadsCompleted);
