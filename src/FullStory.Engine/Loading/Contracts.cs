namespace FullStory.Engine.Loading;

/// <summary>
/// One unit loaded exactly once: a bundle ("bundle:&lt;id&gt;"), a segment export window
/// ("export:&lt;segmentId&gt;:&lt;startIso&gt;/&lt;endIso&gt;"), or a pipeline group keyed by <see cref="Events.FullStoryEvent.Source"/>.
/// </summary>
public sealed record BatchInfo(string Key, DateTimeOffset? RangeStart = null, DateTimeOffset? RangeEnd = null)
{
    /// <summary>
    /// The sync run loading it (<see cref="IEventStore.BeginRun"/>): the batch is counted in that run's history record in its
    /// own commit, so the history is exact even when the process dies right after the commit.
    /// </summary>
    public long? RunId { get; init; }
}

/// <summary>A batch that the destination has recorded as loaded (the sync's bookmark).</summary>
public sealed record LoadedBatch(string Key, DateTimeOffset? RangeStart, DateTimeOffset? RangeEnd, long Rows, DateTimeOffset LoadedAt);

/// <summary>What one <see cref="IEventStore.LoadBatch"/> (or one source of <see cref="IEventStore.LoadEvents"/>) did.</summary>
public sealed class LoadReport
{
    public LoadReport(string batchKey, string destination, string table, long rows, long bytes, TimeSpan duration,
        bool alreadyLoaded, IReadOnlyList<string> columnsAdded, DateTimeOffset loadedAt,
        bool isComplete = true, long replacedRows = 0, long skippedEvents = 0)
    {
        BatchKey = batchKey;
        Destination = destination;
        Table = table;
        Rows = rows;
        Bytes = bytes;
        Duration = duration;
        AlreadyLoaded = alreadyLoaded;
        ColumnsAdded = columnsAdded;
        LoadedAt = loadedAt;
        IsComplete = isComplete;
        ReplacedRows = replacedRows;
        SkippedEvents = skippedEvents;
    }

    public string BatchKey { get; }
    /// <summary>Printable destination, never with a password: "sqlite:/abs/path.db" or "sqlserver:server/database".</summary>
    public string Destination { get; }
    public string Table { get; }
    /// <summary>Rows this load added.</summary>
    public long Rows { get; }
    public long Bytes { get; }
    public TimeSpan Duration { get; }
    /// <summary>True when the whole source was recorded as loaded before: nothing was written.</summary>
    public bool AlreadyLoaded { get; }
    public IReadOnlyList<string> ColumnsAdded { get; }
    public DateTimeOffset LoadedAt { get; }
    /// <summary>
    /// True when the destination now holds the whole source (every event of the bundle, window or file); false when it
    /// holds only the part a pipeline carried (filtered, cut short): a later complete load of the source adds the rest.
    /// </summary>
    public bool IsComplete { get; }
    /// <summary>Rows of an earlier partial load of this source that this complete load replaced (deleted and loaded again, in one transaction).</summary>
    public long ReplacedRows { get; }
    /// <summary>Events not written because the destination already held them (same source and position).</summary>
    public long SkippedEvents { get; }

    public override string ToString() => AlreadyLoaded
        ? $"{BatchKey}: already loaded into {Table}"
        : string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{BatchKey}: {Rows} {(Rows == 1 ? "row" : "rows")} into {Table} in {Duration.TotalSeconds:0.0} s{(IsComplete ? "" : " (part of the source)")}");
}

/// <summary>How a store names and shapes its tables.</summary>
public sealed class EventStoreOptions
{
    /// <summary>The events table; "events" by default (Stitch's model).</summary>
    public string Table { get; set; } = "events";
    /// <summary>SQL Server schema; dbo when null. Ignored by SQLite.</summary>
    public string? Schema { get; set; }
    /// <summary>SqlBulkCopy batch size (SQL Server). SQLite always commits a whole batch at once.</summary>
    public int BatchSize { get; set; } = 10000;
    /// <summary>
    /// SQL Server: how long one statement may wait for the server (a server that stops answering, a blocked statement)
    /// before the load fails and is rolled back. Default 5 minutes.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>
    /// SQL Server: how long the bulk copy may wait for the server to take more rows or to answer (not a limit on the whole
    /// load, which may take as long as the data needs) before the load fails and is rolled back. Default 5 minutes.
    /// </summary>
    public TimeSpan BulkCopyTimeout { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>
    /// SQL Server: how long a load waits for the table's load lock (held while another load of the same table runs, or by a
    /// session that never released it) before it fails. Default 10 minutes.
    /// </summary>
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromMinutes(10);
    /// <summary>Give every custom var a typed column of its own (added as new keys appear), besides CustomVars.</summary>
    public bool CustomVarColumns { get; set; }
    /// <summary>Asked before every CREATE TABLE / ALTER TABLE with a description of it; false = do not (WhatIf).</summary>
    public Func<string, bool>? ConfirmSchemaChange { get; set; }
    /// <summary>Verbose messages.</summary>
    public Action<string>? Log { get; set; }
}

/// <summary>One run of the scheduled sync (Stitch's extraction log / loading report), stored beside the data.</summary>
public sealed class SyncRunRecord
{
    public long RunId { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }
    public string Api { get; set; } = "";
    public string Table { get; set; } = "";
    /// <summary>Running, Succeeded, Failed, Cancelled or Skipped.</summary>
    public string Outcome { get; set; } = "Running";
    public int Batches { get; set; }
    public long Rows { get; set; }
    public long Bytes { get; set; }
    public int Retries { get; set; }
    public string? Error { get; set; }
    public DateTimeOffset? DataThrough { get; set; }
    public string? Host { get; set; }
}

/// <summary>A destination that loads batches of events exactly once, append-only, one row per event.</summary>
public interface IEventStore : IDisposable
{
    /// <summary>Printable, never a password: "sqlite:/abs/path/fullstory.db" or "sqlserver:server/database".</summary>
    string Destination { get; }

    /// <summary>The events table as reports show it: "events", or "schema.events" on SQL Server.</summary>
    string TableName { get; }

    bool IsLoaded(string batchKey);

    /// <summary>Every batch recorded for the table, oldest first: the database is the bookmark.</summary>
    IReadOnlyList<LoadedBatch> GetLoadedBatches();

    /// <summary>
    /// In one transaction: skip (AlreadyLoaded, Rows = 0) if the key is recorded; else ensure the table and columns,
    /// insert every event, record the key and commit. If enumerating <paramref name="events"/> throws, everything is
    /// rolled back and the exception propagates: retry the whole batch.
    /// </summary>
    LoadReport LoadBatch(BatchInfo batch, IEnumerable<Events.FullStoryEvent> events, Func<long>? bytesRead = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Loads events as a pipeline carries them, in one transaction: events of any number of sources, in any order, each
    /// identified by its <see cref="Events.FullStoryEvent.Source"/> and <see cref="Events.FullStoryEvent.SourceIndex"/>.
    /// Events of a source recorded as complete are skipped; of the others, every event the destination does not hold yet is
    /// written, and the source is recorded as partial, or as complete once the destination holds all of its events
    /// (the count comes from the source's last event). Events without a Source are keyed <paramref name="fallbackKey"/>.
    /// Returns one report per source met. If enumerating throws, everything is rolled back and the exception propagates.
    /// </summary>
    IReadOnlyList<LoadReport> LoadEvents(IEnumerable<Events.FullStoryEvent> events, string fallbackKey, CancellationToken cancellationToken = default);

    long BeginRun(SyncRunRecord run);
    void EndRun(SyncRunRecord run);
    IReadOnlyList<SyncRunRecord> GetRuns(int last = 20);
}

/// <summary>
/// An existing events table has a column whose type cannot hold what the module writes there (e.g. ids in a TEXT column).
/// Thrown before anything is created, altered or loaded.
/// </summary>
public sealed class IncompatibleTableException : InvalidOperationException
{
    public IncompatibleTableException(string destination, string table, IReadOnlyList<(string Column, string ExistingType, string RequiredType)> columns)
        : base(Describe(destination, table, columns))
    {
        Table = table;
        Columns = columns;
    }

    public string Table { get; }
    public IReadOnlyList<(string Column, string ExistingType, string RequiredType)> Columns { get; }

    private static string Describe(string destination, string table, IReadOnlyList<(string Column, string ExistingType, string RequiredType)> columns) =>
        $"The existing table {table} in {destination} cannot hold FullStory events: " +
        string.Join("; ", columns.Select(c => $"column {c.Column} is {c.ExistingType}, the module writes {c.RequiredType} there")) +
        ". Nothing was changed or loaded. Load into another table (-Table), or migrate these columns to the types named.";
}

/// <summary>
/// The destination failed a load: it did not answer in time, the connection was lost, or the table's load lock was not
/// granted. The load was rolled back (nothing of it was written); the message names what was being loaded and what to do.
/// </summary>
public sealed class DestinationLoadException : InvalidOperationException
{
    public DestinationLoadException(string what, string problem, string advice, Exception? inner)
        : base($"{what} could not be loaded: {problem} The load was rolled back: nothing of it was written. {advice}", inner)
    {
        What = what;
    }

    /// <summary>What was being loaded: "bundle:123 into dbo.events", or the sources of a pipeline load.</summary>
    public string What { get; }
}

/// <summary>Thrown when <see cref="EventStoreOptions.ConfirmSchemaChange"/> declined a table or column the load needs (e.g. -WhatIf).</summary>
public sealed class SchemaChangeDeclinedException : InvalidOperationException
{
    public SchemaChangeDeclinedException(string change) : base($"Not loaded: the change '{change}' was declined.") => Change = change;
    public string Change { get; }
}

public static class EventStoreFactory
{
    /// <summary>Opens (creating when missing) an embedded SQLite database file.</summary>
    public static IEventStore OpenSqlite(string path, EventStoreOptions options) => new SqliteEventStore(path, options);

    /// <summary>A SQL Server (or compatible) database; connections are opened (from the pool) per operation.</summary>
    public static IEventStore OpenSqlServer(string connectionString, EventStoreOptions options) => new SqlServerEventStore(connectionString, options);

    /// <summary>A folder of Parquet files in Hive-style partitions (created on first load), for Spark, Synapse, Fabric, DuckDB.</summary>
    public static IEventStore OpenParquet(string folder, EventStoreOptions options) => new ParquetEventStore(folder, options);
}
