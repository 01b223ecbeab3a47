using System.Security.Cryptography;
using System.Text;
using FullStory.Engine.Loading;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Sync;

public enum SyncDestinationKind { Sqlite, SqlServer, Parquet }

/// <summary>
/// Where a sync writes, independent of the kind of store: opens stores and takes the run lock that keeps two runs of the
/// same destination table from doing the same work at once. SQLite: an exclusive lock file beside the database.
/// SQL Server: sp_getapplock owned by a dedicated session kept open for the run. Parquet: a lock file in the folder's _fullstory.
/// </summary>
public sealed class SyncDestination
{
    private readonly string target; // path or connection string: never printed

    private SyncDestination(SyncDestinationKind kind, string target, EventStoreOptions options)
    {
        Kind = kind;
        this.target = target;
        StoreOptions = options ?? throw new ArgumentNullException(nameof(options));
        TableName = kind == SyncDestinationKind.SqlServer ? (options.Schema ?? "dbo") + "." + options.Table : options.Table;
    }

    /// <summary>An embedded SQLite database file (created on first load).</summary>
    public static SyncDestination Sqlite(string path, EventStoreOptions? options = null)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("The database path must not be empty.", nameof(path));
        return new SyncDestination(SyncDestinationKind.Sqlite, Path.GetFullPath(path), options ?? new EventStoreOptions());
    }

    /// <summary>A SQL Server (or compatible) database.</summary>
    public static SyncDestination SqlServer(string connectionString, EventStoreOptions? options = null)
    {
        if (string.IsNullOrWhiteSpace(connectionString)) throw new ArgumentException("The connection string must not be empty.", nameof(connectionString));
        return new SyncDestination(SyncDestinationKind.SqlServer, connectionString, options ?? new EventStoreOptions());
    }

    /// <summary>A folder of Parquet files in Hive-style partitions (created on first load).</summary>
    public static SyncDestination Parquet(string folder, EventStoreOptions? options = null)
    {
        if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException("The folder must not be empty.", nameof(folder));
        return new SyncDestination(SyncDestinationKind.Parquet, Path.GetFullPath(folder), options ?? new EventStoreOptions());
    }

    public SyncDestinationKind Kind { get; }
    public EventStoreOptions StoreOptions { get; }
    /// <summary>The events table as recorded in run history: "events", or "schema.events" on SQL Server.</summary>
    public string TableName { get; }

    public IEventStore OpenStore() => Kind switch
    {
        SyncDestinationKind.Sqlite => EventStoreFactory.OpenSqlite(target, StoreOptions),
        SyncDestinationKind.SqlServer => EventStoreFactory.OpenSqlServer(target, StoreOptions),
        _ => EventStoreFactory.OpenParquet(target, StoreOptions),
    };

    /// <summary>SQLite and Parquet: the lock file used for runs into this table.</summary>
    internal string LockFilePath => Kind == SyncDestinationKind.Parquet
        ? ParquetEventStore.LockPath(target, StoreOptions.Table, "sync")
        : FileRunLock.PathFor(target, StoreOptions.Table);

    /// <summary>SQL Server: the sp_getapplock resource for runs into this table.</summary>
    internal string LockResource => SqlServerRunLock.ResourceFor(TableName);

    /// <summary>
    /// Takes the run lock for this destination table, waiting up to <paramref name="wait"/>; null when another run holds it.
    /// Dispose the result to release it. A process that dies releases it too (the OS closes the file / the server ends the session).
    /// </summary>
    public IDisposable? TryAcquireRunLock(TimeSpan wait, CancellationToken cancellationToken = default) => Kind == SyncDestinationKind.SqlServer
        ? SqlServerRunLock.TryAcquire(target, LockResource, wait, cancellationToken)
        : FileRunLock.TryAcquire(LockFilePath, wait, cancellationToken);

    internal string LockDescription => Kind == SyncDestinationKind.SqlServer ? $"the application lock '{LockResource}'" : $"the lock file {LockFilePath}";

    /// <summary>
    /// Records a run that ended without holding the run lock (Skipped, or failed while taking it), without waiting on the
    /// run that holds it. SQL Server: straight into the history (a loading run's transactions do not block it); returns the
    /// run id; a Parquet folder writes each run to a file of its own, so also at once. SQLite: the file has one writer at a time and a run loading a large batch holds it for as long as the batch
    /// takes, so the record is written to a file beside the lock instead, and whichever run holds the lock moves it into the
    /// history at its next checkpoint (after each batch, at its end) or, if that run dies, the next run does at its start.
    /// Returns null then: the run is numbered when it is moved.
    /// </summary>
    internal long? RecordWithoutLock(IEventStore store, SyncRunRecord run)
    {
        if (Kind != SyncDestinationKind.Sqlite) return store.BeginRun(run);
        PendingRuns.Write(LockFilePath, run);
        return null;
    }

    /// <summary>SQLite: moves runs recorded by <see cref="RecordWithoutLock"/> into the history. Call while holding the run lock.</summary>
    internal IReadOnlyList<SyncRunRecord> ImportPendingRuns(IEventStore store) =>
        Kind == SyncDestinationKind.Sqlite ? PendingRuns.Import(LockFilePath, store) : Array.Empty<SyncRunRecord>();
}

/// <summary>
/// Run records waiting to enter a SQLite destination's history: one small JSON file each beside the run lock, written under a
/// temporary name and renamed, so a reader never sees half a record. Moving one into the history first checks that it is not
/// there already (a mover that died between the insert and the delete), so a record is never entered twice.
/// </summary>
internal static class PendingRuns
{
    private const string Marker = ".pending-";

    public static void Write(string lockFilePath, SyncRunRecord run)
    {
        string final = lockFilePath + Marker + Guid.NewGuid().ToString("N") + ".json";
        string temp = final + ".tmp";
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        File.WriteAllText(temp, System.Text.Json.JsonSerializer.Serialize(run));
        File.Move(temp, final);
    }

    public static IReadOnlyList<SyncRunRecord> Import(string lockFilePath, IEventStore store)
    {
        string dir = Path.GetDirectoryName(lockFilePath)!;
        if (!Directory.Exists(dir)) return Array.Empty<SyncRunRecord>();
        var files = Directory.GetFiles(dir, Path.GetFileName(lockFilePath) + Marker + "*.json");
        if (files.Length == 0) return Array.Empty<SyncRunRecord>();
        var imported = new List<SyncRunRecord>();
        var existing = store.GetRuns(1000);
        foreach (var file in files.OrderBy(File.GetLastWriteTimeUtc))
        {
            SyncRunRecord? run;
            try { run = System.Text.Json.JsonSerializer.Deserialize<SyncRunRecord>(File.ReadAllText(file)); }
            catch (Exception ex) when (ex is IOException or System.Text.Json.JsonException) { continue; }
            if (run is null) continue;
            bool already = existing.Any(r => Ms(r.StartedAt) == Ms(run.StartedAt) && r.Outcome == run.Outcome && r.Table == run.Table && r.Host == run.Host);
            if (!already)
            {
                run.RunId = 0;
                store.BeginRun(run);
                imported.Add(run);
            }
            File.Delete(file);
        }
        return imported;
    }

    private static long Ms(DateTimeOffset t) => t.UtcTicks / TimeSpan.TicksPerMillisecond;
}

/// <summary>An exclusive lock file (FileShare.None) beside the SQLite database, held for the run.</summary>
internal sealed class FileRunLock : IDisposable
{
    private FileStream? stream;

    private FileRunLock(FileStream stream) => this.stream = stream;

    public static string PathFor(string databasePath, string table)
    {
        var invalid = Path.GetInvalidFileNameChars();
        string safe = new(table.Select(c => invalid.Contains(c) || char.IsControl(c) ? '_' : c).ToArray());
        return databasePath + ".sync-" + safe + ".lock";
    }

    public static FileRunLock? TryAcquire(string path, TimeSpan wait, CancellationToken cancellationToken) =>
        FileLock.TryAcquire(path, wait, cancellationToken) is { } fs ? new FileRunLock(fs) : null;

    public void Dispose()
    {
        stream?.Dispose();
        stream = null;
    }
}

/// <summary>sp_getapplock (Exclusive, owner Session) on a dedicated unpooled connection kept open for the run.</summary>
internal sealed class SqlServerRunLock : IDisposable
{
    /// <summary>Returns sp_getapplock's result: &gt;= 0 granted, -1 timed out, -2 cancelled, -3 deadlock victim, -999 error.</summary>
    internal const string AcquireSql =
        "DECLARE @result int; EXEC @result = sp_getapplock @Resource = @resource, @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = @timeout; SELECT @result;";

    internal const string ReleaseSql = "EXEC sp_releaseapplock @Resource = @resource, @LockOwner = N'Session';";

    private SqlConnection? connection;
    private readonly string resource;

    private SqlServerRunLock(SqlConnection connection, string resource)
    {
        this.connection = connection;
        this.resource = resource;
    }

    /// <summary>"FullStory.Sync:schema.table", hashed when longer than sp_getapplock's 255 characters.</summary>
    public static string ResourceFor(string table)
    {
        string name = "FullStory.Sync:" + table;
        if (name.Length <= 255) return name;
        return "FullStory.Sync:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(table)));
    }

    public static SqlServerRunLock? TryAcquire(string connectionString, string resource, TimeSpan wait, CancellationToken cancellationToken)
    {
        // Unpooled: closing the connection ends the session, and with it the lock, even if the release below failed.
        var builder = new SqlConnectionStringBuilder(connectionString) { Pooling = false };
        var c = new SqlConnection(builder.ConnectionString);
        try
        {
            c.Open();
            int timeoutMs = (int)Math.Clamp(wait.TotalMilliseconds, 0, int.MaxValue - 1);
            var cmd = new SqlCommand(AcquireSql, c) { CommandTimeout = (int)Math.Min(int.MaxValue, wait.TotalSeconds + 60) };
            cmd.Parameters.Add(new SqlParameter("@resource", System.Data.SqlDbType.NVarChar, 255) { Value = resource });
            cmd.Parameters.Add(new SqlParameter("@timeout", System.Data.SqlDbType.Int) { Value = timeoutMs });
            // Cancellable even when the server does not interrupt the lock wait for it (the connection then closes on its own).
            int result = Convert.ToInt32(SqlCancellation.Run(c, cmd, static x => x.ExecuteScalar(), cancellationToken));
            cmd.Dispose();
            if (result >= 0) return new SqlServerRunLock(c, resource);
            c.Dispose();
            if (result == -1) return null;
            throw new InvalidOperationException($"Could not take the sync lock '{resource}' (sp_getapplock returned {result}).");
        }
        catch (AbandonedCommandException)
        {
            throw; // the abandoned wait closes its connection when it ends
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        var c = connection;
        connection = null;
        if (c is null) return;
        try
        {
            using var cmd = new SqlCommand(ReleaseSql, c) { CommandTimeout = 30 };
            cmd.Parameters.Add(new SqlParameter("@resource", System.Data.SqlDbType.NVarChar, 255) { Value = resource });
            cmd.ExecuteNonQuery();
        }
        catch (Exception) { /* closing the session releases it anyway */ }
        finally { c.Dispose(); }
    }
}
