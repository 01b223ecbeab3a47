using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Text.Json;

namespace FullStory.Engine.Events;

/// <summary>
/// Streams FullStory events out of a body (a JSON array as in bundles, or NDJSON as in segment exports; gzip or not)
/// with Utf8JsonReader over a reusable buffer: memory stays flat whatever the body size. Each event object is
/// parsed once its bytes are all in the buffer; the buffer only grows to fit the largest single event.
/// <para>
/// Complete input or an error: a JSON array must end with its ']', NDJSON with a complete object, gzip with its verified
/// trailer; every element must be a FullStory event (see <see cref="RequireEventFields"/>). Each event carries its
/// position in the body (<see cref="FullStoryEvent.SourceIndex"/>), and the last one, once the end is verified, the
/// number of events in the body (<see cref="FullStoryEvent.SourceCount"/>): the reader looks one event ahead to know.
/// </para>
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
    private bool bomChecked;
    private long parsed; // elements parsed so far, one ahead of the events returned
    private FullStoryEvent? next; // parsed, not yet returned (the look-ahead)
    private bool ended; // the verified end of the body was reached
    private Exception? failure; // what stopped the reader; raised after the events before it were returned

    /// <param name="body">The raw body; gzip is detected and decompressed.</param>
    /// <param name="sourceName">Names the data in errors, e.g. "bundle 156314880048".</param>
    /// <param name="sourceTag">Stored on each event as <see cref="FullStoryEvent.Source"/>.</param>
    public EventStreamReader(Stream body, string sourceName, string? sourceTag = null)
    {
        text = BodyDecoder.Decode(body);
        this.sourceName = sourceName;
        this.sourceTag = sourceTag;
    }

    /// <summary>Events returned so far.</summary>
    public long EventsRead { get; private set; }

    /// <summary>Decompressed bytes consumed so far.</summary>
    public long BytesRead => bufferBase + start;

    public CancellationToken CancellationToken { get; init; }

    /// <summary>Called once when the verified end of the body is reached, before the last event is returned (e.g. to keep an archived copy).</summary>
    public Action? EndVerified { get; init; }

    public IEnumerable<FullStoryEvent> ReadAll()
    {
        while (TryRead(out var e)) yield return e;
    }

    /// <summary>
    /// Reads the next event; false at the proper, verified end of the body. Throws <see cref="EventDataException"/> on bad
    /// or cut-off data, after returning every event before the problem; once failed, it throws that again.
    /// </summary>
    public bool TryRead(out FullStoryEvent ev)
    {
        ev = null!;
        if (failure is not null) ExceptionDispatchInfo.Throw(failure);
        if (next is null)
        {
            if (ended) return false;
            try
            {
                if (!TryReadElement(out next)) { End(); return false; }
            }
            catch (Exception ex)
            {
                failure = ex;
                throw;
            }
        }

        ev = next;
        next = null;
        try
        {
            // One event ahead: the current one is the source's last only if the body then ends properly.
            if (TryReadElement(out var following)) next = following;
            else
            {
                End();
                ev.SourceCount = parsed;
            }
        }
        catch (Exception ex)
        {
            failure = ex; // thrown by the next call: the event before the problem is still delivered, without SourceCount
        }
        EventsRead++;
        return true;
    }

    private void End()
    {
        ended = true;
        EndVerified?.Invoke();
    }

    /// <summary>The next element of the body as an event; false at the verified end.</summary>
    private bool TryReadElement(out FullStoryEvent ev)
    {
        ev = null!;
        while (true)
        {
            CancellationToken.ThrowIfCancellationRequested();
            if (layout == Layout.Done) return false;
            if (!bomChecked)
            {
                // A UTF-8 byte-order mark (editors on Windows write one) is accepted at the very start: wait for 3 bytes to see it.
                if (end - start < 3 && !endOfBody) { Fill(); continue; }
                bomChecked = true;
                if (end - start >= 3 && buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF) start += 3;
            }
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
                case Layout.Array when c == (byte)']' && (!expectEvent || parsed == 0):
                    start++; layout = Layout.Done; EnsureOnlyWhitespaceRemains(); return false;
                case Layout.Array when c != (byte)'{' || !expectEvent:
                    throw Malformed(expectEvent ? $"expected an event object but found {Describe(c)}" : $"expected ',' or ']' but found {Describe(c)}");
                case Layout.Lines when c != (byte)'{':
                    throw Malformed($"expected an event object on a new line but found {Describe(c)}");
            }

            if (TryParseObject(out ev))
            {
                expectEvent = false;
                if ((++parsed & 4095) == 0) LimitGen0Growth();
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
        FullStoryEvent? element;
        try
        {
            reader.Read(); // the '{' seen by the caller
            element = parser.TryParse(ref reader, span);
        }
        catch (JsonException ex)
        {
            throw Malformed(ex.Message.Split(" Path:")[0], ex.BytePositionInLine ?? 0, ex);
        }
        if (element is null)
        {
            ev = null!;
            return false;
        }
        RequireEventFields(element);
        ev = element;
        ev.Source = sourceTag;
        ev.SourceIndex = parsed;
        start += (int)reader.BytesConsumed;
        return true;
    }

    private static readonly int EventStartOrdinal = StandardFields.Get("EventStart").Ordinal;
    private static readonly int EventTypeOrdinal = StandardFields.Get("EventType").Ordinal;

    /// <summary>
    /// Only FullStory export data is accepted: an element that is not a FullStory event is an error, not an event with
    /// every field empty. The test is the two fields every FullStory event has in both APIs: EventStart, a timestamp (the
    /// event's time: Segment Export's timeRange filters on it, Stitch replicates by it) and EventType, a string (what
    /// happened: click, navigate, custom, ...). Every event of both real samples and of the emulator has both; ids are
    /// not required (a Segment Export 'fields' list may leave them out, and FullStory omits fields that do not apply).
    /// Two slot checks per event: nothing measurable next to parsing it.
    /// </summary>
    private void RequireEventFields(FullStoryEvent ev)
    {
        if (ev.values[EventStartOrdinal] is not null && ev.values[EventTypeOrdinal] is not null) return;
        throw new EventDataException(sourceName, bufferBase + start, parsed,
            $"not a FullStory event: it has {DescribeMissingFields(ev)}. Only FullStory's event export data (bundles and Segment Export " +
            "files, as downloaded or kept with -OutDirectory) can be read", truncated: false);
    }

    /// <summary>"no EventStart and no EventType (its keys include hello, items)": for the error only, so it may parse again.</summary>
    private static string DescribeMissingFields(FullStoryEvent ev)
    {
        using var custom = ev.CustomVars is null ? null : JsonDocument.Parse(ev.CustomVars);
        var keys = custom?.RootElement.EnumerateObject().Select(p => p.Name).ToList() ?? [];
        var missing = new List<string>();
        foreach (var (ordinal, name, type) in new[] { (EventStartOrdinal, "EventStart", "an ISO 8601 timestamp"), (EventTypeOrdinal, "EventType", "a string") })
        {
            if (ev.values[ordinal] is not null) continue;
            // A standard key whose value had another type was kept in CustomVars.
            missing.Add(keys.Contains(name, StringComparer.OrdinalIgnoreCase) ? $"an {name} that is not {type}" : $"no {name}");
        }
        var named = keys.Concat(StandardFields.All.Where(f => ev.values[f.Ordinal] is not null).Select(f => f.Name)).Take(5).ToList();
        string seen = named.Count > 0 ? $" (its keys include {string.Join(", ", named)})" : " (it is empty)";
        return string.Join(" and ", missing) + seen;
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
            // A cut-off or corrupt gzip body (CheckedGzipStream says which): truncated, so a download is fetched again.
            throw new EventDataException(sourceName, bufferBase + end, parsed, ex.Message, truncated: true, ex);
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
        new(sourceName, bufferBase + start + offsetInEvent, parsed, problem, truncated: false, inner);

    private EventDataException Truncated(string problem) =>
        new(sourceName, bufferBase + start, parsed, problem, truncated: true);

    public void Dispose()
    {
        text.Dispose();
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
        buffer = [];
    }
}
