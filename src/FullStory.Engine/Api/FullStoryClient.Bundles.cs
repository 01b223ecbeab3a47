using System.Globalization;
using System.Text.Json;
using FullStory.Engine.Events;

namespace FullStory.Engine.Api;

public sealed partial class FullStoryClient
{
    /// <summary>
    /// Lists bundles whose end is after <paramref name="start"/> and whose start is before <paramref name="end"/>, oldest first.
    /// FullStory returns 20 a call with no page token: the next page starts at the last bundle's Stop.
    /// </summary>
    public IEnumerable<FullStoryBundle> ListBundles(DateTimeOffset start, DateTimeOffset? end = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        var seen = new HashSet<long>();
        long cursor = start.ToUnixTimeSeconds();
        while (true)
        {
            var page = ListPage(cursor, observer, cancellationToken);
            if (page.Count == 0) yield break;
            foreach (var bundle in page)
            {
                if (end is not null && bundle.Start.Value >= end.Value) yield break;
                if (seen.Add(bundle.Id)) yield return bundle;
            }
            long next = page[^1].Stop.Value.ToUnixTimeSeconds();
            if (next <= cursor) yield break; // no progress: never loop forever on an odd answer
            cursor = next;
        }
    }

    private List<FullStoryBundle> ListPage(long startSeconds, OperationObserver observer, CancellationToken cancellationToken)
    {
        var uri = new Uri(session.ExportBaseUri, "api/v1/export/list?start=" + startSeconds.ToString(CultureInfo.InvariantCulture));
        string what = "the bundle list";
        using var response = SendApi(HttpMethod.Get, uri, null, what, observer, cancellationToken,
            r => (int)r.StatusCode == 404
                // FullStory answers 404 here for a key it does not accept or an account without the add-on (hauser issue 38).
                ? new FullStoryApiException($"FullStory answered 404 to {what}, which it does for a key it does not accept: check the API key and that the account has the Data Export add-on.", r.StatusCode)
                : null);
        using var stream = response.Content.ReadAsStream(cancellationToken);
        using var doc = JsonDocument.Parse(stream);
        var exports = Property(doc.RootElement, "exports");
        var list = new List<FullStoryBundle>();
        if (exports is not { ValueKind: JsonValueKind.Array } array) return list;
        foreach (var item in array.EnumerateArray())
        {
            long id = Property(item, "id")?.GetInt64() ?? throw new FullStoryApiException("FullStory's bundle list has an entry without an Id.");
            long s = Property(item, "start")?.GetInt64() ?? 0;
            long e = Property(item, "stop")?.GetInt64() ?? s;
            list.Add(new FullStoryBundle(id, DateTimeOffset.FromUnixTimeSeconds(s), DateTimeOffset.FromUnixTimeSeconds(e)));
        }
        list.Sort((a, b) => a.Start.CompareTo(b.Start));
        return list;
    }

    /// <summary>
    /// Opens one download of a bundle's events (one attempt: the caller retries, e.g. inside a database transaction).
    /// With <paramref name="archiveDirectory"/>, the raw body is also kept on disk exactly as received.
    /// </summary>
    public EventStreamReader OpenBundle(long bundleId, string? archiveDirectory = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        var uri = new Uri(session.ExportBaseUri, "api/v1/export/get?id=" + bundleId.ToString(CultureInfo.InvariantCulture));
        string what = $"bundle {bundleId}";
        var response = SendApi(HttpMethod.Get, uri, null, what, observer, cancellationToken,
            r => (int)r.StatusCode == 404 ? Failure(r, what, $"FullStory has no bundle {bundleId}: list the available ones with Get-FullStoryBundle") : null);
        return OpenBody(response, what, "bundle:" + bundleId, archiveDirectory is null ? null : Path.Combine(archiveDirectory, $"bundle-{bundleId}"), cancellationToken);
    }

    /// <summary>
    /// Streams a bundle's events; a body that breaks off or comes corrupt is downloaded again and the events already
    /// delivered are skipped, so no event is delivered twice and none is lost.
    /// </summary>
    public IEnumerable<FullStoryEvent> ReadBundle(long bundleId, string? archiveDirectory = null, OperationObserver? observer = null, CancellationToken cancellationToken = default)
    {
        observer ??= OperationObserver.None;
        var o = observer;
        return new ResumableEventStream(token => OpenBundle(bundleId, archiveDirectory, o, token),
            ResiliencePolicies.ForBodies(session.Retry, observer, $"bundle {bundleId}"), $"bundle {bundleId}", cancellationToken);
    }

    private static EventStreamReader OpenBody(HttpResponseMessage response, string what, string sourceTag, string? archiveBase, CancellationToken cancellationToken)
    {
        Stream body;
        try
        {
            body = new ResponseStream(response, response.Content.ReadAsStream(cancellationToken));
        }
        catch
        {
            response.Dispose();
            throw;
        }
        ArchivingStream? archive = null;
        if (archiveBase is not null) body = archive = new ArchivingStream(body, archiveBase);
        return new EventStreamReader(body, what, sourceTag) { CancellationToken = cancellationToken, EndVerified = archive is null ? null : archive.Commit };
    }

    /// <summary>Owns the response so disposing the reader releases the connection.</summary>
    private sealed class ResponseStream(HttpResponseMessage response, Stream inner) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        protected override void Dispose(bool disposing)
        {
            if (disposing) { inner.Dispose(); response.Dispose(); }
            base.Dispose(disposing);
        }
    }
}
