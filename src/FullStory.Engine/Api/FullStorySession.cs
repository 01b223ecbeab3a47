namespace FullStory.Engine.Api;

/// <summary>
/// A connection to FullStory: the key, the hosts to call and the retry settings, shared by every cmdlet.
/// Public members are safe to print and serialise (Export-Clixml): none exposes the key.
/// </summary>
public sealed class FullStorySession : IDisposable
{
    public static readonly Uri NorthAmericaApi = new("https://api.fullstory.com/");
    public static readonly Uri EuropeApi = new("https://api.eu1.fullstory.com/");
    // FullStory documents no EU variant of the legacy export host.
    public static readonly Uri LegacyExportApi = new("https://export.fullstory.com/");

    private readonly Lazy<FullStoryClient> client;

    public FullStorySession(ApiKeyCredential credential, FullStoryRegion? region = null, Uri? baseUri = null, RetrySettings? retry = null)
    {
        Credential = credential ?? throw new ArgumentNullException(nameof(credential));
        // The key names its data centre (na1. or eu1.). A prefix of that shape that is no FullStory region is a wrong or
        // damaged key: refuse it rather than send it to na1. -Region (or a -BaseUri, which decides the host) overrides.
        if (region is null && baseUri is null && credential.HasUnknownRegionPrefix)
            throw new ArgumentException($"The API key starts with '{credential.RegionPrefix}.', which is not a FullStory data centre: FullStory's are na1 and eu1. " +
                                        "Copy the key again from FullStory (Settings > API Keys), or pass -Region to use this key anyway.");
        Region = region ?? credential.RegionFromPrefix ?? FullStoryRegion.Na1;
        IsRegionAssumed = region is null && credential.RegionFromPrefix is null;
        if (baseUri is not null)
        {
            ValidateBaseUri(baseUri);
            ApiBaseUri = ExportBaseUri = EnsureTrailingSlash(baseUri);
            IsCustomBaseUri = true;
        }
        else
        {
            ApiBaseUri = Region == FullStoryRegion.Eu1 ? EuropeApi : NorthAmericaApi;
            ExportBaseUri = LegacyExportApi;
        }
        Retry = retry ?? new RetrySettings();
        ConnectedAt = DateTimeOffset.UtcNow;
        client = new Lazy<FullStoryClient>(() => new FullStoryClient(this));
    }

    public FullStoryRegion Region { get; }
    /// <summary>True when neither -Region nor the key's prefix chose the region, and Na1 was assumed.</summary>
    public bool IsRegionAssumed { get; }
    /// <summary>Base of the current APIs (Segment Export, operations).</summary>
    public Uri ApiBaseUri { get; }
    /// <summary>Base of the legacy bundle export API.</summary>
    public Uri ExportBaseUri { get; }
    public bool IsCustomBaseUri { get; }
    public string MaskedApiKey => Credential.Masked;
    public DateTimeOffset ConnectedAt { get; }
    public RetrySettings Retry { get; }

    internal ApiKeyCredential Credential { get; }

    /// <summary>The HTTP client for this session (created on first use). A method, not a property, so that
    /// formatting and Export-Clixml never touch it.</summary>
    public FullStoryClient GetClient() => client.Value;

    /// <summary>Hides the key in text that is about to be shown (messages from servers, exceptions).</summary>
    public string Redact(string? text) => Credential.Redact(text);

    /// <summary>True for the hosts that may receive the key: the API hosts of this session.</summary>
    public bool IsApiHost(Uri uri) =>
        SameOrigin(uri, ApiBaseUri) || SameOrigin(uri, ExportBaseUri);

    public override string ToString() => $"FullStory {Region} at {ApiBaseUri} with key {MaskedApiKey}";

    public void Dispose()
    {
        if (client.IsValueCreated) client.Value.Dispose();
    }

    /// <summary>Plain http only to this machine (the emulator, a local proxy); anything else must be https.</summary>
    public static void ValidateBaseUri(Uri uri)
    {
        if (!uri.IsAbsoluteUri)
            throw new ArgumentException($"-BaseUri '{uri}' is not an absolute URI; give one like https://api.fullstory.com/.");
        if (uri.Scheme == Uri.UriSchemeHttps) return;
        if (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback) return;
        throw new ArgumentException(uri.Scheme == Uri.UriSchemeHttp
            ? $"-BaseUri '{uri.GetLeftPart(UriPartial.Authority)}' uses plain http to a host that is not this machine; the API key would cross the network unencrypted. Use https, or http only for 127.0.0.1, ::1 or localhost."
            : $"-BaseUri '{uri.GetLeftPart(UriPartial.Authority)}' must use https.");
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    private static Uri EnsureTrailingSlash(Uri uri) =>
        uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
}

/// <summary>How hard to try before giving up: bounded attempts with exponential backoff and jitter.</summary>
public sealed class RetrySettings
{
    public int MaxAttempts { get; set; } = 6;
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>The longest Retry-After the client will honour before giving up on the request.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromMinutes(5);
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(100);
    /// <summary>How often to ask about a pending segment export (hauser uses 5 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// How long one segment export may stay unfinished (PENDING or RUNNING) before it is given up as failed: a scheduled run
    /// must end even when FullStory never finishes an export. FullStory's exports take seconds to minutes.
    /// </summary>
    public TimeSpan ExportTimeout { get; set; } = TimeSpan.FromHours(2);

    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{MaxAttempts} attempts, backoff {BaseDelay.TotalSeconds}s..{MaxDelay.TotalSeconds}s; exports polled up to every {PollInterval.TotalSeconds}s, given up after {ExportTimeout:c}");
}
