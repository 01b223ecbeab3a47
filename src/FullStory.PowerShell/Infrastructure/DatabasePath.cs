using System.Management.Automation;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>Where the embedded SQLite database is, for every cmdlet that takes -Path as its destination.</summary>
internal static class DatabasePath
{
    /// <summary>The embedded default when no destination is given: fullstory.db in the current location.</summary>
    public const string DefaultFile = "fullstory.db";

    /// <summary>Resolves against the current PowerShell location (not the process's directory); only the FileSystem provider will do.</summary>
    public static string Resolve(PSCmdlet cmdlet, string? path)
    {
        path ??= DefaultFile;
        string resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out var provider, out _);
        if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"'{path}' is on the {provider.Name} provider; the database must be a file (run from a file system location or pass -Path).");
        return resolved;
    }
}
