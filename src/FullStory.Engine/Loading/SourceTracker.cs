using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>What the sync-state table says about one source (batch key) of one events table.</summary>
/// <param name="SourceEvents">How many events the whole source has, once a load has seen its last event.</param>
internal sealed record BatchRecord(string Key, bool IsComplete, long Rows, DateTimeOffset? RangeStart, DateTimeOffset? RangeEnd, long? SourceEvents = null);

/// <summary>
/// Decides, event by event, what a load writes, so that nothing is lost or written twice whatever the order and subset
/// of the events (the rules of every store, in one place):
/// <list type="bullet">
/// <item>A complete source (a bundle or window downloaded whole) is written whole; the store first deletes the rows of an
/// earlier partial load of it, in the same transaction: it replaces it.</item>
/// <item>Pipeline events: a source recorded complete is skipped; otherwise an event is written unless the destination
/// (or this load) already holds the event at the same position of the same source. The source is then recorded
/// complete once the destination holds as many events as the source's last event says it has, else partial.</item>
/// </list>
/// </summary>
internal sealed class SourceTracker
{
    private readonly string? completeKey;
    private readonly string fallbackKey;
    private readonly Dictionary<string, SourceState> sources = new(StringComparer.Ordinal);
    private SourceState? last;

    private SourceTracker(string? completeKey, string fallbackKey)
    {
        this.completeKey = completeKey;
        this.fallbackKey = fallbackKey;
        if (completeKey is not null) sources[completeKey] = last = new SourceState(completeKey) { Resolved = true };
    }

    /// <summary>Every event belongs to one source, whose whole content this is (positions are counted when the events carry none).</summary>
    public static SourceTracker ForCompleteSource(string key) => new(key, key);

    /// <summary>Events of any sources, keyed by their Source (or <paramref name="fallbackKey"/>).</summary>
    public static SourceTracker ForPipeline(string fallbackKey) => new(null, fallbackKey);

    public IReadOnlyCollection<SourceState> Sources => sources.Values;

    public enum Decision { Write, Skip, Lookup }

    /// <summary>The key of an event's source.</summary>
    public string KeyOf(FullStoryEvent ev) => completeKey ?? ev.Source ?? fallbackKey;

    /// <summary>
    /// Write (with the row's key and position), Skip, or Lookup: the store must first <see cref="Resolve"/> the source from the
    /// destination's records, then ask again.
    /// </summary>
    public Decision Admit(FullStoryEvent ev, out SourceState source, out long? index)
    {
        index = null;
        string key = KeyOf(ev);
        source = last is not null && string.Equals(last.Key, key, StringComparison.Ordinal) ? last
            : sources.TryGetValue(key, out var known) ? known : NewSource(key);
        last = source;
        if (!source.Resolved) return Decision.Lookup;

        source.Events++;
        if (completeKey is not null)
        {
            index = ev.SourceIndex ?? source.Events - 1;
            source.Written++;
            return Decision.Write;
        }
        if (ev.SourceCount is long count) source.Count = count;
        if (source.Skip) { source.Skipped++; return Decision.Skip; }
        index = ev.SourceIndex;
        if (index is long i)
        {
            if (!source.Present.Add(i)) { source.Skipped++; return Decision.Skip; }
        }
        else source.WithoutIndex++;
        source.Written++;
        return Decision.Write;
    }

    private SourceState NewSource(string key)
    {
        var s = new SourceState(key);
        sources[key] = s;
        return s;
    }

    /// <summary>Applies the destination's record of a source; <paramref name="readIndexes"/> fills in the positions it holds (only called for a partial record).</summary>
    public void Resolve(SourceState source, BatchRecord? record, Action<IndexSet> readIndexes)
    {
        source.Record = record;
        if (record is { IsComplete: true }) source.Skip = true;
        else if (record is not null)
        {
            readIndexes(source.Present);
            source.ExistingRows = record.Rows;
            source.Count = record.SourceEvents;
        }
        source.Resolved = true;
    }

    internal sealed class SourceState(string key)
    {
        public string Key { get; } = key;
        public bool Resolved { get; set; }
        public BatchRecord? Record { get; set; }
        /// <summary>The source is recorded complete: its events are skipped.</summary>
        public bool Skip { get; set; }
        /// <summary>Positions the destination holds, plus those written by this load.</summary>
        public IndexSet Present { get; } = new();
        public long ExistingRows { get; set; }
        public long Events { get; set; }
        public long Written { get; set; }
        public long Skipped { get; set; }
        public long WithoutIndex { get; set; }
        /// <summary>The number of events in the source, once its last event was seen.</summary>
        public long? Count { get; set; }

        /// <summary>Rows the destination holds for the source once this load commits.</summary>
        public long TotalRows => ExistingRows + Written;

        /// <summary>
        /// True when the destination will hold every event of the source: its size is known and as many distinct positions
        /// are held (positions come from the reader, so they are below the count).
        /// </summary>
        public bool BecomesComplete => Count is long n && WithoutIndex == 0 && TotalRows == n && Present.Count == n;
    }
}

/// <summary>
/// A set of event positions, as bits in 8 KB pages: a source's positions are dense from 0, so 20 million events take
/// 2.5 MB; positions far apart cost a page each.
/// </summary>
internal sealed class IndexSet
{
    private const int PageBits = 65536;
    private readonly Dictionary<long, ulong[]> pages = new();
    private long lastPageNumber = long.MinValue;
    private ulong[]? lastPage;

    public long Count { get; private set; }

    /// <summary>Adds a position; false when it was already there.</summary>
    public bool Add(long index)
    {
        long pageNumber = index >> 16; // floor division, also for negative values
        ulong[] page;
        if (pageNumber == lastPageNumber) page = lastPage!;
        else
        {
            if (!pages.TryGetValue(pageNumber, out page!)) pages[pageNumber] = page = new ulong[PageBits / 64];
            lastPageNumber = pageNumber;
            lastPage = page;
        }
        int bit = (int)(index & (PageBits - 1));
        ulong mask = 1UL << (bit & 63);
        ref ulong word = ref page[bit >> 6];
        if ((word & mask) != 0) return false;
        word |= mask;
        Count++;
        return true;
    }
}
