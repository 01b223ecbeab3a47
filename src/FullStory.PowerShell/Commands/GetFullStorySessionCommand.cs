using System.Management.Automation;
using FullStory.Engine.Api;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>Get-FullStorySession: shows this runspace's default session (region, base URI, masked key).</summary>
[Cmdlet(VerbsCommon.Get, "FullStorySession")]
[OutputType(typeof(FullStorySession))]
public sealed class GetFullStorySessionCommand : FullStoryCmdletBase
{
    protected override void EndProcessing()
    {
        var session = DefaultSessionStore.Get();
        if (session is null)
        {
            WriteError(new ErrorRecord(
                new InvalidOperationException("There is no FullStory session. Run Connect-FullStory -ApiKey <key> first."),
                "FullStory.NotConnected", ErrorCategory.ObjectNotFound, null));
            return;
        }
        WriteObject(session);
    }
}
