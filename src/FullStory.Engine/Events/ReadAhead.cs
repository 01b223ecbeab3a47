using System.Collections.Concurrent;

namespace FullStory.Engine.Events;

/// <summary>
/// Runs an enumeration (download, gunzip, parse) on a worker thread while the caller consumes (PowerShell's pipeline),
/// so the two overlap on separate cores. Items travel in small batches through a bounded queue: memory stays flat and
/// the hand-off costs little per item. Exceptions from the source surface to the caller in order, after the items
/// produced before them.
/// </summary>
public static class ReadAhead
{
    public static IEnumerable<T> Buffered<T>(IEnumerable<T> source, int batchSize = 256, int maxBatches = 8, CancellationToken cancellationToken = default)
    {
        using var queue = new BlockingCollection<T[]>(maxBatches);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producer = Task.Run(() =>
        {
            var batch = new List<T>(batchSize);
            try
            {
                foreach (var item in source)
                {
                    batch.Add(item);
                    if (batch.Count == batchSize)
                    {
                        queue.Add(batch.ToArray(), stop.Token);
                        batch.Clear();
                    }
                }
            }
            finally
            {
                // Also when the source fails: the items read before the failure are delivered before it.
                try { if (batch.Count > 0 && !stop.IsCancellationRequested) queue.Add(batch.ToArray(), stop.Token); }
                finally { queue.CompleteAdding(); }
            }
        }, stop.Token);

        try
        {
            foreach (var batch in queue.GetConsumingEnumerable(stop.Token))
                foreach (var item in batch)
                    yield return item;
            producer.GetAwaiter().GetResult(); // rethrows the source's exception, unwrapped
        }
        finally
        {
            // The consumer stopped early (Select-Object -First, Ctrl+C, an error downstream): stop the producer too.
            stop.Cancel();
            try { producer.Wait(TimeSpan.FromSeconds(30)); } catch (AggregateException) { }
        }
    }
}
