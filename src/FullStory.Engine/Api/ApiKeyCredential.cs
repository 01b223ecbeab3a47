namespace FullStory.Engine.Api;

/// <summary>
/// A FullStory API key. The value is held privately and reaches only the Authorization header of requests
/// to the FullStory API host; everything that can be printed or serialised shows the masked form.
/// </summary>
public sealed class ApiKeyCredential
{
    private readonly string value;

    public ApiKeyCredential(string apiKey)
    {
        if (string.IsNullOrWhiteSpace(apiKey))
            throw new ArgumentException("The FullStory API key is empty. Pass -ApiKey, -Credential, or set the FULLSTORY_API_KEY environment variable.", nameof(apiKey));
        apiKey = apiKey.Trim();
        foreach (char c in apiKey)
            if (char.IsWhiteSpace(c) || char.IsControl(c))
                throw new ArgumentException("The FullStory API key contains spaces or control characters; copy it again from FullStory's Settings > API Keys.", nameof(apiKey));
        value = apiKey;
        Masked = Mask(apiKey);
        RegionFromPrefix = apiKey.StartsWith("eu1.", StringComparison.OrdinalIgnoreCase) ? FullStoryRegion.Eu1
            : apiKey.StartsWith("na1.", StringComparison.OrdinalIgnoreCase) ? FullStoryRegion.Na1
            : null;
    }

    /// <summary>The key with all but its region prefix and last four characters hidden, e.g. na1.****3f2a.</summary>
    public string Masked { get; }

    /// <summary>The data centre the key names, or null when it has no recognised prefix.</summary>
    public FullStoryRegion? RegionFromPrefix { get; }

    /// <summary>The header value FullStory expects: "Basic" and the key verbatim (not base64 of user:pass).</summary>
    internal string AuthorizationParameter => value;

    /// <summary>Replaces every occurrence of the key in <paramref name="text"/> with its masked form.</summary>
    public string Redact(string? text) =>
        string.IsNullOrEmpty(text) ? text ?? "" : text.Replace(value, Masked, StringComparison.Ordinal);

    public override string ToString() => Masked;

    private static string Mask(string key)
    {
        int dot = key.IndexOf('.');
        string prefix = dot is > 0 and <= 8 ? key[..(dot + 1)] : "";
        string rest = key[prefix.Length..];
        return rest.Length >= 12 ? $"{prefix}****{rest[^4..]}" : $"{prefix}****";
    }
}
