using System.Security.Cryptography;
using System.Text;

namespace FullStory.Engine.Loading;

/// <summary>
/// Every T-SQL statement the SQL Server store issues, in one place, so a test can generate them all for a sample
/// (and a hostile) schema and parse each with ScriptDom. Identifiers are always bracket-quoted with ] doubled;
/// values are always parameters. Kept to what SQL-Server-compatible servers run: no MERGE, one ALTER TABLE ADD per column.
/// </summary>
public sealed class SqlServerStatements
{
    public SqlServerStatements(string schema, string table)
    {
        Schema = Identifiers.ValidateName(schema, "Schema", "schema");
        Table = Identifiers.ValidateName(table, "Table");
    }

    public string Schema { get; }
    public string Table { get; }

    public static string Quote(string identifier) => "[" + identifier.Replace("]", "]]") + "]";

    public string EventsTable => Quote(Schema) + "." + Quote(Table);
    public string StateTable => Quote(Schema) + "." + Quote(Identifiers.StateTable);
    public string RunsTable => Quote(Schema) + "." + Quote(Identifiers.RunsTable);

    /// <summary>The sp_getapplock resource for loads into this table (at most 255 characters; hashed when longer).</summary>
    public string LockResource
    {
        get
        {
            string r = ("fullstory-load:" + Schema + "." + Table).ToLowerInvariant(); // identifiers compare case-insensitively
            return r.Length <= 255 ? r : "fullstory-load:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(r)));
        }
    }

    /// <summary>
    /// The sp_getapplock resource for creating or altering the schema's bookkeeping tables (fullstory_sync_state and
    /// fullstory_sync_runs), which every events table of the schema shares.
    /// </summary>
    public string BookkeepingLockResource
    {
        get
        {
            string r = ("fullstory-bookkeeping:" + Schema).ToLowerInvariant();
            return r.Length <= 255 ? r : "fullstory-bookkeeping:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(r)));
        }
    }

    public static string TypeOf(ColumnDef column) => column.Kind switch
    {
        ColumnKind.Int64 => "bigint",
        ColumnKind.Int32 => "int",
        ColumnKind.Double => "float",
        ColumnKind.Boolean => "bit",
        ColumnKind.Timestamp => "datetime2(3)",
        ColumnKind.Text when column.MaxLength is int n && n <= 4000 => $"nvarchar({n})",
        _ => "nvarchar(max)",
    };

    /// <summary>Takes the exclusive load lock for the table, owned by the current transaction; returns sp_getapplock's result (&gt;= 0 = granted).</summary>
    public string GetAppLock =>
        "DECLARE @result int; EXEC @result = sp_getapplock @Resource = @resource, @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = @timeout; SELECT @result;";

    /// <summary>1 when the table @table exists in schema @schema. Also used for the state and runs tables.</summary>
    public const string TableExists =
        "SELECT COUNT(*) FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE s.name = @schema AND t.name = @table;";

    public const string SchemaExists = "SELECT COUNT(*) FROM sys.schemas WHERE name = @schema;";

    /// <summary>The names of the table's columns as declared, in table order (see <see cref="GetColumnTypes"/>).</summary>
    public const string GetColumns =
        "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = @schema AND TABLE_NAME = @table ORDER BY ORDINAL_POSITION;";

    public string CreateEventsTable(IEnumerable<ColumnDef> columns) =>
        $"CREATE TABLE {EventsTable} ({string.Join(", ", columns.Select(c => Quote(c.Name) + " " + TypeOf(c) + " NULL"))});";

    /// <summary>One column per statement: the multi-column form is not accepted by every compatible server.</summary>
    public string AddColumn(ColumnDef column) => $"ALTER TABLE {EventsTable} ADD {Quote(column.Name)} {TypeOf(column)} NULL;";

    /// <summary>
    /// Every column of the table @table in schema @schema, in table order: name, type name, length in characters (-1 = max),
    /// numeric precision, numeric scale, fractional-seconds precision. From the ISO view rather than sys.columns: it reports
    /// each name as declared (case included) on SQL Server and on compatible servers alike, and the load relies on the exact names.
    /// </summary>
    public const string GetColumnTypes =
        "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION FROM INFORMATION_SCHEMA.COLUMNS " +
        "WHERE TABLE_SCHEMA = @schema AND TABLE_NAME = @table ORDER BY ORDINAL_POSITION;";

    /// <summary>
    /// 1 when the state table has is_complete (older versions made it without; all their records are of whole sources).
    /// The ISO view, like every column lookup here (a compatible server's sys.columns has been seen to fail while another
    /// session alters a table).
    /// </summary>
    public string StateHasCompleteness =>
        $"SELECT COUNT(*) FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = @schema AND TABLE_NAME = N'{Identifiers.StateTable}' AND COLUMN_NAME = N'is_complete';";

    public string CreateStateTable =>
        $"CREATE TABLE {StateTable} (id bigint IDENTITY(1,1) NOT NULL PRIMARY KEY, table_name nvarchar(128) NOT NULL, " +
        $"batch_key nvarchar({EventTableModel.MaxBatchKeyLength}) NOT NULL, range_start datetimeoffset(3) NULL, range_end datetimeoffset(3) NULL, " +
        "row_count bigint NOT NULL, byte_count bigint NOT NULL, loaded_at datetimeoffset(3) NOT NULL, " +
        $"is_complete bit NOT NULL CONSTRAINT {Quote("DF_" + Identifiers.StateTable + "_is_complete")} DEFAULT (1), source_events bigint NULL, " +
        $"CONSTRAINT {Quote("UQ_" + Identifiers.StateTable + "_table_batch")} UNIQUE (table_name, batch_key));";

    public string AddStateCompleteness =>
        $"ALTER TABLE {StateTable} ADD is_complete bit NOT NULL CONSTRAINT {Quote("DF_" + Identifiers.StateTable + "_is_complete")} DEFAULT (1);";

    /// <summary>One column per statement: the multi-column form is not accepted by every compatible server.</summary>
    public string AddStateSourceEvents => $"ALTER TABLE {StateTable} ADD source_events bigint NULL;";

    /// <summary>A source's record; <paramref name="withCompleteness"/> false for a state table made by an older version (every record complete).</summary>
    public string GetRecord(bool withCompleteness) =>
        $"SELECT {(withCompleteness ? "is_complete" : "CAST(1 AS bit)")}, row_count, range_start, range_end, {(withCompleteness ? "source_events" : "CAST(NULL AS bigint)")} FROM {StateTable} WHERE table_name = @table AND batch_key = @key;";

    /// <summary>Inserts the batch's record; the WHERE NOT EXISTS (and the unique constraint) make a duplicate impossible.</summary>
    public string Record =>
        $"INSERT INTO {StateTable} (table_name, batch_key, range_start, range_end, row_count, byte_count, loaded_at, is_complete, source_events) " +
        $"SELECT @table, @key, @range_start, @range_end, @rows, @bytes, @loaded_at, @is_complete, @source_events WHERE NOT EXISTS (SELECT 1 FROM {StateTable} WHERE table_name = @table AND batch_key = @key);";

    /// <summary>Updates a partial source's record (more of it loaded, or all of it).</summary>
    public string UpdateRecord =>
        $"UPDATE {StateTable} SET is_complete = @is_complete, source_events = @source_events, row_count = @rows, byte_count = @bytes, range_start = @range_start, range_end = @range_end, " +
        "loaded_at = @loaded_at WHERE table_name = @table AND batch_key = @key;";

    /// <summary>The rows of one source (an earlier partial load, replaced by the whole source).</summary>
    public string DeleteRows => $"DELETE FROM {EventsTable} WHERE {Quote(EventTableModel.BatchColumn)} = @key;";

    /// <summary>The positions in their source of one source's rows.</summary>
    public string GetIndexes =>
        $"SELECT {Quote(EventTableModel.SourceIndexColumn)} FROM {EventsTable} WHERE {Quote(EventTableModel.BatchColumn)} = @key AND {Quote(EventTableModel.SourceIndexColumn)} IS NOT NULL;";

    /// <summary>The bookmark: complete sources only.</summary>
    public string GetLoadedBatches(bool withCompleteness) =>
        $"SELECT batch_key, range_start, range_end, row_count, loaded_at FROM {StateTable} WHERE table_name = @table{(withCompleteness ? " AND is_complete = 1" : "")} ORDER BY id;";

    public string CreateRunsTable =>
        $"CREATE TABLE {RunsTable} (run_id bigint IDENTITY(1,1) NOT NULL PRIMARY KEY, started_at datetimeoffset(3) NOT NULL, ended_at datetimeoffset(3) NULL, " +
        "api nvarchar(64) NOT NULL, table_name nvarchar(128) NOT NULL, outcome nvarchar(32) NOT NULL, batches int NOT NULL, row_count bigint NOT NULL, " +
        "byte_count bigint NOT NULL, retries int NOT NULL, error nvarchar(max) NULL, data_through datetimeoffset(3) NULL, host nvarchar(256) NULL);";

    public string BeginRun =>
        $"INSERT INTO {RunsTable} (started_at, ended_at, api, table_name, outcome, batches, row_count, byte_count, retries, error, data_through, host) " +
        "VALUES (@started_at, @ended_at, @api, @table_name, @outcome, @batches, @rows, @bytes, @retries, @error, @data_through, @host); " +
        "SELECT CAST(SCOPE_IDENTITY() AS bigint);";

    public string EndRun =>
        $"UPDATE {RunsTable} SET started_at = @started_at, ended_at = @ended_at, api = @api, table_name = @table_name, outcome = @outcome, batches = @batches, " +
        "row_count = @rows, byte_count = @bytes, retries = @retries, error = @error, data_through = @data_through, host = @host WHERE run_id = @run_id;";

    /// <summary>In a batch's transaction: the batch counts in its run's record, committed with it.</summary>
    public string CountInRun =>
        $"UPDATE {RunsTable} SET batches = batches + 1, row_count = row_count + @rows, byte_count = byte_count + @bytes WHERE run_id = @run_id;";

    public string GetRuns =>
        "SELECT TOP (@last) run_id, started_at, ended_at, api, table_name, outcome, batches, row_count, byte_count, retries, error, data_through, host " +
        $"FROM {RunsTable} ORDER BY run_id DESC;";

    /// <summary>Every statement, generated for the given column sample (for the ScriptDom test).</summary>
    public IEnumerable<(string Name, string Sql)> All(IReadOnlyList<ColumnDef> columns)
    {
        yield return (nameof(GetAppLock), GetAppLock);
        yield return (nameof(TableExists), TableExists);
        yield return (nameof(SchemaExists), SchemaExists);
        yield return (nameof(GetColumns), GetColumns);
        yield return (nameof(CreateEventsTable), CreateEventsTable(columns));
        foreach (var c in columns) yield return (nameof(AddColumn) + ":" + c.Name, AddColumn(c));
        yield return (nameof(GetColumnTypes), GetColumnTypes);
        yield return (nameof(StateHasCompleteness), StateHasCompleteness);
        yield return (nameof(CreateStateTable), CreateStateTable);
        yield return (nameof(AddStateCompleteness), AddStateCompleteness);
        yield return (nameof(AddStateSourceEvents), AddStateSourceEvents);
        yield return (nameof(GetRecord), GetRecord(true));
        yield return (nameof(GetRecord) + ":legacy", GetRecord(false));
        yield return (nameof(Record), Record);
        yield return (nameof(UpdateRecord), UpdateRecord);
        yield return (nameof(DeleteRows), DeleteRows);
        yield return (nameof(GetIndexes), GetIndexes);
        yield return (nameof(GetLoadedBatches), GetLoadedBatches(true));
        yield return (nameof(GetLoadedBatches) + ":legacy", GetLoadedBatches(false));
        yield return (nameof(CreateRunsTable), CreateRunsTable);
        yield return (nameof(BeginRun), BeginRun);
        yield return (nameof(EndRun), EndRun);
        yield return (nameof(CountInRun), CountInRun);
        yield return (nameof(GetRuns), GetRuns);
    }
}
