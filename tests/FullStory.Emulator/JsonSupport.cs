using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace FullStory.Emulator;

/// <summary>
/// Escapes only what JSON requires (quote, backslash, control characters) and writes everything else,
/// accents, CJK and emoji included, as raw UTF-8, like the real export does.
/// </summary>
internal sealed class MinimalJsonEncoder : JavaScriptEncoder
{
    public static readonly MinimalJsonEncoder Instance = new();

    private static readonly SearchValues<byte> s_bytes = SearchValues.Create(CreateSet<byte>(b => b));
    private static readonly SearchValues<char> s_chars = SearchValues.Create(CreateSet<char>(b => (char)b));

    private static T[] CreateSet<T>(Func<byte, T> f)
    {
        var list = new List<T>();
        for (int i = 0; i < 0x20; i++) list.Add(f((byte)i));
        list.Add(f((byte)'"'));
        list.Add(f((byte)'\\'));
        return list.ToArray();
    }

    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
        => new ReadOnlySpan<char>(text, textLength).IndexOfAny(s_chars);

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text) => utf8Text.IndexOfAny(s_bytes);

    public override bool WillEncode(int unicodeScalar) => unicodeScalar < 0x20 || unicodeScalar == '"' || unicodeScalar == '\\';

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        string s = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\b' => "\\b",
            '\f' => "\\f",
            _ when unicodeScalar < 0x20 => "\\u" + unicodeScalar.ToString("x4"),
            _ => char.ConvertFromUtf32(unicodeScalar),
        };
        if (s.Length > bufferLength) { numberOfCharactersWritten = 0; return false; }
        for (int i = 0; i < s.Length; i++) buffer[i] = s[i];
        numberOfCharactersWritten = s.Length;
        return true;
    }

    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = Instance, SkipValidation = true, Indented = false };
    public static readonly JsonSerializerOptions SerializerOptions = new() { Encoder = Instance };
}

/// <summary>A property name, pre-encoded.</summary>
internal sealed class Prop
{
    public Prop(string name) { Name = name; Enc = JsonEncodedText.Encode(name, MinimalJsonEncoder.Instance); }
    public string Name { get; }
    public JsonEncodedText Enc { get; }
    public override string ToString() => Name;
}

internal static class Txt
{
    public static JsonEncodedText E(string s) => JsonEncodedText.Encode(s, MinimalJsonEncoder.Instance);
    public static JsonEncodedText[] E(params string[] s) => s.Select(E).ToArray();
}

/// <summary>Deterministic hashing (SplitMix64) and a tiny PRNG on top of it.</summary>
internal static class Mix
{
    public static ulong M(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static ulong H(ulong a, ulong b = 0, ulong c = 0, ulong d = 0)
        => M(M(M(M(a) ^ b) ^ (c * 0x9E3779B97F4A7C15UL)) ^ (d * 0xC2B2AE3D27D4EB4FUL));
}

internal struct Rng
{
    private ulong _s;
    public Rng(ulong seed) { _s = seed; }
    public ulong Next() { _s += 0x9E3779B97F4A7C15UL; return Mix.M(_s); }
    public int Int(int n) => (int)(Next() % (ulong)n);
    public long Long(long n) => (long)(Next() % (ulong)n);
    public int Range(int lo, int hiExclusive) => lo + Int(hiExclusive - lo);
    public double Double() => (Next() >> 11) * (1.0 / (1UL << 53));
    public bool Chance(double p) => Double() < p;
    public T Pick<T>(T[] a) => a[Int(a.Length)];
}

internal static class Timestamps
{
    /// <summary>Writes yyyy-MM-ddTHH:mm:ss.fffZ (24 bytes).</summary>
    public static void Format(long unixMs, Span<byte> d)
    {
        var dt = DateTime.UnixEpoch.AddMilliseconds(unixMs);
        W4(d, 0, dt.Year); d[4] = (byte)'-'; W2(d, 5, dt.Month); d[7] = (byte)'-'; W2(d, 8, dt.Day);
        d[10] = (byte)'T'; W2(d, 11, dt.Hour); d[13] = (byte)':'; W2(d, 14, dt.Minute); d[16] = (byte)':'; W2(d, 17, dt.Second);
        d[19] = (byte)'.'; int ms = dt.Millisecond; d[20] = (byte)('0' + ms / 100); d[21] = (byte)('0' + ms / 10 % 10); d[22] = (byte)('0' + ms % 10);
        d[23] = (byte)'Z';
    }

    public static string ToIso(long unixMs)
    {
        Span<byte> b = stackalloc byte[24];
        Format(unixMs, b);
        return System.Text.Encoding.ASCII.GetString(b);
    }

    private static void W2(Span<byte> d, int o, int v) { d[o] = (byte)('0' + v / 10); d[o + 1] = (byte)('0' + v % 10); }
    private static void W4(Span<byte> d, int o, int v) { W2(d, o, v / 100); W2(d, o + 2, v % 100); }

    public static string Rfc3339(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
