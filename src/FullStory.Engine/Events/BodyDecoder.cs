namespace FullStory.Engine.Events;

/// <summary>
/// Turns a raw body (HTTP response or file) into a stream of JSON text. FullStory's docs and clients disagree on
/// whether bundles are gzipped and how the server says so, so gzip is detected by its magic bytes (1F 8B), never by headers.
/// gzip is read to its verified end (<see cref="CheckedGzipStream"/>): a cut-off .gz is an error, not a shorter body.
/// </summary>
public static class BodyDecoder
{
    public static Stream Decode(Stream raw)
    {
        var head = new byte[2];
        int n = 0;
        while (n < 2)
        {
            int r = raw.Read(head, n, 2 - n);
            if (r == 0) break;
            n += r;
        }
        var whole = new PrefixedStream(head, n, raw);
        return IsGzip(head.AsSpan(0, n)) ? new CheckedGzipStream(whole) : whole;
    }

    public static bool IsGzip(ReadOnlySpan<byte> head) => head.Length >= 2 && head[0] == 0x1F && head[1] == 0x8B;
}
