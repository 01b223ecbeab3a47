namespace FullStory.Engine.Events;

/// <summary>The event data could not be read: malformed JSON, an element that is not a FullStory event, or a body that ended too early.</summary>
public class EventDataException : Exception
{
    public EventDataException(string source, long byteOffset, long eventIndex, string problem, bool truncated, Exception? inner = null)
        : base(FormatMessage(source, byteOffset, eventIndex, problem, truncated), inner)
    {
        Source = source;
        ByteOffset = byteOffset;
        EventIndex = eventIndex;
        IsTruncated = truncated;
    }

    /// <summary>The bundle, export window or file the data came from.</summary>
    public new string Source { get; }
    /// <summary>Offset in the decompressed JSON where the problem was found (for a bad element, where it starts).</summary>
    public long ByteOffset { get; }
    /// <summary>How many events had been read before the problem (the zero-based index of the bad one).</summary>
    public long EventIndex { get; }
    /// <summary>True when the body ended early (a download that broke off): worth downloading again.</summary>
    public bool IsTruncated { get; }

    private static string FormatMessage(string source, long offset, long index, string problem, bool truncated) =>
        truncated
            ? $"The event data from {source} ended early at byte {offset:N0} (after {index:N0} events): {problem}. The download was cut off or the file is incomplete."
            : $"The event data from {source} is not valid FullStory JSON at byte {offset:N0} (element {index + 1:N0}): {problem}.";
}
