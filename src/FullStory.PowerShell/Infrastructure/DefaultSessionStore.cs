using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using FullStory.Engine.Api;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>The default session, one per runspace (as PSOpenAD keeps its default session), so parallel runspaces do not share keys.</summary>
internal static class DefaultSessionStore
{
    private static readonly ConditionalWeakTable<Runspace, FullStorySession> sessions = new();

    public static FullStorySession? Get() =>
        Runspace.DefaultRunspace is { } rs && sessions.TryGetValue(rs, out var s) ? s : null;

    public static void Set(FullStorySession session)
    {
        var rs = Runspace.DefaultRunspace ?? throw new InvalidOperationException("There is no current runspace.");
        sessions.AddOrUpdate(rs, session);
    }

    public static FullStorySession? Remove()
    {
        if (Runspace.DefaultRunspace is not { } rs || !sessions.TryGetValue(rs, out var s)) return null;
        sessions.Remove(rs);
        return s;
    }
}
