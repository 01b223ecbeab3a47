using System.Buffers;
using System.Text;
using System.Text.Json;

namespace FullStory.Engine.Events;

/// <summary>
/// Parses one complete event object. Standard fields become typed values; every other key, and any standard key
/// whose value has an unexpected type or repeats, is copied verbatim (raw JSON) into <see cref="FullStoryEvent.CustomVars"/>.
/// Not thread-safe: one per reader.
/// </summary>
internal sealed class EventObjectParser
{
    private readonly PropertyNameCache names = new();
    private readonly ArrayBufferWriter<byte> customBuffer = new(1024);
    private Utf8JsonWriter? customWriter;

    public FullStoryEvent Parse(ReadOnlySpan<byte> json)
    {
        var ev = new FullStoryEvent();
        var reader = new Utf8JsonReader(json, isFinalBlock: true, default);
        reader.Read(); // StartObject, checked by the caller
        bool anyCustom = false;
        customBuffer.Clear();
        var writer = customWriter ??= new Utf8JsonWriter(customBuffer, new JsonWriterOptions { SkipValidation = true });
        writer.Reset(customBuffer);

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var (name, field) = names.Get(ref reader);
            reader.Read();
            if (field is not null && ev.values[field.Ordinal] is null && TryReadTyped(ref reader, field, out var value))
            {
                ev.values[field.Ordinal] = value;
                continue;
            }

            long from = reader.TokenStartIndex;
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) reader.Skip();
            long to = reader.BytesConsumed;
            if (!anyCustom) { writer.WriteStartObject(); anyCustom = true; }
            writer.WritePropertyName(name);
            writer.WriteRawValue(json.Slice((int)from, (int)(to - from)), skipInputValidation: true);
        }

        if (anyCustom)
        {
            writer.WriteEndObject();
            writer.Flush();
            ev.CustomVars = Encoding.UTF8.GetString(customBuffer.WrittenSpan);
        }
        return ev;
    }

    private static bool TryReadTyped(ref Utf8JsonReader reader, EventField field, out object? value)
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
                value = reader.GetString(); return true;
            case FieldType.Timestamp when reader.TokenType == JsonTokenType.String && reader.TryGetDateTimeOffset(out var t):
                value = new UtcTimestamp(t); return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Caches property names by their UTF-8 bytes: FullStory repeats the same few dozen keys in every event, so
    /// decoding and looking each one up per event would dominate the parse. Bounded so hostile key sets cannot grow it forever.
    /// </summary>
    private sealed class PropertyNameCache
    {
        private const int MaxEntries = 8192;
        private readonly Dictionary<int, List<Entry>> entries = new();
        private int count;

        private sealed record Entry(byte[] Utf8, string Name, EventField? Field);

        public (string Name, EventField? Field) Get(ref Utf8JsonReader reader)
        {
            if (reader.ValueIsEscaped || reader.HasValueSequence) return Resolve(reader.GetString()!);
            var span = reader.ValueSpan;
            int hash = Hash(span);
            if (entries.TryGetValue(hash, out var list))
                foreach (var e in list)
                    if (span.SequenceEqual(e.Utf8)) return (e.Name, e.Field);

            var resolved = Resolve(reader.GetString()!);
            if (count < MaxEntries)
            {
                if (list is null) entries[hash] = list = new List<Entry>(1);
                list.Add(new Entry(span.ToArray(), resolved.Name, resolved.Field));
                count++;
            }
            return resolved;
        }

        private static (string Name, EventField? Field) Resolve(string name) =>
            (name, StandardFields.TryGet(name, out var f) ? f : null);

        private static int Hash(ReadOnlySpan<byte> span)
        {
            var h = new HashCode();
            h.AddBytes(span);
            return h.ToHashCode();
        }
    }
}
