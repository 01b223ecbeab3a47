using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using FullStory.Engine.Loading;

namespace FullStory.PowerShell.Completers;

/// <summary>
/// Tab completion for -Table: the tables already in the SQLite database named by -Path (resolved against the current
/// location, opened read-only, never created), or "events" (the default table) when there is no -Path, it does not
/// exist yet, or the destination is SQL Server (-ConnectionString: completion never connects to a server). With
/// -ParquetPath, the table folders of the lake.
/// </summary>
public sealed class TableCompleter : IArgumentCompleter
{
    public const string DefaultTable = "events";

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var tables = new List<string>();
        if (fakeBoundParameters is not null && fakeBoundParameters.Contains("ParquetPath"))
        {
            // A lake folder's tables are its folders that hold Parquet files (not the module's _fullstory).
            if (fakeBoundParameters["ParquetPath"] is string lake && Resolve(lake) is { } folder && Directory.Exists(folder))
                tables.AddRange(Directory.EnumerateDirectories(folder).Select(Path.GetFileName).OfType<string>()
                    .Where(n => !n.StartsWith('_') && !n.StartsWith('.')).Order(StringComparer.OrdinalIgnoreCase));
        }
        else if (fakeBoundParameters is not null && !fakeBoundParameters.Contains("ConnectionString"))
        {
            string? path = fakeBoundParameters.Contains("Path") ? fakeBoundParameters["Path"] as string
                : fakeBoundParameters.Contains("Database") ? fakeBoundParameters["Database"] as string : null;
            path ??= "fullstory.db"; // the cmdlets' default database in the current location
            string? file = Resolve(path);
            if (file is not null) tables.AddRange(SqliteCatalog.ListTables(file));
        }
        if (tables.Count == 0) tables.Add(DefaultTable);
        return Completion.Filter(tables, wordToComplete, t => $"Table {t}");
    }

    private static string? Resolve(string path)
    {
        try
        {
            using var ps = System.Management.Automation.PowerShell.Create(RunspaceMode.CurrentRunspace);
            var result = ps.AddCommand("Microsoft.PowerShell.Management\\Resolve-Path").AddParameter("LiteralPath", path)
                .AddParameter("ErrorAction", "Ignore").Invoke();
            return result.Count == 1 && result[0].BaseObject is PathInfo p && p.Provider.Name == "FileSystem" ? p.ProviderPath : null;
        }
        catch (Exception)
        {
            return null; // completion must never throw
        }
    }
}

/// <summary>Tab completion for -SegmentId: "everyone" (all data). Saved segments' ids are free text.</summary>
public sealed class SegmentIdCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Filter(new[] { "everyone" }, wordToComplete, _ => "everyone: all captured data (or type a saved segment's id)");
}

internal static class Completion
{
    /// <summary>Candidates starting with the typed word (quotes ignored, case-insensitive), quoted when they need it.</summary>
    public static IEnumerable<CompletionResult> Filter(IEnumerable<string> candidates, string? wordToComplete, Func<string, string> tooltip)
    {
        string typed = (wordToComplete ?? "").Trim('\'', '"');
        foreach (var c in candidates)
        {
            if (!c.StartsWith(typed, StringComparison.OrdinalIgnoreCase)) continue;
            string text = c.Any(ch => char.IsWhiteSpace(ch) || "'\"`$(){}[];,|&@#<>".Contains(ch)) ? "'" + c.Replace("'", "''") + "'" : c;
            yield return new CompletionResult(text, c, CompletionResultType.ParameterValue, tooltip(c));
        }
    }
}
