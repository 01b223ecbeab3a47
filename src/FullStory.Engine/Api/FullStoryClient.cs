using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Polly;

namespace FullStory.Engine.Api;

/// <summary>
/// HTTP access to FullStory's export APIs for one session. Requests to the API carry the key and are retried
/// through Polly; downloads from signed locations never carry it. Synchronous by design: cmdlets are.
/// </summary>
public sealed partial class FullStoryClient : IDisposable
{
    private readonly FullStorySession session;
    private readonly HttpClient api;        // carries the key; only ever sent to the session's API hosts
    private readonly HttpClient downloads;  // never carries the key: signed download locations

    internal FullStoryClient(FullStorySession session)
    {
        this.session = session;
        api = new HttpClient(CreateHandler(allowRedirects: false)) { Timeout = Timeout.InfiniteTimeSpan };
        downloads = new HttpClient(CreateHandler(allowRedirects: true)) { Timeout = Timeout.InfiniteTimeSpan };
        var agent = new ProductInfoHeaderValue("FullStoryPS", typeof(FullStoryClient).Assembly.GetName().Version?.ToString(3) ?? "0");
        api.DefaultRequestHeaders.UserAgent.Add(agent);
        downloads.DefaultRequestHeaders.UserAgent.Add(agent);
    }

    private static SocketsHttpHandler CreateHandler(bool allowRedirects) => new()
    {
        // Bodies are decompressed by BodyDecoder after sniffing the gzip magic bytes, whatever the headers say.
        AutomaticDecompression = DecompressionMethods.None,
        // The key never follows a redirect: API redirects are not followed at all.
        AllowAutoRedirect = allowRedirects,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>A request to the FullStory API with the key in the Authorization header, refusing any other host.</summary>
    internal HttpRequestMessage CreateApiRequest(HttpMethod method, Uri uri)
    {
        if (!session.IsApiHost(uri))
            throw new InvalidOperationException($"Refusing to send the API key to {uri.GetLeftPart(UriPartial.Authority)}: it is not this session's FullStory API host.");
        var request = new HttpRequestMessage(method, uri);
        // FullStory wants "Basic <key>" with the key verbatim, not base64 of user:pass.
        request.Headers.TryAddWithoutValidation("Authorization", "Basic " + session.Credential.AuthorizationParameter);
        return request;
    }

    /// <summary>Sends an API request with retries; returns a successful response (headers read, body not yet) or throws FullStoryApiException.</summary>
    /// <param name="retryRateLimits">false: a 429 throws <see cref="FullStoryRateLimitedException"/> at once instead of being retried.</param>
    private HttpResponseMessage SendApi(HttpMethod method, Uri uri, Func<HttpContent?>? content, string what, OperationObserver observer,
        CancellationToken cancellationToken, Func<HttpResponseMessage, FullStoryApiException?>? explain = null, bool retryRateLimits = true)
    {
        observer.Log($"{method} {uri.GetLeftPart(UriPartial.Path)}{(uri.Query.Length > 0 ? uri.Query : "")}");
        var response = Send(api, () =>
        {
            var request = CreateApiRequest(method, uri);
            request.Content = content?.Invoke();
            return request;
        }, what, observer, cancellationToken, retryRateLimits);
        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            if (!retryRateLimits && (int)response.StatusCode == 429)
            {
                var (code, message) = ReadErrorBody(response);
                throw new FullStoryRateLimitedException(
                    $"FullStory answered 429 Too Many Requests for {what}.{(message is null ? "" : " FullStory said: " + session.Redact(message))}",
                    ResiliencePolicies.RetryAfter(response), code);
            }
            throw explain?.Invoke(response) ?? Failure(response, what);
        }
    }

    private HttpResponseMessage Send(HttpClient client, Func<HttpRequestMessage> createRequest, string what, OperationObserver observer, CancellationToken cancellationToken,
        bool retryRateLimits = true)
    {
        var pipeline = ResiliencePolicies.ForRequests(session.Retry, observer, what, retryRateLimits);
        try
        {
            return pipeline.Execute(token =>
            {
                using var request = createRequest();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                timeout.CancelAfter(session.Retry.RequestTimeout);
                try
                {
                    return client.Send(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                }
                catch (OperationCanceledException) when (!token.IsCancellationRequested)
                {
                    throw new TimeoutException($"no answer within {session.Retry.RequestTimeout.TotalSeconds:0} s");
                }
            }, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            throw new FullStoryApiException(
                $"Cannot reach FullStory for {what} at {session.ApiBaseUri.GetLeftPart(UriPartial.Authority)} after {session.Retry.MaxAttempts} attempts: {session.Redact(ResiliencePolicies.Describe(ex))}. Check the network or proxy, and -BaseUri.",
                inner: null);
        }
    }

    /// <summary>Turns a failed response into an error that says what to do. Reads at most 64 KB of the body.</summary>
    internal FullStoryApiException Failure(HttpResponseMessage response, string what, string? notFoundHint = null)
    {
        var (code, message) = ReadErrorBody(response);
        int status = (int)response.StatusCode;
        string detail = message is null ? "" : $" FullStory said: {session.Redact(message)}";
        string text = status switch
        {
            401 or 403 => $"FullStory refused the request for {what} (HTTP {status}): check the API key and that the account has the Data Export add-on.{detail}",
            404 when notFoundHint is not null => $"{notFoundHint} (HTTP 404).{detail}",
            429 => $"FullStory kept answering 429 Too Many Requests for {what} after {session.Retry.MaxAttempts} attempts (the legacy export allows 2 downloads a minute). Try again later.{detail}",
            >= 500 => $"FullStory failed {what} with HTTP {status} after {session.Retry.MaxAttempts} attempts.{detail}",
            _ => $"FullStory answered HTTP {status} {response.ReasonPhrase} for {what}.{detail}",
        };
        return new FullStoryApiException(text, response.StatusCode, code);
    }

    private static (string? Code, string? Message) ReadErrorBody(HttpResponseMessage response)
    {
        try
        {
            using var stream = response.Content.ReadAsStream();
            var buffer = new byte[64 * 1024];
            int total = 0, n;
            while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0) total += n;
            if (total == 0) return (null, null);
            try
            {
                using var doc = JsonDocument.Parse(buffer.AsMemory(0, total));
                string? code = Property(doc.RootElement, "code")?.ToString();
                string? message = Property(doc.RootElement, "message")?.ToString() ?? Property(doc.RootElement, "error")?.ToString();
                return (code, message);
            }
            catch (JsonException)
            {
                string text = System.Text.Encoding.UTF8.GetString(buffer, 0, Math.Min(total, 300)).Trim();
                return (null, text.Length == 0 ? null : text);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return (null, null);
        }
    }

    /// <summary>A property by name, case-insensitively: FullStory's clients' fixtures have both Id and ID.</summary>
    internal static JsonElement? Property(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object) return null;
        foreach (var p in element.EnumerateObject())
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p.Value;
        return null;
    }

    public void Dispose()
    {
        api.Dispose();
        downloads.Dispose();
    }
}
