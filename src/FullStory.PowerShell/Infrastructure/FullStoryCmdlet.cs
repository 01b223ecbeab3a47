using System.Management.Automation;
using FullStory.Engine.Api;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// Base of every cmdlet: cancellation on Ctrl+C (StopProcessing), and messages and errors that never carry the key.
/// </summary>
public abstract class FullStoryCmdletBase : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource cancellation = new();

    protected CancellationToken CancellationToken => cancellation.Token;

    /// <summary>The session whose key must be hidden in everything this cmdlet writes, once known.</summary>
    protected FullStorySession? ActiveSession { get; set; }

    protected override void StopProcessing() => cancellation.Cancel();

    protected string Redact(string? text) => ActiveSession is null ? text ?? "" : ActiveSession.Redact(text);

    protected void Verbose(string message) => WriteVerbose(Redact(message));

    protected void Debug(string message) => WriteDebug(Redact(message));

    /// <summary>An ErrorRecord with a stable id, the key redacted from its message, and advice on what to do.</summary>
    protected ErrorRecord Error(Exception exception, string errorId, ErrorCategory category, object? target = null, string? recommendedAction = null)
    {
        string message = Redact(exception.Message);
        var safe = message == exception.Message ? exception : new InvalidOperationException(message);
        var record = new ErrorRecord(safe, errorId, category, target);
        if (recommendedAction is not null) record.ErrorDetails = new ErrorDetails(message) { RecommendedAction = recommendedAction };
        return record;
    }

    public void Dispose()
    {
        cancellation.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Base of cmdlets that talk to FullStory: -Session, or the runspace's default session from Connect-FullStory.</summary>
public abstract class FullStorySessionCmdlet : FullStoryCmdletBase
{
    /// <summary>The session to use; by default the one Connect-FullStory made for this runspace.</summary>
    [Parameter]
    public FullStorySession? Session { get; set; }

    protected override void BeginProcessing()
    {
        ActiveSession = Session ?? DefaultSessionStore.Get();
        if (ActiveSession is null)
        {
            ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException("There is no FullStory session. Run Connect-FullStory -ApiKey <key> first, or pass -Session."),
                "FullStory.NotConnected", ErrorCategory.ConnectionError, null));
        }
    }

    protected FullStorySession CurrentSession => ActiveSession!;
}
