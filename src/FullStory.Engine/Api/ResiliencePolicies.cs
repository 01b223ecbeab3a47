using System.Net;
using System.Net.Sockets;
using FullStory.Engine.Events;
using Polly;
using Polly.Retry;

namespace FullStory.Engine.Api;

/// <summary>
/// Which failures are worth another try, and how long to wait: Polly retry pipelines built from a session's
/// <see cref="RetrySettings"/>. 429 waits what Retry-After says; 408/5xx and network errors back off exponentially with jitter.
/// </summary>
internal static class ResiliencePolicies
{
    /// <param name="retryRateLimits">false: a 429 is returned to the caller at once (it waits and lowers its own concurrency).</param>
    public static ResiliencePipeline<HttpResponseMessage> ForRequests(RetrySettings settings, OperationObserver observer, string what, bool retryRateLimits = true)
    {
        if (settings.MaxAttempts <= 1) return ResiliencePipeline<HttpResponseMessage>.Empty;
        return new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = settings.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = settings.BaseDelay,
                MaxDelay = settings.MaxDelay,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is { } ex ? IsTransient(ex, args.Context.CancellationToken)
                    : args.Outcome.Result is { } r && IsTransient(r, settings) && (retryRateLimits || (int)r.StatusCode != 429)),
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result is { } r ? RetryAfter(r) : null),
                OnRetry = args =>
                {
                    string why = args.Outcome.Exception is { } ex ? Describe(ex) : $"HTTP {(int)args.Outcome.Result!.StatusCode} {args.Outcome.Result.ReasonPhrase}";
                    args.Outcome.Result?.Dispose();
                    observer.OnRetry($"{what}: {why}; retry {args.AttemptNumber + 1} of {settings.MaxAttempts - 1} in {args.RetryDelay.TotalSeconds:0.##} s.");
                    return default;
                },
            })
            .Build();
    }

    /// <summary>For re-reading a body that broke off or came corrupt: the whole download is tried again.</summary>
    public static ResiliencePipeline ForBodies(RetrySettings settings, OperationObserver observer, string what)
    {
        if (settings.MaxAttempts <= 1) return ResiliencePipeline.Empty;
        return new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = settings.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = settings.BaseDelay,
                MaxDelay = settings.MaxDelay,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && IsTransientBodyFailure(ex, args.Context.CancellationToken)),
                OnRetry = args =>
                {
                    observer.OnRetry($"{what}: {Describe(args.Outcome.Exception!)}; downloading again (retry {args.AttemptNumber + 1} of {settings.MaxAttempts - 1}) in {args.RetryDelay.TotalSeconds:0.##} s.");
                    return default;
                },
            })
            .Build();
    }

    public static bool IsTransient(HttpResponseMessage response, RetrySettings settings)
    {
        int status = (int)response.StatusCode;
        if (status == 429)
            return RetryAfter(response) is not { } wait || wait <= settings.MaxRetryAfter;
        return status is 408 or 500 or 502 or 503 or 504;
    }

    public static bool IsTransient(Exception ex, CancellationToken cancellation) => ex switch
    {
        OperationCanceledException when cancellation.IsCancellationRequested => false, // the user pressed Ctrl+C
        TimeoutException or OperationCanceledException => true,                           // a request timed out
        HttpRequestException { InnerException: System.Security.Authentication.AuthenticationException } => false, // TLS failure: retrying will not help
        HttpRequestException or IOException or SocketException => true,
        _ => false,
    };

    /// <summary>A body that ended early, broke off or came corrupt is downloaded again; other failures are final.</summary>
    public static bool IsTransientBodyFailure(Exception ex, CancellationToken cancellation) => ex switch
    {
        EventDataException => true, // truncated or malformed: a proxy or a broken connection can do either
        FullStoryApiException => false, // the request pipeline already spent its attempts on it
        _ => IsTransient(ex, cancellation),
    };

    public static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header is null) return null;
        if (header.Delta is { } delta) return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        if (header.Date is { } date) { var wait = date - DateTimeOffset.UtcNow; return wait < TimeSpan.Zero ? TimeSpan.Zero : wait; }
        return null;
    }

    public static string Describe(Exception ex) => ex switch
    {
        HttpRequestException { InnerException: SocketException se } => $"network error ({se.SocketErrorCode})",
        HttpRequestException h => "network error: " + h.Message,
        EventDataException d => d.Message,
        _ => ex.Message,
    };

}
