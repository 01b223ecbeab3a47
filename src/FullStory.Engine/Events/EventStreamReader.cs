using System.Buffers;
using System.Text.Json;

namespace FullStory.Engine.Events;

/// <summary>
/// Streams FullStory events out of a body (a JSON array as in bundles, or NDJSON as in segment exports; gzip or not)
/// with Utf8JsonReader over a reusable buffer: memory stays flat whatever the body size. Each event object is
/// parsed once its bytes are all in the buffer; the buffer only grows to fit the largest single event.
/// </summary>
public sealed class EventStreamReader : IDisposable
{
    private const int InitialBufferSize = 256 * 1024;
    private const int MaxEventSize = 256 * 1024 * 1024;

    private enum Layout { Unknown, Array, Lines, Done }

    private readonly Stream text;
    private readonly string sourceName;
    private readonly string? sourceTag;
    private readonly EventObjectParser parser = new();
    private byte[] buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
    private int start, end;
    private bool endOfBody;
    private long bufferBase; // offset in the decompressed body of buffer[0]
    private Layout layout;
    private bool expectEvent; // in an array, after '[' or ','

    /// <param name="body">The raw body; gzip is detected and decompressed.</param>
    /// <param name="sourceName">Names the data in errors, e.g. "bundle 156314880048".</param>
    /// <param name="sourceTag">Stored on each event as <see cref="FullStoryEvent.Source"/>.</param>
    public EventStreamReader(Stream body, string sourceName, string? sourceTag = null)
    {
        text = BodyDecoder.Decode(body);
        this.sourceName = sourceName;
        this.sourceTag = sourceTag;
    }

    public long EventsRead { get; private set; }

    /// <summary>Decompressed bytes consumed so far.</summary>
    public long BytesRead => bufferBase + start;

    public CancellationToken CancellationToken { get; init; }

    public IEnumerable<FullStoryEvent> ReadAll()
    {
        while (TryRead(out var e)) yield return e;
    }

    /// <summary>Reads the next event; false at the proper end of the body. Throws <see cref="EventDataException"/> on bad or cut-off data.</summary>
    public bool TryRead(out FullStoryEvent ev)
    {
        ev = null!;
        while (true)
        {
            CancellationToken.ThrowIfCancellationRequested();
            if (layout == Layout.Done) return false;
            SkipWhitespace();
            if (start == end)
            {
                if (endOfBody) return Finish();
                Fill();
                continue;
            }

            byte c = buffer[start];
            switch (layout)
            {
                case Layout.Unknown when c == (byte)'[':
                    layout = Layout.Array; expectEvent = true; start++; continue;
                case Layout.Unknown when c == (byte)'{':
                    layout = Layout.Lines; break;
                case Layout.Unknown:
                    throw Malformed($"expected '[' or '{{' but found {Describe(c)}");
                case Layout.Array when c == (byte)',' && !expectEvent:
                    expectEvent = true; start++; continue;
                case Layout.Array when c == (byte)']' && (!expectEvent || EventsRead == 0):
                    start++; layout = Layout.Done; EnsureOnlyWhitespaceRemains(); return false;
                case Layout.Array when c != (byte)'{' || !expectEvent:
                    throw Malformed(expectEvent ? $"expected an event object but found {Describe(c)}" : $"expected ',' or ']' but found {Describe(c)}");
                case Layout.Lines when c != (byte)'{':
                    throw Malformed($"expected an event object on a new line but found {Describe(c)}");
            }

            if (TryParseObject(out ev))
            {
                expectEvent = false;
                if ((++EventsRead & 4095) == 0) LimitGen0Growth();
                return true;
            }
            if (endOfBody) throw Truncated("the last event object is incomplete");
            Fill();
        }
    }

    private bool TryParseObject(out FullStoryEvent ev)
    {
        // One pass: parse straight from the buffer. If the object is cut by the end of the buffer, the parser says so
        // and the object is parsed again once more data is in (rare: one event per buffer refill).
        var span = buffer.AsSpan(start, end - start);
        var reader = new Utf8JsonReader(span, isFinalBlock: false, default);
        FullStoryEvent? parsed;
        try
        {
            reader.Read(); // the '{' seen by the caller
            parsed = parser.TryParse(ref reader, span);
        }
        catch (JsonException ex)
        {
            throw Malformed(ex.Message.Split(" Path:")[0], ex.BytePositionInLine ?? 0, ex);
        }
        if (parsed is null)
        {
            ev = null!;
            return false;
        }
        ev = parsed;
        ev.Source = sourceTag;
        start += (int)reader.BytesConsumed;
        return true;
    }

    private const long Gen0AllocationBudget = 32L * 1024 * 1024;
    private long allocatedAtLastCollect = -1;

    /// <summary>
    /// Parsing allocates fast and nearly everything dies young, but the runtime sizes its youngest generation from the
    /// CPU cache and can let it grow by tens of MB before collecting, which shows up as peak memory in a long pwsh run.
    /// A cheap gen0 collection every ~32 MB allocated (by the parser and its consumer, e.g. the pipeline) keeps the working set flat whatever the body size.
    /// </summary>
    private void LimitGen0Growth()
    {
        long allocated = GC.GetTotalAllocatedBytes(precise: false);
        if (allocatedAtLastCollect < 0) { allocatedAtLastCollect = allocated; return; }
        if (allocated - allocatedAtLastCollect < Gen0AllocationBudget) return;
        allocatedAtLastCollect = allocated;
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
    }

    private void Fill()
    {
        // Move the unread tail to the front; grow only when one event does not fit.
        if (start > 0)
        {
            Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
            bufferBase += start;
            end -= start;
            start = 0;
        }
        if (end == buffer.Length)
        {
            if (buffer.Length >= MaxEventSize) throw Malformed($"one event is larger than {MaxEventSize / (1024 * 1024)} MB");
            var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
            Buffer.BlockCopy(buffer, 0, bigger, 0, end);
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = bigger;
        }
        int n;
        try
        {
            n = text.Read(buffer, end, buffer.Length - end);
        }
        catch (InvalidDataException ex)
        {
            throw new EventDataException(sourceName, bufferBase + end, EventsRead, "the gzip data is corrupt: " + ex.Message, truncated: true, ex);
        }
        if (n == 0) endOfBody = true;
        end += n;
    }

    private void SkipWhitespace()
    {
        while (start < end)
        {
            byte c = buffer[start];
            if (c is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') start++;
            else if (c == 0xEF && start == 0 && bufferBase == 0 && end >= 3 && buffer[1] == 0xBB && buffer[2] == 0xBF) start += 3; // UTF-8 BOM
            else break;
        }
    }

    private bool Finish()
    {
        if (layout == Layout.Array) throw Truncated("the JSON array has no closing ']'");
        layout = Layout.Done;
        return false;
    }

    private void EnsureOnlyWhitespaceRemains()
    {
        while (true)
        {
            SkipWhitespace();
            if (start < end) throw Malformed($"unexpected {Describe(buffer[start])} after the end of the JSON array");
            if (endOfBody) return;
            Fill();
        }
    }

    private static string Describe(byte c) => c is >= 0x20 and < 0x7F ? $"'{(char)c}'" : $"byte 0x{c:X2}";

    private EventDataException Malformed(string problem, long offsetInEvent = 0, Exception? inner = null) =>
        new(sourceName, bufferBase + start + offsetInEvent, EventsRead, problem, truncated: false, inner);

    private EventDataException Truncated(string problem) =>
        new(sourceName, bufferBase + start, EventsRead, problem, truncated: true);

    public void Dispose()
    {
        text.Dispose();
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
        buffer = [];
    }
}
