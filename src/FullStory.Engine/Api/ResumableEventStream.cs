using System.Collections;
using FullStory.Engine.Events;
using Polly;

namespace FullStory.Engine.Api;

/// <summary>
/// Events of one download, surviving broken bodies: when reading fails in a way worth retrying, the body is opened
/// again and the events already delivered are skipped (bundles and export files do not change), so the consumer sees
/// each event exactly once. The body pipeline (Polly) bounds the attempts and spaces them out.
/// </summary>
internal sealed class ResumableEventStream(Func<CancellationToken, EventStreamReader> open, ResiliencePipeline bodyPipeline, string what, CancellationToken cancellationToken)
    : IEnumerable<FullStoryEvent>
{
    private readonly Func<CancellationToken, EventStreamReader> open = open;
    private readonly ResiliencePipeline bodyPipeline = bodyPipeline;
    private readonly string what = what;
    private readonly CancellationToken cancellationToken = cancellationToken;

    public IEnumerator<FullStoryEvent> GetEnumerator() => new Enumerator(this);
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private sealed class Enumerator(ResumableEventStream owner) : IEnumerator<FullStoryEvent>
    {
        private EventStreamReader? reader;
        private long delivered;
        private bool finished;

        public FullStoryEvent Current { get; private set; } = null!;
        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            if (finished) return false;
            return owner.bodyPipeline.Execute(token =>
            {
                try
                {
                    if (reader is null)
                    {
                        reader = owner.open(token);
                        for (long i = 0; i < delivered; i++)
                            if (!reader.TryRead(out _))
                                throw new FullStoryApiException($"{owner.what} has fewer events than when it was first downloaded ({i:N0} instead of at least {delivered:N0}); it cannot be resumed safely.");
                    }
                    if (reader.TryRead(out var ev))
                    {
                        Current = ev;
                        delivered++;
                        return true;
                    }
                    finished = true;
                    DisposeReader();
                    return false;
                }
                catch
                {
                    DisposeReader();
                    throw;
                }
            }, owner.cancellationToken);
        }

        private void DisposeReader()
        {
            reader?.Dispose();
            reader = null;
        }

        public void Reset() => throw new NotSupportedException();
        public void Dispose() => DisposeReader();
    }
}
