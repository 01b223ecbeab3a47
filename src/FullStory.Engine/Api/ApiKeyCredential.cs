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
        RegionPrefix = RegionShapedPrefix(apiKey);
        RegionFromPrefix = RegionPrefix?.ToLowerInvariant() switch
        {
            "na1" => FullStoryRegion.Na1,
            "eu1" => FullStoryRegion.Eu1,
            _ => null,
        };
    }

    /// <summary>
    /// The key's data-centre prefix as written (e.g. "na1" of "na1.AbC…"), when it has one: two or three letters and a
    /// digit or two before the first dot. Null for keys without such a prefix.
    /// </summary>
    public string? RegionPrefix { get; }

    /// <summary>True when the key names a data centre FullStory does not have (e.g. "zz9." or "us1."): FullStory's are na1 and eu1.</summary>
    public bool HasUnknownRegionPrefix => RegionPrefix is not null && RegionFromPrefix is null;

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

    private static string? RegionShapedPrefix(string key)
    {
        int dot = key.IndexOf('.');
        if (dot is < 3 or > 5) return null;
        var prefix = key.AsSpan(0, dot);
        int letters = 0;
        while (letters < prefix.Length && char.IsAsciiLetter(prefix[letters])) letters++;
        int digits = prefix.Length - letters;
        if (letters is < 2 or > 3 || digits is < 1 or > 2) return null;
        foreach (char c in prefix[letters..]) if (!char.IsAsciiDigit(c)) return null;
        return prefix.ToString();
    }

    private static string Mask(string key)
    {
        int dot = key.IndexOf('.');
        string prefix = dot is > 0 and <= 8 ? key[..(dot + 1)] : "";
        string rest = key[prefix.Length..];
        return rest.Length >= 12 ? $"{prefix}****{rest[^4..]}" : $"{prefix}****";
    }
}
