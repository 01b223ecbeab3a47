using System.Buffers;
using System.Text;
using System.Text.Json;

namespace FullStory.Engine.Events;

/// <summary>
/// Parses one event object. Standard fields become typed values; every other key, and any standard key whose value has
/// an unexpected type or repeats, is copied verbatim (raw JSON) into <see cref="FullStoryEvent.CustomVars"/>.
/// This is the hot path of every download: it predicts property names from the previous event (FullStory writes the same
/// keys in the same order) and reuses a field's string when its bytes repeat the previous event's (page, user and
/// browser fields repeat across a page's events). Not thread-safe: one per reader.
/// </summary>
internal sealed class EventObjectParser
{
    private const int MaxCachedValueLength = 512;

    private readonly PropertyNameCache names = new();
    private readonly ArrayBufferWriter<byte> customBuffer = new(1024);
    private readonly byte[]?[] lastValueBytes = new byte[StandardFields.Count][];
    private readonly string?[] lastValueStrings = new string[StandardFields.Count];
    private Utf8JsonWriter? customWriter;

    /// <summary>Parses a complete object (tests and one-off use).</summary>
    public FullStoryEvent Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, isFinalBlock: true, default);
        reader.Read();
        return TryParse(ref reader, json) ?? throw new JsonException("The event object is incomplete.");
    }

    /// <summary>
    /// Parses the object whose '{' the reader has just read. Returns null when the data ends inside the object
    /// (the reader's span was not the whole body): parse again from the same '{' with more data.
    /// </summary>
    public FullStoryEvent? TryParse(ref Utf8JsonReader reader, ReadOnlySpan<byte> json)
    {
        var ev = new FullStoryEvent();
        bool anyCustom = false;
        Utf8JsonWriter? writer = null;
        names.StartObject();

        while (true)
        {
            if (!reader.Read()) return null;
            if (reader.TokenType == JsonTokenType.EndObject) break;
            var (name, field) = names.Get(ref reader);
            if (!reader.Read()) return null;
            if (field is not null && ev.values[field.Ordinal] is null && TryReadTyped(ref reader, field, out var value))
            {
                ev.values[field.Ordinal] = value;
                continue;
            }

            long from = reader.TokenStartIndex;
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip()) return null;
            long to = reader.BytesConsumed;
            if (!anyCustom)
            {
                customBuffer.ResetWrittenCount(); // not Clear(): zeroing the buffer for every event cost more than parsing it
                writer = customWriter ??= new Utf8JsonWriter(customBuffer, new JsonWriterOptions { SkipValidation = true });
                writer.Reset(customBuffer);
                writer.WriteStartObject();
                anyCustom = true;
            }
            writer!.WritePropertyName(name);
            writer.WriteRawValue(json.Slice((int)from, (int)(to - from)), skipInputValidation: true);
        }

        if (anyCustom)
        {
            writer!.WriteEndObject();
            writer.Flush();
            ev.CustomVars = Encoding.UTF8.GetString(customBuffer.WrittenSpan);
        }
        return ev;
    }

    private bool TryReadTyped(ref Utf8JsonReader reader, EventField field, out object? value)
    {
        value = null;
        if (reader.TokenType == JsonTokenType.Null) return true; // FullStory omits fields; a null means the same
        switch (field.Type)
        {
            case FieldType.Int64 when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var l):
                value = l; return true;
            case FieldType.Int32 when reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var i):
                value = i; return true;
            case FieldType.Double when reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var d):
                value = new InvariantDouble(d); return true;
            case FieldType.String when reader.TokenType == JsonTokenType.String:
                value = ReadString(ref reader, field.Ordinal); return true;
            case FieldType.Timestamp when reader.TokenType == JsonTokenType.String && reader.TryGetDateTimeOffset(out var t):
                value = new UtcTimestamp(t); return true;
            default:
                return false;
        }
    }

    /// <summary>The string value, reusing the previous event's string for this field when the bytes are the same.</summary>
    private string ReadString(ref Utf8JsonReader reader, int ordinal)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence || reader.ValueSpan.Length > MaxCachedValueLength)
            return reader.GetString()!;
        var bytes = reader.ValueSpan;
        if (lastValueBytes[ordinal] is { } last && bytes.SequenceEqual(last)) return lastValueStrings[ordinal]!;
        string text = reader.GetString()!;
        lastValueBytes[ordinal] = bytes.ToArray();
        lastValueStrings[ordinal] = text;
        return text;
    }

    /// <summary>
    /// Resolves property names from their UTF-8 bytes without decoding: first by prediction (the key that followed the
    /// previous key last time: FullStory writes keys in a fixed order, and events of one type have the same set), then by
    /// hash. Bounded so hostile key sets cannot grow it forever.
    /// </summary>
    private sealed class PropertyNameCache
    {
        private const int MaxEntries = 8192;
        private readonly Dictionary<int, List<Entry>> entries = new();
        private readonly Entry start = new([], "", null);
        private Entry previous;
        private int count;

        public PropertyNameCache() => previous = start;

        private sealed record Entry(byte[] Utf8, string Name, EventField? Field)
        {
            public Entry? Next { get; set; }
        }

        public void StartObject() => previous = start;

        public (string Name, EventField? Field) Get(ref Utf8JsonReader reader)
        {
            if (reader.ValueIsEscaped || reader.HasValueSequence)
            {
                previous = start;
                return Resolve(reader.GetString()!);
            }
            var span = reader.ValueSpan;
            var entry = previous.Next is { } guess && span.SequenceEqual(guess.Utf8) ? guess : Lookup(span, ref reader);
            previous.Next = entry;
            previous = entry;
            return (entry.Name, entry.Field);
        }

        private Entry Lookup(ReadOnlySpan<byte> span, ref Utf8JsonReader reader)
        {
            var h = new HashCode();
            h.AddBytes(span);
            int hash = h.ToHashCode();
            if (entries.TryGetValue(hash, out var list))
                foreach (var e in list)
                    if (span.SequenceEqual(e.Utf8)) return e;

            var (name, field) = Resolve(reader.GetString()!);
            var entry = new Entry(span.ToArray(), name, field);
            if (count < MaxEntries)
            {
                if (list is null) entries[hash] = list = new List<Entry>(1);
                list.Add(entry);
                count++;
            }
            return entry;
        }

        private static (string Name, EventField? Field) Resolve(string name) =>
            (name, StandardFields.TryGet(name, out var f) ? f : null);
    }
}
