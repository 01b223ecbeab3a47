using System.Management.Automation;
using FullStory.Engine.Api;
using FullStory.Engine.Diagnostics;

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

    /// <summary>Verbose text from the engine, redacted; for <see cref="PipelineMessenger"/>.</summary>
    internal void WriteVerboseSafe(string message) => WriteVerbose(Redact(message));

    /// <summary>A DateTime from the command line as UTC: Local is converted, Unspecified (e.g. [datetime]'2026-01-01') is taken as UTC.</summary>
    protected static DateTimeOffset AsUtc(DateTime value) => new(UtcTimeTransformationAttribute.ToUtc(value), TimeSpan.Zero);

    protected void Debug(string message) => WriteDebug(Redact(message));

    /// <summary>Debug: the command, its parameter set (unless pipeline input is still to bind) and bound parameters (secrets shown as (hidden), the key redacted).</summary>
    protected void DebugInvocation()
    {
        var parts = MyInvocation.BoundParameters.Select(p => $"-{p.Key} " + (p.Key == "ConnectionString" && p.Value is string cs
            ? "'" + System.Text.RegularExpressions.Regex.Replace(cs, @"(?i)\b(password|pwd)\s*=\s*(""[^""]*""|'[^']*'|[^;]*)", "$1=****") + "'"
            : DescribeForDebug(p.Value)));
        // With pipeline input the parameter set is only known once the input binds, after BeginProcessing.
        string set = MyInvocation.ExpectingInput ? "[with pipeline input]" : $"[{ParameterSetName}]";
        Debug($"{MyInvocation.MyCommand.Name} {set} {string.Join(" ", parts)}".TrimEnd());
    }

    private static string DescribeForDebug(object? value) => value switch
    {
        null => "$null",
        System.Security.SecureString or PSCredential => "(hidden)",
        SwitchParameter s => s.IsPresent ? "" : ":$false",
        DateTime d => d.ToString("o", System.Globalization.CultureInfo.InvariantCulture) + $" ({d.Kind})",
        string str => "'" + str + "'",
        System.Collections.IEnumerable list => string.Join(",", list.Cast<object?>().Take(10).Select(DescribeForDebug)),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>An ErrorRecord with a stable id, the key redacted from its message, and advice on what to do.</summary>
    protected ErrorRecord Error(Exception exception, string errorId, ErrorCategory category, object? target = null, string? recommendedAction = null)
    {
        string message = Redact(exception.Message);
        var safe = message == exception.Message ? exception : new InvalidOperationException(message);
        var record = new ErrorRecord(safe, errorId, category, target);
        // Shown instead of the exception's text: without ArgumentException's " (Parameter 'x')" tail, which names a C# parameter.
        string shown = exception is ArgumentException { ParamName: { } name } ? message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : message;
        if (recommendedAction is not null || shown != message) record.ErrorDetails = new ErrorDetails(shown) { RecommendedAction = recommendedAction };
        return record;
    }

    /// <summary>
    /// Maps a failure (the engine's, SQLite's, SQL Server's, the file system's) to an ErrorRecord: wrappers such as
    /// AggregateException removed, a stable FullStory.* id, a category PowerShell users can filter on, and what to do.
    /// </summary>
    protected ErrorRecord ToErrorRecord(Exception ex, object? target)
    {
        if (ex is DatabasePathException path) return Error(path, path.ErrorId, path.Category, path.Target, path.RecommendedAction);
        var advice = FailureAdvisor.Describe(ex);
        return Error(advice.Exception, advice.ErrorId, CategoryOf(advice.Kind), target, advice.RecommendedAction);
    }

    /// <summary>The PowerShell error category for a kind of failure.</summary>
    protected static ErrorCategory CategoryOf(FailureKind kind) => kind switch
    {
        FailureKind.Authentication => ErrorCategory.AuthenticationError,
        FailureKind.NotFound => ErrorCategory.ObjectNotFound,
        FailureKind.Connection => ErrorCategory.ConnectionError,
        FailureKind.InvalidData => ErrorCategory.InvalidData,
        FailureKind.InvalidResult => ErrorCategory.InvalidResult,
        FailureKind.InvalidArgument => ErrorCategory.InvalidArgument,
        FailureKind.PermissionDenied => ErrorCategory.PermissionDenied,
        FailureKind.ResourceBusy => ErrorCategory.ResourceBusy,
        FailureKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        FailureKind.WriteError => ErrorCategory.WriteError,
        FailureKind.OperationTimeout => ErrorCategory.OperationTimeout,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>Makes <paramref name="explicitSession"/> (-Session), or else the runspace's default session, the active one (null when there is none).</summary>
    protected void UseSession(FullStorySession? explicitSession)
    {
        ActiveSession = explicitSession ?? DefaultSessionStore.Get();
        DebugInvocation();
        if (ActiveSession is not null)
            Debug($"Using {(explicitSession is null ? "the default session" : "-Session")}: {ActiveSession}; retries: {ActiveSession.Retry.MaxAttempts} attempts from {ActiveSession.Retry.BaseDelay}, export polls every {ActiveSession.Retry.PollInterval}, an export given up after {ActiveSession.Retry.ExportTimeout}.");
    }

    protected void ThrowIfNoSession()
    {
        if (ActiveSession is not null) return;
        ThrowTerminatingError(new ErrorRecord(
            new InvalidOperationException("There is no FullStory session. Run Connect-FullStory -ApiKey <key> first, or pass -Session."),
            "FullStory.NotConnected", ErrorCategory.ConnectionError, null));
    }

    protected FullStorySession CurrentSession => ActiveSession!;

    /// <summary>After Ctrl+C the engine throws OperationCanceledException; PowerShell expects the pipeline to stop quietly.</summary>
    protected bool IsStopping(Exception ex) => ex is OperationCanceledException && CancellationToken.IsCancellationRequested;

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

    /// <summary>
    /// False for parameter sets that work offline (e.g. reading local files). Checked in BeginProcessing, where a set bound
    /// from pipeline input is not known yet: such cmdlets answer false then and call <see cref="FullStoryCmdletBase.ThrowIfNoSession"/> later.
    /// </summary>
    protected virtual bool RequiresSession => true;

    protected override void BeginProcessing()
    {
        UseSession(Session);
        if (RequiresSession) ThrowIfNoSession();
    }
}
