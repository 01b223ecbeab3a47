using System.Management.Automation;
using FullStory.PowerShell.Infrastructure;

namespace FullStory.PowerShell.Commands;

/// <summary>Disconnect-FullStory: forgets this runspace's default session.</summary>
[Cmdlet(VerbsCommunications.Disconnect, "FullStory")]
[OutputType(typeof(void))]
public sealed class DisconnectFullStoryCommand : FullStoryCmdletBase
{
    protected override void EndProcessing()
    {
        var session = DefaultSessionStore.Remove();
        if (session is null)
        {
            WriteVerbose("There was no FullStory session to disconnect.");
            return;
        }
        WriteVerbose($"Disconnected: {session}.");
        session.Dispose();
    }
}
