using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using FullStory.Engine.Events;

namespace FullStory.Engine.Api;

/// <summary>What to export through FullStory's Segment Export API: events whose EventStart is in [Start, End).</summary>
public sealed record SegmentExportRequest(DateTimeOffset Start, DateTimeOffset End, string SegmentId = "everyone")
{
    /// <summary>FORMAT_NDJSON (default) or FORMAT_JSON; both stream.</summary>
    public string Format { get; init; } = "FORMAT_NDJSON";
    public string? TimeZone { get; init; }
    /// <summary>Only these fields (names or wildcards); EventStart and EventType are always added (the reader requires them).</summary>
    public IReadOnlyList<string>? Fields { get; init; }

    /// <summary>The key that marks this window as loaded in a destination's sync-state table.</summary>
    public string BatchKey => $"export:{SegmentId}:{Iso(Start)}/{Iso(End)}";

    internal static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// Windows are whole seconds: the time range FullStory is asked for and the batch key are written to the second, so a
    /// boundary with a fraction would ask for one range and record another.
    /// </summary>
    public static DateTimeOffset WholeSeconds(DateTimeOffset t)
    {
        var utc = t.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - utc.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
    }

    /// <summary>The length of the window.</summary>
    public TimeSpan Span => End - Start;

    /// <summary>Where this window's raw download is archived in <paramref name="directory"/> (the extension is added once the format is known).</summary>
    public string? ArchiveBase(string? directory)
    {
        if (directory is null) return null;
        var invalid = Path.GetInvalidFileNameChars();
        string segment = new(SegmentId.Select(c => invalid.Contains(c) || c is ':' or '/' or '\\' ? '_' : c).ToArray());
        return Path.Combine(directory, $"export-{segment}-{Start.UtcDateTime:yyyyMMddTHHmmssZ}-{End.UtcDateTime:yyyyMMddTHHmmssZ}");
    }

    public override string ToString() => $"segment '{SegmentId}' from {Iso(Start)} to {Iso(End)}";
}

/// <summary>The state of a segment export operation.</summary>
public sealed record ExportOperation(string Id, string State, int PercentComplete, string? SearchExportId, string? ErrorDetails);

/// <summary>
/// When to ask again about an export being prepared: the first check after about a second (small exports are often ready
/// by then), then 1.5 times longer each time, up to <see cref="RetrySettings.PollInterval"/> (hauser polls every 5 s flat).
/// </summary>
internal struct PollBackoff
{
    private static readonly TimeSpan First = TimeSpan.FromSeconds(1);
    private readonly TimeSpan cap;
    private TimeSpan next;

    public PollBackoff(TimeSpan cap)
    {
        this.cap = cap <= TimeSpan.Zero ? First : cap;
        next = First < this.cap ? First : this.cap;
    }

    /// <summary>The wait before the next status check; each call lengthens the following one.</summary>
    public TimeSpan Next()
    {
        var now = next;
        var longer = TimeSpan.FromTicks((long)(next.Ticks * 1.5));
        next = longer < cap ? longer : cap;
        return now;
    }
}

public sealed partial class FullStoryClient
{
    /// <summary>POST /segments/v1/exports: asks FullStory to prepare an export; returns the operation id.</summary>
    /// <param name="retryRateLimits">false: a 429 throws <see cref="FullStoryRateLimitedException"/> at once (the scheduler's own handling).</param>
    public string StartSegmentExport(SegmentExportRequest request, OperationObserver? observer = null, CancellationToken cancellationToken = default,
        bool retryRateLimits = true)
    {
        observer ??= OperationObserver.None;
        if (request.End <= request.Start)
            throw new ArgumentException($"The export window is empty: End ({SegmentExportRequest.Iso(request.End)}) must be after Start ({SegmentExportRequest.Iso(request.Start)}).");
        var body = new Dictionary<string, object?>
        {
            ["segmentId"] = request.SegmentId,
            ["type"] = "TYPE_EVENT",
            ["format"] = request.Format,
            ["timeRange"] = new Dictionary<string, string> { ["start"] = SegmentExportRequest.Iso(request.Start), ["end"] = SegmentExportRequest.Iso(request.End) },
            ["segmentTimeRange"] = new Dictionary<string, string> { ["start"] = "", ["end"] = "" },
        };
        if (request.TimeZone is not null) body["timezone"] = request.TimeZone;
        if (request.Fields is { Count: > 0 })
            body["fields"] = request.Fields.Union(["EventStart", "EventType"], StringComparer.OrdinalIgnoreCase).ToList();
        string json = JsonSerializer.Serialize(body);
        string what = $"the export of {request}";
        using var response = SendApi(HttpMethod.Post, new Uri(session.ApiBaseUri, "segments/v1/exports"),
            () => new StringContent(json, Encoding.UTF8, "application/json"), what, observer, cancellationToken, retryRateLimits: retryRateLimits);
        using var doc = JsonDocument.Parse(response.Content.ReadAsStream(cancellationToken));
        return Property(doc.RootElement, "operationId")?.GetString()
            ?? throw new FullStoryApiException($"FullStory accepted {what} but returned no operationId.");
    }

    /// <summary>GET /operations/v1/{id}.</summary>
    public ExportOperation GetOperation(string operationId, OperationObserver? observer = null, CancellationToken cancellationToken = default,
        bool retryRateLimits = true)
    {
        observer ??= OperationObserver.None;
        using var response = SendApi(HttpMethod.Get, new Uri(session.ApiBaseUri, "operations/v1/" + Uri.EscapeDataString(operationId)), null,
            $"export operation {operationId}", observer, cancellationToken, retryRateLimits: retryRateLimits);
        using var doc = JsonDocument.Parse(response.Content.ReadAsStream(cancellationToken));
        var root = doc.RootElement;
        string state = Property(root, "state")?.GetString() ?? "PENDING";
        int pct = Property(root, "estimatePctComplete") is { ValueKind: JsonValueKind.Number } p ? (int)Math.Clamp(p.GetDouble(), 0, 100) : 0;
        string? exportId = Property(root, "results") is { } results ? Property(results, "searchExportId")?.GetString() : null;
        string? error = Property(root, "errorDetails")?.ToString();
        return new ExportOperation(operationId, state, pct, exportId, error);
    }

    /// <summary>Polls until the export is ready; returns the search export id. FAILED throws <see cref="FullStoryExportFailedException"/>.</summary>
    public string WaitForExport(string operationId, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        var backoff = new PollBackoff(session.Retry.PollInterval);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var op = GetOperation(operationId, observer, cancellationToken);
            switch (op.State.ToUpperInvariant())
            {
                case "COMPLETED":
                    observer.ExportProgress?.Invoke(100, "ready");
                    return op.SearchExportId ?? throw new FullStoryApiException($"FullStory completed export operation {operationId} without a searchExportId.");
                case "FAILED":
                    throw new FullStoryExportFailedException(operationId, session.Redact(op.ErrorDetails ?? "no details given"));
                default:
                    if (waited.Elapsed >= session.Retry.ExportTimeout)
                        throw new FullStoryExportTimedOutException(operationId, op.State, session.Retry.ExportTimeout);
                    var wait = backoff.Next();
                    observer.ExportProgress?.Invoke(op.PercentComplete, op.State);
                    observer.Log($"Export {operationId} is {op.State} ({op.PercentComplete}% done); asking again in {wait.TotalSeconds:0.##} s.");
                    cancellationToken.WaitHandle.WaitOne(wait);
                    cancellationToken.ThrowIfCancellationRequested();
                    break;
            }
        }
    }

    /// <summary>GET /search/v1/exports/{id}/results: the signed download location, valid for a few minutes.</summary>
    public (Uri Location, DateTimeOffset? Expires) GetExportLocation(string searchExportId, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        using var response = SendApi(HttpMethod.Get, new Uri(session.ApiBaseUri, $"search/v1/exports/{Uri.EscapeDataString(searchExportId)}/results"), null,
            $"the location of export {searchExportId}", observer, cancellationToken);
        using var doc = JsonDocument.Parse(response.Content.ReadAsStream(cancellationToken));
        string location = Property(doc.RootElement, "location")?.GetString()
            ?? throw new FullStoryApiException($"FullStory returned no download location for export {searchExportId}.");
        DateTimeOffset? expires = Property(doc.RootElement, "expires") is { ValueKind: JsonValueKind.String } e && e.TryGetDateTimeOffset(out var x) ? x : null;
        if (!Uri.TryCreate(location, UriKind.Absolute, out var uri) || !(uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback)))
            throw new FullStoryApiException($"FullStory returned a download location that is not an https URL for export {searchExportId}.");
        return (uri, expires);
    }

    /// <summary>
    /// Downloads an export file from its signed location: a plain GET with NO Authorization header (the signature is in
    /// the URL; sending the key there would hand it to the storage provider). An expired location is fetched anew once.
    /// </summary>
    public EventStreamReader OpenExportDownload(string searchExportId, string sourceTag, string? archiveBase = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        string what = $"the download of export {searchExportId}";
        for (int attempt = 1; ; attempt++)
        {
            var (location, _) = GetExportLocation(searchExportId, observer, cancellationToken);
            observer.Log($"GET {location.GetLeftPart(UriPartial.Path)} (signed download location, no API key)");
            var response = Send(downloads, () => new HttpRequestMessage(HttpMethod.Get, location), what, observer, cancellationToken);
            if (response.IsSuccessStatusCode)
                return OpenBody(response, $"export {searchExportId}", sourceTag, archiveBase, cancellationToken);
            using (response)
            {
                // Cloud storage answers 400/403 to an expired signature; a fresh location is one call away.
                if (attempt == 1 && response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized)
                {
                    observer.OnRetry($"{what}: HTTP {(int)response.StatusCode} from the storage location (expired?); asking FullStory for a fresh one.");
                    continue;
                }
                throw Failure(response, what);
            }
        }
    }

    /// <summary>Hides the key in text that came from FullStory.</summary>
    internal string Redact(string text) => session.Redact(text);

    /// <summary>
    /// Starts exporting <paramref name="windows"/> (a lazy sequence, oldest first), several at once, and hands them over in
    /// order as they become ready (see <see cref="SegmentExportScheduler"/>). Dispose it to abandon what is still in flight.
    /// </summary>
    public SegmentExportScheduler ScheduleSegmentExports(IEnumerable<SegmentExportRequest> windows, SegmentExportSchedule? schedule = null,
        OperationObserver? observer = null, CancellationToken cancellationToken = default) =>
        new(this, session.Retry, windows, schedule ?? new SegmentExportSchedule(), observer ?? OperationObserver.None, cancellationToken);

    /// <summary>
    /// The events of [range.Start, range.End) in time order, exported in windows of at most <paramref name="maxWindow"/>
    /// (default <see cref="SegmentExportPlan.DefaultMaxWindow"/>) with several exports in flight. Only the window being read is
    /// downloaded, as a stream: later windows wait as prepared exports, never in memory. Each event's Source is its window's key.
    /// </summary>
    public IEnumerable<FullStoryEvent> ReadSegmentExportWindows(SegmentExportRequest range, TimeSpan? maxWindow = null, SegmentExportSchedule? schedule = null,
        string? archiveDirectory = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        using var scheduler = ScheduleSegmentExports(SegmentExportPlan.Cover(range, maxWindow ?? SegmentExportPlan.DefaultMaxWindow), schedule, observer, cancellationToken);
        foreach (var ready in scheduler.InOrder())
            foreach (var e in ReadExportResults(ready.SearchExportId, ready.Request, archiveDirectory, observer, cancellationToken))
                yield return e;
    }

    /// <summary>
    /// The whole Segment Export flow: start, wait (progress through the observer), download and stream the events,
    /// re-downloading a body that breaks off without delivering any event twice.
    /// </summary>
    public IEnumerable<FullStoryEvent> ReadSegmentExport(SegmentExportRequest request, string? archiveDirectory = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        string operationId = StartSegmentExport(request, observer, cancellationToken);
        observer.Log($"Started {request} as operation {operationId}.");
        string exportId = WaitForExport(operationId, observer, cancellationToken);
        return ReadExportResults(exportId, request, archiveDirectory, observer, cancellationToken);
    }

    /// <summary>Streams the events of a completed export (see <see cref="ReadSegmentExport"/>).</summary>
    public IEnumerable<FullStoryEvent> ReadExportResults(string searchExportId, SegmentExportRequest request, string? archiveDirectory = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        var o = observer;
        string? archiveBase = request.ArchiveBase(archiveDirectory);
        return new ResumableEventStream(token => OpenExportDownload(searchExportId, request.BatchKey, archiveBase, o, token),
            ResiliencePolicies.ForBodies(session.Retry, observer, $"export {searchExportId}"), $"export {searchExportId}", cancellationToken);
    }
}
