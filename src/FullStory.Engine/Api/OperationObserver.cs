namespace FullStory.Engine.Api;

/// <summary>
/// What a long operation tells its caller while it runs: verbose lines, retries, export progress.
/// Callbacks may come from any thread; the cmdlet layer queues them for the pipeline thread.
/// </summary>
public sealed class OperationObserver
{
    private int retries;

    public Action<string>? Verbose { get; init; }
    public Action<int, string>? ExportProgress { get; init; }

    /// <summary>Retries made so far (HTTP attempts and re-downloads), for run history.</summary>
    public int Retries => retries;

    internal void Log(string message) => Say(message);

    internal void OnRetry(string message)
    {
        Interlocked.Increment(ref retries);
        Say(message);
    }

    /// <summary>
    /// Messages are best effort: a listener that throws (PowerShell refuses every Write once Ctrl+C was pressed) must not
    /// turn work that was done, such as a batch just committed, into a failure. Cancellation reaches the work through its token.
    /// </summary>
    private void Say(string message)
    {
        try { Verbose?.Invoke(message); }
        catch (Exception) { /* the listener is gone or stopping; the message is only informative */ }
    }

    public static readonly OperationObserver None = new();
}
