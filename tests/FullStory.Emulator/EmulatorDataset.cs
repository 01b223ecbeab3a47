using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FullStory.Emulator;

/// <summary>One export bundle.</summary>
public sealed class EmulatorBundle
{
    internal EmulatorBundle(long id, DateTimeOffset start, DateTimeOffset stop, long eventCount, string? sourceFile, int generatedIndex)
    {
        Id = id; Start = start; Stop = stop; EventCount = eventCount; SourceFile = sourceFile; GeneratedIndex = generatedIndex;
    }

    /// <summary>Start unix seconds * 100 + 48, as observed in real data.</summary>
    public long Id { get; }
    public DateTimeOffset Start { get; }
    public DateTimeOffset Stop { get; }
    public long EventCount { get; }
    /// <summary>The sample file served byte for byte, or null for a generated bundle.</summary>
    public string? SourceFile { get; }
    /// <summary>Index among generated bundles (seeds the generator), -1 for a sample bundle.</summary>
    public int GeneratedIndex { get; }

    internal BundleShape Shape => new(GeneratedIndex, Start.ToUnixTimeMilliseconds(), (Stop - Start).Ticks / TimeSpan.TicksPerMillisecond, EventCount);

    public override string ToString() => $"Bundle {Id} [{Start:O}, {Stop:O}) {EventCount} events";
}

/// <summary>One event to write: a generated (bundle, index) or an element of a sample file.</summary>
internal readonly struct EventItem
{
    public EventItem(BundleShape shape, long index) { Shape = shape; Index = index; Element = default; IsElement = false; }
    public EventItem(JsonElement element) { Shape = default; Index = 0; Element = element; IsElement = true; }
    public readonly BundleShape Shape;
    public readonly long Index;
    public readonly JsonElement Element;
    public readonly bool IsElement;
}

/// <summary>What exists: bundles and their events, deterministic from the seed, regenerated on demand.</summary>
public sealed class EmulatorDataset
{
    private readonly object _gate = new();
    private EmulatorBundle[] _bundles;
    private readonly long _firstStartMs;
    private readonly long _periodMs;
    private readonly long _eventsPerBundle;
    private int _generated;

    internal EventGenerator Generator { get; }

    internal EmulatorDataset(EmulatorOptions o)
    {
        if (o.BundlePeriod <= TimeSpan.Zero) throw new ArgumentException("BundlePeriod must be positive.");
        if (o.EventsPerBundle < 0 || o.BundleCount < 0) throw new ArgumentException("BundleCount and EventsPerBundle must be >= 0.");
        Generator = new EventGenerator(o.Seed);
        _periodMs = (long)o.BundlePeriod.TotalMilliseconds;
        _eventsPerBundle = o.EventsPerBundle;
        var first = o.FirstBundleStart ?? new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-o.BundleCount - 1), TimeSpan.Zero);
        _firstStartMs = first.ToUnixTimeMilliseconds();

        var list = new List<EmulatorBundle>();
        var ids = new HashSet<long>();
        foreach (var file in o.SampleBundleFiles)
        {
            var (count, minMs, maxMs) = ScanSample(file);
            long s = FloorDiv(minMs, _periodMs) * _periodMs;
            long e = (FloorDiv(maxMs, _periodMs) + 1) * _periodMs;
            long id = MakeId(s, ids);
            list.Add(new EmulatorBundle(id, DateTimeOffset.FromUnixTimeMilliseconds(s), DateTimeOffset.FromUnixTimeMilliseconds(e), count, Path.GetFullPath(file), -1));
        }
        _bundles = list.ToArray();
        AppendBundles(o.BundleCount);
    }

    private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    private long MakeId(long startMs, HashSet<long> ids)
    {
        long id = FloorDiv(startMs, 1000) * 100 + 48;
        while (!ids.Add(id)) id++;
        return id;
    }

    private static (long Count, long MinMs, long MaxMs) ScanSample(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{file}: not a JSON array");
        long count = 0, min = long.MaxValue, max = long.MinValue;
        foreach (var ev in doc.RootElement.EnumerateArray())
        {
            count++;
            if (ev.TryGetProperty("EventStart", out var es) && es.ValueKind == JsonValueKind.String)
            {
                long ms = DateTimeOffset.Parse(es.GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();
                min = Math.Min(min, ms); max = Math.Max(max, ms);
            }
        }
        if (count == 0 || min == long.MaxValue) throw new InvalidDataException($"{file}: no events with EventStart");
        return (count, min, max);
    }

    /// <summary>All bundles, samples first, then generated ones, oldest first.</summary>
    public IReadOnlyList<EmulatorBundle> Bundles => Volatile.Read(ref _bundles);

    public EmulatorBundle? Find(long id) => Array.Find(Volatile.Read(ref _bundles), b => b.Id == id);

    internal IReadOnlyList<EmulatorBundle> AppendBundles(int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        lock (_gate)
        {
            var ids = _bundles.Select(b => b.Id).ToHashSet();
            var added = new List<EmulatorBundle>();
            for (int n = 0; n < count; n++)
            {
                int k = _generated++;
                long s = _firstStartMs + k * _periodMs;
                added.Add(new EmulatorBundle(MakeId(s, ids), DateTimeOffset.FromUnixTimeMilliseconds(s), DateTimeOffset.FromUnixTimeMilliseconds(s + _periodMs), _eventsPerBundle, null, k));
            }
            Volatile.Write(ref _bundles, _bundles.Concat(added).ToArray());
            return added;
        }
    }

    /// <summary>Exactly the events the bundle body contains (legacy field names), same order, same values.</summary>
    public IEnumerable<JsonObject> EventsOf(long bundleId)
    {
        var b = Find(bundleId) ?? throw new KeyNotFoundException($"No bundle {bundleId}");
        return Materialize(ItemsOf(b), FieldNaming.Legacy);
    }

    /// <summary>What a segment export of [start, end) contains (segment export field names), filtered on EventStart.</summary>
    public IEnumerable<JsonObject> EventsBetween(DateTimeOffset start, DateTimeOffset end)
        => Materialize(ItemsBetween(start, end), FieldNaming.SegmentExport);

    private IEnumerable<JsonObject> Materialize(IEnumerable<EventItem> items, FieldNaming naming)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        var emitter = new Emitter { W = new Utf8JsonWriter(buffer, MinimalJsonEncoder.WriterOptions) };
        foreach (var item in items)
        {
            buffer.ResetWrittenCount();
            emitter.W.Reset(buffer);
            EventStreamer.WriteOne(emitter, Generator, item, naming);
            emitter.W.Flush();
            yield return JsonNode.Parse(buffer.WrittenSpan)!.AsObject();
        }
    }

    internal IEnumerable<EventItem> ItemsOf(EmulatorBundle b)
    {
        if (b.SourceFile is not null)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(b.SourceFile));
            foreach (var ev in doc.RootElement.EnumerateArray()) yield return new EventItem(ev);
            yield break;
        }
        var shape = b.Shape;
        for (long i = 0; i < shape.EventCount; i++) yield return new EventItem(shape, i);
    }

    private IEnumerable<EventItem> SampleItemsBetween(EmulatorBundle b, long startMs, long endMs)
    {
        foreach (var item in ItemsOf(b))
        {
            if (!item.Element.TryGetProperty("EventStart", out var es) || es.ValueKind != JsonValueKind.String) continue;
            long ms = DateTimeOffset.Parse(es.GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();
            if (ms >= startMs && ms < endMs) yield return item;
        }
    }

    /// <summary>How many events a segment export of [start, end) contains, without generating them (sample bundles are scanned).</summary>
    public long CountBetween(DateTimeOffset start, DateTimeOffset end)
    {
        long s = start.ToUnixTimeMilliseconds(), e = end.ToUnixTimeMilliseconds(), n = 0;
        foreach (var b in Bundles)
        {
            if (b.Stop <= start || b.Start >= end) continue;
            if (b.SourceFile is not null) { n += SampleItemsBetween(b, s, e).LongCount(); continue; }
            var shape = b.Shape;
            n += Generator.FirstIndexAtOrAfter(shape, e) - Generator.FirstIndexAtOrAfter(shape, s);
        }
        return n;
    }

    internal IEnumerable<EventItem> ItemsBetween(DateTimeOffset start, DateTimeOffset end)
    {
        long s = start.ToUnixTimeMilliseconds(), e = end.ToUnixTimeMilliseconds();
        foreach (var b in Bundles)
        {
            if (b.Stop <= start || b.Start >= end) continue;
            if (b.SourceFile is not null)
            {
                foreach (var item in SampleItemsBetween(b, s, e)) yield return item;
                continue;
            }
            var shape = b.Shape;
            long first = Generator.FirstIndexAtOrAfter(shape, s);
            long last = Generator.FirstIndexAtOrAfter(shape, e);
            for (long i = first; i < last; i++) yield return new EventItem(shape, i);
        }
    }
}
