using System.Net;
using System.Net.Http.Headers;

namespace FullStory.Engine.Api;

/// <summary>HTTP access to FullStory's export APIs for one session.</summary>
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

    public void Dispose()
    {
        api.Dispose();
        downloads.Dispose();
    }
}
