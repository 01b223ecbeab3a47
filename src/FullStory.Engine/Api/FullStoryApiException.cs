using System.Net;

namespace FullStory.Engine.Api;

/// <summary>FullStory refused or failed a request. The message says what to do; it never contains the key.</summary>
public class FullStoryApiException : Exception
{
    public FullStoryApiException(string message, HttpStatusCode? statusCode = null, string? errorCode = null, Exception? inner = null)
        : base(message, inner)
    {
        StatusCode = statusCode;
        ErrorCode = errorCode;
    }

    public HttpStatusCode? StatusCode { get; }
    /// <summary>The "code" of FullStory's JSON error body, when it sent one.</summary>
    public string? ErrorCode { get; }

    public bool IsAuthenticationFailure => StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden;
}

/// <summary>A segment export that FullStory reported as FAILED.</summary>
public sealed class FullStoryExportFailedException(string operationId, string details)
    : FullStoryApiException($"FullStory could not prepare the export (operation {operationId}): {details}")
{
    public string OperationId { get; } = operationId;
    public string Details { get; } = details;
}

/// <summary>An export stayed unfinished (PENDING or RUNNING) longer than <see cref="RetrySettings.ExportTimeout"/>; it is given up.</summary>
public sealed class FullStoryExportTimedOutException(string operationId, string state, TimeSpan timeout)
    : FullStoryApiException($"FullStory did not finish the export (operation {operationId}) within {FormatTimeout(timeout)}: it is still {state}. " +
        "It is given up; try again later, or allow longer with Connect-FullStory -ExportTimeout.")
{
    public string OperationId { get; } = operationId;
    public TimeSpan Timeout { get; } = timeout;

    private static string FormatTimeout(TimeSpan t) =>
        t.TotalHours >= 1 && t.Minutes == 0 && t.Seconds == 0 ? $"{t.TotalHours:0} h" : t.TotalMinutes >= 1 && t.Seconds == 0 ? $"{t.TotalMinutes:0} min" : $"{t.TotalSeconds:0.###} s";
}

/// <summary>
/// FullStory answered 429 Too Many Requests and the caller handles it itself instead of retrying blindly (the segment export
/// scheduler waits <see cref="RetryAfter"/> and lowers the number of exports it keeps in flight).
/// </summary>
public sealed class FullStoryRateLimitedException(string message, TimeSpan? retryAfter, string? errorCode)
    : FullStoryApiException(message, HttpStatusCode.TooManyRequests, errorCode)
{
    /// <summary>What FullStory's Retry-After said; null when it sent none.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
