using System.Management.Automation;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>Whether a command writes the database (and may create the file) or only reads one that must exist.</summary>
internal enum DatabaseAccess { Write, Read }

/// <summary>Where the embedded SQLite database is, for every cmdlet that takes -Path as its destination.</summary>
internal static class DatabasePath
{
    /// <summary>The embedded default when no destination is given: fullstory.db in the current location.</summary>
    public const string DefaultFile = "fullstory.db";

    /// <summary>
    /// Resolves against the current PowerShell location (not the process's directory); only the FileSystem provider will do.
    /// Says what to fix when the path cannot be a database file: a folder, a folder that does not exist, or (to read) no file.
    /// </summary>
    /// <exception cref="DatabasePathException">The path cannot be used; its message and action say why and what to do.</exception>
    public static string Resolve(PSCmdlet cmdlet, string? path, DatabaseAccess access = DatabaseAccess.Write)
    {
        path ??= DefaultFile;
        string resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out var provider, out _);
        if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"'{path}' is on the {provider.Name} provider; the database must be a file (run from a file system location or pass -Path).");

        if (Directory.Exists(resolved))
        {
            throw new DatabasePathException($"-Path '{resolved}' is a folder; it must name the database file in it.", "FullStory.InvalidPath",
                ErrorCategory.InvalidArgument, path, $"Pass the file, e.g. -Path '{System.IO.Path.Combine(resolved, DefaultFile)}'.");
        }
        if (access == DatabaseAccess.Read && !File.Exists(resolved))
        {
            throw new DatabasePathException($"The database '{resolved}' does not exist.", "FullStory.DatabaseNotFound", ErrorCategory.ObjectNotFound, path,
                $"Pass -Path with the database file Sync-FullStoryEvent or Export-FullStoryEvent wrote (default: {DefaultFile} in the current folder).");
        }
        string? folder = System.IO.Path.GetDirectoryName(resolved);
        if (access == DatabaseAccess.Write && !string.IsNullOrEmpty(folder) && !Directory.Exists(folder))
        {
            throw new DatabasePathException($"The folder '{folder}' of the database does not exist.", "FullStory.InvalidPath", ErrorCategory.ObjectNotFound, path,
                $"Create it first (New-Item -ItemType Directory -Force '{folder}'), or pass -Path in a folder that exists.");
        }
        return resolved;
    }
}

/// <summary>A database path that cannot work, with the error id, category and advice the cmdlet reports.</summary>
internal sealed class DatabasePathException(string message, string errorId, ErrorCategory category, object? target, string recommendedAction)
    : ArgumentException(message)
{
    public string ErrorId { get; } = errorId;
    public ErrorCategory Category { get; } = category;
    public object? Target { get; } = target;
    public string RecommendedAction { get; } = recommendedAction;
}
