using System.Management.Automation;
using System.Net;
using System.Security;
using FullStory.Engine.Api;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>Connect-FullStory: makes the session every other cmdlet uses by default in this runspace.</summary>
[Cmdlet(VerbsCommunications.Connect, "FullStory", DefaultParameterSetName = ApiKeySet)]
[OutputType(typeof(FullStorySession))]
public sealed class ConnectFullStoryCommand : FullStoryCmdletBase
{
    private const string ApiKeySet = "ApiKey";
    private const string CredentialSet = "Credential";
    public const string ApiKeyVariable = "FULLSTORY_API_KEY";

    /// <summary>The API key, as a SecureString or a plain string. Defaults to $env:FULLSTORY_API_KEY.</summary>
    [Parameter(Position = 0, ParameterSetName = ApiKeySet)]
    [SecureStringTransformation]
    public SecureString? ApiKey { get; set; }

    /// <summary>A credential whose password is the API key (the user name is ignored).</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSet)]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>The data centre; by default taken from the key's prefix (na1. or eu1.).</summary>
    [Parameter]
    public FullStoryRegion? Region { get; set; }

    /// <summary>Send every request to this base URI instead (a proxy, or the local emulator). Plain http only to this machine.</summary>
    [Parameter]
    public Uri? BaseUri { get; set; }

    /// <summary>Attempts per request before giving up (first try included).</summary>
    [Parameter]
    [ValidateRange(1, 100)]
    public int MaxAttempts { get; set; } = 6;

    /// <summary>The first retry delay; later ones grow exponentially, with jitter.</summary>
    [Parameter]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often to ask about a segment export that is still being prepared.</summary>
    [Parameter]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one segment export may stay unfinished before it is given up as failed (default 2 hours): a scheduled run always ends.</summary>
    [Parameter]
    [TimeSpanArgument]
    [ValidatePositiveTimeSpan]
    public TimeSpan ExportTimeout { get; set; } = TimeSpan.FromHours(2);

    /// <summary>Also write the session to the pipeline.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void EndProcessing()
    {
        string? key = ParameterSetName == CredentialSet
            ? Credential!.GetNetworkCredential().Password
            : ApiKey is not null ? new NetworkCredential(string.Empty, ApiKey).Password
            : Environment.GetEnvironmentVariable(ApiKeyVariable);

        if (string.IsNullOrWhiteSpace(key))
        {
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"No FullStory API key: pass -ApiKey or -Credential, or set the {ApiKeyVariable} environment variable."),
                "FullStory.NoApiKey", ErrorCategory.InvalidArgument, null));
        }

        FullStorySession session;
        try
        {
            var retry = new RetrySettings { MaxAttempts = MaxAttempts, BaseDelay = RetryDelay, PollInterval = PollInterval, ExportTimeout = ExportTimeout };
            session = new FullStorySession(new ApiKeyCredential(key!), Region, BaseUri, retry);
        }
        catch (ArgumentException ex)
        {
            // The exception text never contains the key: ApiKeyCredential and ValidateBaseUri describe, not echo.
            ThrowTerminatingError(new ErrorRecord(new ArgumentException(ex.Message), "FullStory.InvalidConnection", ErrorCategory.InvalidArgument, BaseUri));
            return;
        }

        ActiveSession = session;
        DebugInvocation();
        if (session.IsRegionAssumed && BaseUri is null)
        {
            WriteWarning($"The API key has no data-centre prefix (na1. or eu1.): assuming region {session.Region} ({session.ApiBaseUri.Host}, which routes requests by key). " +
                         "Pass -Region Eu1 for an account in FullStory's EU data centre.");
        }
        Debug($"Key source: {(ParameterSetName == CredentialSet ? "-Credential" : ApiKey is not null ? "-ApiKey" : "$env:" + ApiKeyVariable)}; region {session.Region}{(Region is null ? " (from the key)" : " (-Region)")}; API {session.ApiBaseUri}; export {session.ExportBaseUri}.");
        DefaultSessionStore.Remove()?.Dispose();
        DefaultSessionStore.Set(session);
        Verbose($"Connected: {session}.");
        if (PassThru) WriteObject(session);
    }
}
