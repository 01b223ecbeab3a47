using System.Management.Automation;
using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// Base of the cmdlets that read or write a destination (Get-FullStorySyncHistory; through
/// <see cref="FullStoryLoadingCmdlet"/>, Export-FullStoryEvent and Sync-FullStoryEvent): the destination parameters are
/// declared once here, one parameter set per kind of destination, and resolved into the engine's
/// <see cref="SyncDestination"/> in one place, with one set of errors. A new destination is a store in the engine, a
/// parameter set here and a case in <see cref="ResolveDestination"/>; the cmdlets do not change.
/// </summary>
public abstract class FullStoryDestinationCmdlet : FullStoryCmdletBase
{
    public const string SqliteSet = "Sqlite";
    public const string SqlServerSet = "SqlServer";
    public const string ParquetSet = "Parquet";

    /// <summary>The SQLite database file. Default: fullstory.db in the current location.</summary>
    [Parameter(Position = 0, ParameterSetName = SqliteSet)]
    [Alias("Database")]
    public string? Path { get; set; }

    /// <summary>A SQL Server (or compatible) connection string. Its password is never shown.</summary>
    [Parameter(Mandatory = true, ParameterSetName = SqlServerSet)]
    public string? ConnectionString { get; set; }

    /// <summary>A folder of Parquet files in Hive-style partitions (a data lake hand-off for Spark, Synapse, Fabric, DuckDB).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ParquetSet)]
    public string? ParquetPath { get; set; }

    /// <summary>The events table (default events).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(Completers.TableCompleter))]
    public string? Table { get; set; }

    /// <summary>SQL Server schema (default dbo); it must exist.</summary>
    [Parameter(ParameterSetName = SqlServerSet)]
    public string? Schema { get; set; }

    /// <summary>The table named by -Table, or the default one.</summary>
    protected string TableOrDefault => Table ?? Completers.TableCompleter.DefaultTable;

    /// <summary>
    /// The destination the bound parameters name. Decided by which destination parameter is bound, not by ParameterSetName:
    /// with pipeline input the set is chosen only when the first object arrives, after BeginProcessing. Validates the names
    /// and the connection string (nothing is opened or created yet); anything unusable is a terminating error with a stable
    /// id and what to do.
    /// </summary>
    private protected SyncDestination ResolveDestination(EventStoreOptions options, DatabaseAccess access)
    {
        options.Schema = Schema;
        string? target = ConnectionString is null ? ParquetPath ?? Path : null;
        try
        {
            options.Table = Identifiers.ValidateName(TableOrDefault, "Table");
            SyncDestination destination =
                ConnectionString is not null ? SyncDestination.SqlServer(ConnectionString, options)
                : ParquetPath is not null ? SyncDestination.Parquet(ResolveFolder(ParquetPath, access), options)
                : SyncDestination.Sqlite(DatabasePath.Resolve(this, Path, access), options);
            destination.OpenStore().Dispose();
            return destination;
        }
        catch (DatabasePathException ex)
        {
            ThrowTerminatingError(Error(ex, ex.ErrorId, ex.Category, ex.Target, ex.RecommendedAction));
        }
        catch (ArgumentException ex) when (ex.ParamName is "Table" or "Schema")
        {
            bool table = ex.ParamName == "Table";
            ThrowTerminatingError(Error(ex, table ? "FullStory.InvalidTable" : "FullStory.InvalidSchema", ErrorCategory.InvalidArgument,
                table ? Table : Schema, table
                    ? "Pass -Table with a name of 1 to 128 characters, without control characters or leading/trailing spaces (a Parquet table is a folder: no / \\ : * ? \" < > |, no leading '_' or '.')."
                    : "Pass another -Schema."));
        }
        catch (ArgumentException ex) when (ex.ParamName == "connectionString")
        {
            ThrowTerminatingError(Error(ex, "FullStory.InvalidConnectionString", ErrorCategory.InvalidArgument, null,
                "Check -ConnectionString, e.g. 'Server=host;Database=db;Integrated Security=true;TrustServerCertificate=true'."));
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or IOException)
        {
            ThrowTerminatingError(Error(ex, "FullStory.InvalidPath", ErrorCategory.InvalidArgument, target,
                ParquetPath is not null ? "Pass -ParquetPath with a file system folder." : "Pass -Path with a file system path for the database file."));
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>The lake folder: resolved against the current location, on the file system; to read, it must exist; to write, its parent must.</summary>
    private string ResolveFolder(string path, DatabaseAccess access)
    {
        string resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out var provider, out _);
        if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"'{path}' is on the {provider.Name} provider; the Parquet destination must be a folder on the file system.");
        if (File.Exists(resolved))
            throw new DatabasePathException($"-ParquetPath '{resolved}' is a file; it must name a folder (created on the first load).", "FullStory.InvalidPath",
                ErrorCategory.InvalidArgument, path, "Pass a folder, e.g. -ParquetPath ./lake.");
        if (access == DatabaseAccess.Read && !Directory.Exists(resolved))
            throw new DatabasePathException($"The folder '{resolved}' does not exist.", "FullStory.DatabaseNotFound", ErrorCategory.ObjectNotFound, path,
                "Pass -ParquetPath with the folder Sync-FullStoryEvent or Export-FullStoryEvent wrote.");
        string? parent = System.IO.Path.GetDirectoryName(resolved.TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar));
        if (access == DatabaseAccess.Write && !Directory.Exists(resolved) && !string.IsNullOrEmpty(parent) && !Directory.Exists(parent))
            throw new DatabasePathException($"The folder '{parent}' that would hold '{resolved}' does not exist.", "FullStory.InvalidPath", ErrorCategory.ObjectNotFound, path,
                $"Create it first (New-Item -ItemType Directory -Force '{parent}'), or pass -ParquetPath in a folder that exists.");
        return resolved;
    }
}

/// <summary>
/// Base of the cmdlets that load events (Export-FullStoryEvent, Sync-FullStoryEvent): the destination parameters, how
/// the events table is shaped, and the session that downloads from FullStory.
/// </summary>
public abstract class FullStoryLoadingCmdlet : FullStoryDestinationCmdlet
{
    /// <summary>Rows per SqlBulkCopy round trip (SQL Server). A batch always commits as a whole.</summary>
    [Parameter]
    [ValidateRange(1, 10_000_000)]
    public int BatchSize { get; set; } = 10000;

    /// <summary>
    /// SQL Server: how long the server may take to answer a statement, or to take more rows of the bulk copy, before the
    /// batch fails and is rolled back (default 5 minutes). Not a limit on a whole load, which takes as long as its data needs.
    /// </summary>
    [Parameter(ParameterSetName = SqlServerSet)]
    [TimeSpanArgument]
    [ValidatePositiveTimeSpan]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Also give every custom var (evt_*, user_*, page_*) a typed column of its own, added as new ones appear; CustomVars keeps them all anyway.</summary>
    [Parameter]
    public SwitchParameter CustomVarColumns { get; set; }

    /// <summary>The session to download with; by default the one Connect-FullStory made for this runspace.</summary>
    [Parameter]
    public FullStorySession? Session { get; set; }

    /// <summary>The table's shape as the parameters say; the destination fills in the names.</summary>
    protected EventStoreOptions LoadingOptions() => new()
    {
        BatchSize = BatchSize, CustomVarColumns = CustomVarColumns.IsPresent, CommandTimeout = CommandTimeout, BulkCopyTimeout = CommandTimeout,
    };
}
