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

    internal void Log(string message) => Verbose?.Invoke(message);

    internal void OnRetry(string message)
    {
        Interlocked.Increment(ref retries);
        Verbose?.Invoke(message);
    }

    public static readonly OperationObserver None = new();
}
