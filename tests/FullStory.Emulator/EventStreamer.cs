using System.Buffers;
using System.Text.Json;

namespace FullStory.Emulator;

/// <summary>Streams events as a JSON array or NDJSON, chunk by chunk: memory use does not depend on the body size.</summary>
internal static class EventStreamer
{
    private const int ChunkBytes = 128 * 1024;

    public static void WriteOne(Emitter e, EventGenerator gen, in EventItem item, FieldNaming naming)
    {
        var w = e.W;
        w.WriteStartObject();
        if (item.IsElement)
        {
            foreach (var p in item.Element.EnumerateObject())
            {
                string name = naming == FieldNaming.SegmentExport ? SegmentName(p.Name) : p.Name;
                if (e.Filter is not null && !e.Filter(name)) continue;
                w.WritePropertyName(name);
                p.Value.WriteTo(w);
            }
        }
        else
        {
            gen.Write(e, item.Shape, item.Index, naming);
        }
        w.WriteEndObject();
    }

    /// <summary>Legacy to segment export names (sample files are written with legacy names).</summary>
    public static string SegmentName(string legacy) => legacy switch
    {
        "PageAgent" => "PageUserAgent",
        _ => legacy,
    };

    /// <summary>
    /// Writes the events to <paramref name="output"/>. With <paramref name="malformedAt"/> >= 0 the event at that index is
    /// replaced by a cut object with a stray '}' (<c>{"IndvId":1,"UserId":}</c>), so the body is syntactically invalid.
    /// Returns the number of events written.
    /// </summary>
    /// With <paramref name="stopAfter"/> >= 0 only that many events are written (the JSON still properly closed).
    public static async Task<long> StreamAsync(Stream output, IEnumerable<EventItem> items, EventGenerator gen, FieldNaming naming,
        bool ndjson, Func<string, bool>? filter, long malformedAt, CancellationToken ct, long stopAfter = -1)
    {
        var buffer = new ArrayBufferWriter<byte>(ChunkBytes + 16 * 1024);
        var e = new Emitter { W = new Utf8JsonWriter(buffer, MinimalJsonEncoder.WriterOptions), Filter = filter };
        if (!ndjson) buffer.Write("["u8);
        long n = 0;
        bool injected = false;
        foreach (var item in items)
        {
            if (n == stopAfter) break;
            if (!ndjson && n > 0) buffer.Write(",\n"u8);
            if (n == malformedAt) { WriteMalformed(buffer, n); injected = true; }
            else
            {
                e.W.Reset(buffer);
                WriteOne(e, gen, item, naming);
                e.W.Flush();
            }
            if (ndjson) buffer.Write("\n"u8);
            n++;
            if (buffer.WrittenCount >= ChunkBytes)
            {
                await output.WriteAsync(buffer.WrittenMemory, ct);
                buffer.ResetWrittenCount();
            }
        }
        if (malformedAt >= 0 && !injected)
        {
            if (!ndjson && n > 0) buffer.Write(",\n"u8);
            WriteMalformed(buffer, n);
            if (ndjson) buffer.Write("\n"u8);
        }
        if (!ndjson) buffer.Write("]\n"u8);
        await output.WriteAsync(buffer.WrittenMemory, ct);
        return injected ? n - 1 : n;
    }

    private static void WriteMalformed(ArrayBufferWriter<byte> buffer, long n)
    {
        buffer.Write("{\"IndvId\":"u8);
        Span<byte> digits = stackalloc byte[24];
        System.Buffers.Text.Utf8Formatter.TryFormat(4_503_599_627_370_496L + n, digits, out int len);
        buffer.Write(digits[..len]);
        buffer.Write(",\"UserId\":}"u8);
    }
}

/// <summary>
/// For the UnfinishedGzip fault: passes writes through until <see cref="Cut"/>, then drops them, so a GZipStream flushed
/// before the cut and disposed after it leaves its output at a deflate block boundary, without final block and trailer.
/// </summary>
internal sealed class CuttableStream(Stream inner) : Stream
{
    private bool cut;

    public void Cut() => cut = true;

    public override void Write(byte[] buffer, int offset, int count) { if (!cut) inner.Write(buffer, offset, count); }
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        cut ? ValueTask.CompletedTask : inner.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override void Flush() { if (!cut) inner.Flush(); }
    public override Task FlushAsync(CancellationToken cancellationToken) => cut ? Task.CompletedTask : inner.FlushAsync(cancellationToken);
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>Thrown by <see cref="ServeStream"/> when a Truncate fault cuts the body.</summary>
internal sealed class TruncatedBodyException : Exception
{
    public TruncatedBodyException() : base("Body truncated by an injected fault.") { }
}

/// <summary>Wraps the response body: counts bytes sent, cuts it off (Truncate fault), trickles it (Slow fault).</summary>
internal sealed class ServeStream : Stream
{
    private readonly Stream _inner;
    private long _throttleStartTicks;

    public ServeStream(Stream inner) { _inner = inner; }

    public long BytesSent { get; private set; }
    public long TruncateAfter { get; set; } = -1;
    public int BytesPerSecond { get; set; }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (TruncateAfter >= 0 && BytesSent + buffer.Length > TruncateAfter)
        {
            int allowed = (int)Math.Max(0, TruncateAfter - BytesSent);
            if (allowed > 0) await WriteCoreAsync(buffer[..allowed], cancellationToken);
            await _inner.FlushAsync(cancellationToken);
            throw new TruncatedBodyException();
        }
        await WriteCoreAsync(buffer, cancellationToken);
    }

    private async ValueTask WriteCoreAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        if (BytesPerSecond <= 0)
        {
            await _inner.WriteAsync(buffer, ct);
            BytesSent += buffer.Length;
            return;
        }
        if (_throttleStartTicks == 0) _throttleStartTicks = Environment.TickCount64;
        int piece = Math.Max(1, BytesPerSecond / 20);
        while (!buffer.IsEmpty)
        {
            var part = buffer[..Math.Min(piece, buffer.Length)];
            await _inner.WriteAsync(part, ct);
            await _inner.FlushAsync(ct);
            BytesSent += part.Length;
            buffer = buffer[part.Length..];
            long dueMs = BytesSent * 1000L / BytesPerSecond;
            long elapsed = Environment.TickCount64 - _throttleStartTicks;
            if (dueMs > elapsed) await Task.Delay((int)Math.Min(dueMs - elapsed, 5000), ct);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
        => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);
    public override void Flush() => _inner.FlushAsync().GetAwaiter().GetResult();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => BytesSent; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
