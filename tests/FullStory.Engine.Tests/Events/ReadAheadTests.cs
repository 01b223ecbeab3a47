using FullStory.Engine.Events;

namespace FullStory.Engine.Tests.Events;

public class ReadAheadTests
{
    [Fact]
    public void Delivers_every_item_in_order()
    {
        var items = ReadAhead.Buffered(Enumerable.Range(0, 10_000), batchSize: 7, maxBatches: 2).ToList();
        Assert.Equal(Enumerable.Range(0, 10_000), items);
    }

    [Fact]
    public void Delivers_the_items_read_before_a_failure_then_the_failure()
    {
        static IEnumerable<int> FailsAfter(int n)
        {
            for (int i = 0; i < n; i++) yield return i;
            throw new EventDataException("test", 10, n, "broken", truncated: false);
        }
        var seen = new List<int>();
        var ex = Assert.Throws<EventDataException>(() => { foreach (var i in ReadAhead.Buffered(FailsAfter(1000), batchSize: 256)) seen.Add(i); });
        Assert.Equal(Enumerable.Range(0, 1000), seen);
        Assert.Equal(1000, ex.EventIndex);
    }

    [Fact]
    public void Stopping_early_stops_the_producer()
    {
        int produced = 0;
        IEnumerable<int> Endless() { while (true) { Interlocked.Increment(ref produced); yield return produced; } }
        var first = ReadAhead.Buffered(Endless(), batchSize: 10, maxBatches: 2).Take(5).ToList();
        Assert.Equal(5, first.Count);
        int after = Volatile.Read(ref produced);
        Thread.Sleep(200);
        Assert.Equal(after, Volatile.Read(ref produced)); // nothing more is read once the consumer stopped
        Assert.True(after <= 10 * 4, $"read ahead {after} items with a bound of about 30");
    }
}
