using FullStory.Engine.Events;

namespace FullStory.Engine.Api;

/// <summary>A legacy export bundle: FullStory's events of one period (24 h by default), published about a day after it ends.</summary>
public sealed class FullStoryBundle
{
    public FullStoryBundle(long id, UtcTimestamp start, UtcTimestamp stop)
    {
        Id = id;
        Start = start;
        Stop = stop;
    }

    public long Id { get; }
    public UtcTimestamp Start { get; }
    public UtcTimestamp Stop { get; }
    public TimeSpan Period => Stop.Value - Start.Value;

    /// <summary>The key that marks this bundle as loaded in a destination's sync-state table.</summary>
    public string BatchKey => "bundle:" + Id;

    public override string ToString() => $"bundle {Id} ({Start} to {Stop})";
}
