using SQLitePCL;
using System.Globalization;
using FullStory.Engine.Events;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Loading;

/// <summary>
/// The embedded default: one SQLite file in WAL mode. One transaction per batch, opened with BEGIN IMMEDIATE so two
/// loaders (processes or threads) serialise on the file's write lock and the second sees the first's record.
/// </summary>
internal sealed class SqliteEventStore : EventStoreBase
{
    private const int BusyTimeoutSeconds = 120;
    private readonly string path;
    private SqliteConnection? connection;

    public SqliteEventStore(string path, EventStoreOptions options) : base(options)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("The database path must not be empty.", nameof(path));
        this.path = Path.GetFullPath(path);
    }

    public override string Destination => "sqlite:" + path;
    protected override bool EnforcesMaxLength => false;
    protected override string DisplayTable => Table;

    internal static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"") + "\"";

    internal static string TypeOf(ColumnKind kind) => kind switch
    {
        ColumnKind.Int64 or ColumnKind.Int32 or ColumnKind.Boolean => "INTEGER",
        ColumnKind.Double => "REAL",
        _ => "TEXT", // text, JSON, and timestamps as ISO 8601 UTC text with milliseconds (sorts and compares correctly)
    };

    /// <summary>The open connection; null when the file does not exist and <paramref name="create"/> is false.</summary>
    private SqliteConnection? Open(bool create)
    {
        if (connection is not null) return connection;
        if (!File.Exists(path))
        {
            if (!create) return null;
            Require($"Create SQLite database {path}");
        }
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false, // release the file when the store is disposed
            DefaultTimeout = BusyTimeoutSeconds,
        };
        var c = new SqliteConnection(builder.ConnectionString);
        try
        {
            c.Open();
            Execute(c, null, $"PRAGMA busy_timeout = {BusyTimeoutSeconds * 1000};");
            Execute(c, null, "PRAGMA journal_mode = WAL;");
            Execute(c, null, "PRAGMA synchronous = NORMAL;"); // in WAL mode a commit stays atomic; FULL only adds power-loss durability
        }
        catch
        {
            c.Dispose();
            throw;
        }
        return connection = c;
    }

    private static void Execute(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (n, v) in parameters) cmd.Parameters.AddWithValue(n, v ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (n, v) in parameters) cmd.Parameters.AddWithValue(n, v ?? DBNull.Value);
        return cmd.ExecuteScalar();
    }

    private static bool TableExists(SqliteConnection c, SqliteTransaction? tx, string name) =>
        Convert.ToInt64(Scalar(c, tx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $name COLLATE NOCASE;", ("$name", name))) > 0;

    private static string Iso(DateTimeOffset value) => EventTableModel.FormatTimestamp(value.UtcDateTime);

    private static DateTimeOffset ParseIso(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static DateTimeOffset? ParseIsoOrNull(object? value) => value is string s ? ParseIso(s) : null;

    internal static object ToParameter(object? value) => value switch
    {
        null => DBNull.Value,
        DateTime d => EventTableModel.FormatTimestamp(d),
        bool b => b ? 1L : 0L,
        _ => value,
    };

    /// <summary>Whether the state table has is_complete (tables made by older versions do not: all their records are of whole sources).</summary>
    private static StateTableShape StateShape(SqliteConnection c, SqliteTransaction? tx)
    {
        if (!TableExists(c, tx, Identifiers.StateTable)) return StateTableShape.Missing;
        return Convert.ToInt64(Scalar(c, tx, "SELECT count(*) FROM pragma_table_info($t) WHERE name = 'is_complete';", ("$t", Identifiers.StateTable))) > 0
            ? StateTableShape.Current : StateTableShape.WithoutCompleteness;
    }

    private static string CompleteColumn(StateTableShape shape) => shape == StateTableShape.Current ? "is_complete" : "1";
    private static string SourceEventsColumn(StateTableShape shape) => shape == StateTableShape.Current ? "source_events" : "NULL";

    private BatchRecord? GetRecord(SqliteConnection c, SqliteTransaction? tx, string batchKey, StateTableShape? knownShape = null)
    {
        var shape = knownShape ?? StateShape(c, tx);
        if (shape == StateTableShape.Missing) return null;
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"SELECT {CompleteColumn(shape)}, row_count, range_start, range_end, {SourceEventsColumn(shape)} FROM {Quote(Identifiers.StateTable)} WHERE table_name = $t AND batch_key = $k;";
        cmd.Parameters.AddWithValue("$t", Table);
        cmd.Parameters.AddWithValue("$k", batchKey);
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        return new BatchRecord(batchKey, r.GetInt64(0) != 0, r.GetInt64(1), ParseIsoOrNull(r.GetValue(2)), ParseIsoOrNull(r.GetValue(3)),
            r.IsDBNull(4) ? null : r.GetInt64(4));
    }

    public override bool IsLoaded(string batchKey)
    {
        ValidateKey(batchKey);
        var c = Open(create: false);
        return c is not null && GetRecord(c, null, batchKey) is { IsComplete: true };
    }

    public override IReadOnlyList<LoadedBatch> GetLoadedBatches()
    {
        var c = Open(create: false);
        var list = new List<LoadedBatch>();
        if (c is null) return list;
        var shape = StateShape(c, null);
        if (shape == StateTableShape.Missing) return list;
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT batch_key, range_start, range_end, row_count, loaded_at FROM {Quote(Identifiers.StateTable)} " +
                          $"WHERE table_name = $t AND {CompleteColumn(shape)} = 1 ORDER BY id;";
        cmd.Parameters.AddWithValue("$t", Table);
        using var r = cmd.ExecuteReader();
        while (r.Read())
            list.Add(new LoadedBatch(r.GetString(0), ParseIsoOrNull(r.GetValue(1)), ParseIsoOrNull(r.GetValue(2)), r.GetInt64(3), ParseIso(r.GetString(4))));
        return list;
    }

    /// <summary>
    /// SQLite stores by type affinity (from the declared type's name): integers need INTEGER or NUMERIC affinity, doubles
    /// REAL or NUMERIC, text (also timestamps and JSON) TEXT; a column without a type (BLOB affinity) keeps any value as given.
    /// </summary>
    protected override string? RequiredTypeFor(ColumnDef column, ExistingColumn existing)
    {
        var affinity = AffinityOf(existing.TypeName);
        bool ok = affinity == "BLOB" || column.Kind switch
        {
            ColumnKind.Int64 or ColumnKind.Int32 or ColumnKind.Boolean => affinity is "INTEGER" or "NUMERIC",
            ColumnKind.Double => affinity is "REAL" or "NUMERIC",
            _ => affinity == "TEXT",
        };
        return ok ? null : TypeOf(column.Kind) + (column.Kind switch
        {
            ColumnKind.Int64 => " (64-bit integers)",
            ColumnKind.Timestamp => " (ISO 8601 UTC timestamps with milliseconds)",
            ColumnKind.Json => " (JSON text)",
            _ => "",
        });
    }

    /// <summary>SQLite's rules for a declared type's affinity (https://sqlite.org/datatype3.html, 3.1).</summary>
    internal static string AffinityOf(string declaredType)
    {
        var t = declaredType.ToUpperInvariant();
        if (t.Contains("INT")) return "INTEGER";
        if (t.Contains("CHAR") || t.Contains("CLOB") || t.Contains("TEXT")) return "TEXT";
        if (t.Length == 0 || t.Contains("BLOB")) return "BLOB";
        if (t.Contains("REAL") || t.Contains("FLOA") || t.Contains("DOUB")) return "REAL";
        return "NUMERIC";
    }

    protected override BatchTransaction BeginBatch(CancellationToken cancellationToken)
    {
        var c = Open(create: true)!;
        // BEGIN IMMEDIATE: takes the write lock now (waiting up to the busy timeout), so the "already loaded?" check
        // below and the commit are one atomic step with respect to every other writer of this file.
        var tx = c.BeginTransaction(deferred: false);
        return new Transaction(this, c, tx);
    }

    private sealed class Transaction : BatchTransaction
    {
        private readonly SqliteEventStore store;
        private readonly SqliteConnection c;
        private SqliteTransaction? tx;

        public Transaction(SqliteEventStore store, SqliteConnection c, SqliteTransaction tx)
        {
            this.store = store;
            this.c = c;
            this.tx = tx;
        }

        private string T => Quote(store.Table);

        // Read once per transaction: the database is locked for it, so only this transaction changes the state table.
        private StateTableShape? shape;

        public override StateTableShape GetStateTableShape() => shape ??= StateShape(c, tx);

        public override void CreateStateTable()
        {
            Execute(c, tx,
                $"CREATE TABLE IF NOT EXISTS {Quote(Identifiers.StateTable)} (id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, " +
                "batch_key TEXT NOT NULL, range_start TEXT, range_end TEXT, row_count INTEGER NOT NULL, byte_count INTEGER NOT NULL, " +
                "loaded_at TEXT NOT NULL, is_complete INTEGER NOT NULL DEFAULT 1, source_events INTEGER, UNIQUE (table_name, batch_key));");
            shape = StateTableShape.Current;
        }

        public override void AddStateCompleteness()
        {
            Execute(c, tx, $"ALTER TABLE {Quote(Identifiers.StateTable)} ADD COLUMN is_complete INTEGER NOT NULL DEFAULT 1;");
            Execute(c, tx, $"ALTER TABLE {Quote(Identifiers.StateTable)} ADD COLUMN source_events INTEGER;");
            shape = StateTableShape.Current;
        }

        public override BatchRecord? GetRecord(string batchKey) => store.GetRecord(c, tx, batchKey, GetStateTableShape());

        public override IReadOnlyList<ExistingColumn>? GetEventColumns()
        {
            if (!TableExists(c, tx, store.Table)) return null;
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT name, type FROM pragma_table_info($t);";
            cmd.Parameters.AddWithValue("$t", store.Table);
            using var r = cmd.ExecuteReader();
            var columns = new List<ExistingColumn>();
            while (r.Read())
            {
                string type = r.IsDBNull(1) ? "" : r.GetString(1);
                columns.Add(new ExistingColumn(r.GetString(0), type, type.Length == 0 ? "(no type)" : type));
            }
            return columns;
        }

        public override long DeleteRows(string batchKey)
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = $"DELETE FROM {T} WHERE {Quote(EventTableModel.BatchColumn)} = $k;";
            cmd.Parameters.AddWithValue("$k", batchKey);
            return cmd.ExecuteNonQuery();
        }

        public override void ReadIndexes(string batchKey, IndexSet into)
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = $"SELECT {Quote(EventTableModel.SourceIndexColumn)} FROM {T} WHERE {Quote(EventTableModel.BatchColumn)} = $k AND {Quote(EventTableModel.SourceIndexColumn)} IS NOT NULL;";
            cmd.Parameters.AddWithValue("$k", batchKey);
            using var r = cmd.ExecuteReader();
            while (r.Read()) into.Add(r.GetInt64(0));
        }

        public override void CreateEventsTable(IReadOnlyList<ColumnDef> columns) => Execute(c, tx,
            $"CREATE TABLE {T} ({string.Join(", ", columns.Select(col => Quote(col.Name) + " " + TypeOf(col.Kind)))});");

        public override void AddColumn(ColumnDef column) => Execute(c, tx, $"ALTER TABLE {T} ADD COLUMN {Quote(column.Name)} {TypeOf(column.Kind)};");

        public override void WriteRows(RowStream rows, CancellationToken cancellationToken)
        {
            // One prepared INSERT per segment (column set), bound through SQLite's own API: Microsoft.Data.Sqlite's
            // parameter objects cost more per value than SQLite spends storing the row, and a row has ~70 values.
            // The statement runs on the connection's handle, inside its open transaction.
            var cols = rows.Columns;
            string sql = $"INSERT INTO {T} ({string.Join(", ", cols.Select(col => Quote(col.Name)))}) VALUES ({string.Join(", ", cols.Select((_, i) => "?" + (i + 1)))});";
            var db = c.Handle!;
            Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
            using (statement)
            {
                long n = 0;
                while (rows.Read())
                {
                    if ((++n & 1023) == 0) cancellationToken.ThrowIfCancellationRequested();
                    var values = rows.Current;
                    // Most of an event's ~70 columns are null: clear all in one call, bind only the values.
                    raw.sqlite3_clear_bindings(statement);
                    for (int i = 0; i < cols.Count; i++)
                        if (values[i] is { } value) Bind(statement, i + 1, value);
                    // Never outside the batch's transaction: if the connection was closed under us, SQLite would be
                    // back in autocommit mode and every further row would commit on its own.
                    if (raw.sqlite3_get_autocommit(db) != 0)
                        throw new InvalidOperationException("The batch's transaction ended before all its rows were written (the connection was closed); nothing of it is kept.");
                    int rc = raw.sqlite3_step(statement);
                    if (rc != raw.SQLITE_DONE) Check(db, rc);
                    raw.sqlite3_reset(statement);
                }
            }
        }

        private static void Bind(sqlite3_stmt statement, int index, object value)
        {
            switch (value)
            {
                case string text: raw.sqlite3_bind_text16(statement, index, text); break;
                case long l: raw.sqlite3_bind_int64(statement, index, l); break;
                case int i: raw.sqlite3_bind_int64(statement, index, i); break;
                case double d: raw.sqlite3_bind_double(statement, index, d); break;
                case bool b: raw.sqlite3_bind_int64(statement, index, b ? 1 : 0); break;
                case DateTime t: raw.sqlite3_bind_text16(statement, index, EventTableModel.FormatTimestamp(t)); break;
                default: throw new InvalidOperationException($"Cannot store a {value.GetType().Name} in SQLite.");
            }
        }

        private static void Check(sqlite3 db, int rc)
        {
            if (rc != raw.SQLITE_OK) throw new SqliteException($"SQLite Error {rc}: '{raw.sqlite3_errmsg(db).utf8_to_string()}'.", rc, raw.sqlite3_extended_errcode(db));
        }

        private static SqliteType SqliteTypeOf(ColumnKind kind) => kind switch
        {
            ColumnKind.Int64 or ColumnKind.Int32 or ColumnKind.Boolean => SqliteType.Integer,
            ColumnKind.Double => SqliteType.Real,
            _ => SqliteType.Text,
        };

        public override void Record(BatchRecord record, long bytes, DateTimeOffset loadedAt, bool exists) => Execute(c, tx, exists
            ? $"UPDATE {Quote(Identifiers.StateTable)} SET is_complete = $complete, source_events = $count, row_count = $rows, byte_count = $bytes, range_start = $rs, range_end = $re, " +
              "loaded_at = $at WHERE table_name = $t AND batch_key = $k;"
            : $"INSERT INTO {Quote(Identifiers.StateTable)} (table_name, batch_key, range_start, range_end, row_count, byte_count, loaded_at, is_complete, source_events) " +
              "VALUES ($t, $k, $rs, $re, $rows, $bytes, $at, $complete, $count);",
            ("$t", store.Table), ("$k", record.Key), ("$rs", record.RangeStart is { } rs ? Iso(rs) : null),
            ("$re", record.RangeEnd is { } re ? Iso(re) : null), ("$rows", record.Rows), ("$bytes", bytes), ("$at", Iso(loadedAt)),
            ("$complete", record.IsComplete ? 1L : 0L), ("$count", record.SourceEvents));

        public override void CountInRun(long runId, string batchKey, long rows, long bytes) => Execute(c, tx,
            $"UPDATE {Quote(Identifiers.RunsTable)} SET batches = batches + 1, row_count = row_count + $rows, byte_count = byte_count + $bytes WHERE run_id = $run;",
            ("$run", runId), ("$rows", rows), ("$bytes", bytes));

        public override void Commit()
        {
            tx!.Commit();
            tx.Dispose();
            tx = null;
        }

        public override void Rollback()
        {
            if (tx is null) return;
            try { tx.Rollback(); } catch (Exception) { /* the connection may be gone: SQLite discards the transaction anyway */ }
            try { tx.Dispose(); } catch (Exception) { }
            tx = null;
        }

        public override void Dispose() => Rollback();
    }

    private void EnsureRunsTable(SqliteConnection c)
    {
        if (TableExists(c, null, Identifiers.RunsTable)) return;
        Require($"Create table {Identifiers.RunsTable} (the sync's run history)");
        Execute(c, null,
            $"CREATE TABLE IF NOT EXISTS {Quote(Identifiers.RunsTable)} (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, ended_at TEXT, " +
            "api TEXT NOT NULL, table_name TEXT NOT NULL, outcome TEXT NOT NULL, batches INTEGER NOT NULL, row_count INTEGER NOT NULL, " +
            "byte_count INTEGER NOT NULL, retries INTEGER NOT NULL, error TEXT, data_through TEXT, host TEXT);");
    }

    private static (string, object?)[] RunParameters(SyncRunRecord run) =>
    [
        ("$started", Iso(run.StartedAt)), ("$ended", run.EndedAt is { } e ? Iso(e) : null), ("$api", run.Api ?? ""),
        ("$table", run.Table ?? ""), ("$outcome", run.Outcome ?? "Running"), ("$batches", run.Batches), ("$rows", run.Rows),
        ("$bytes", run.Bytes), ("$retries", run.Retries), ("$error", run.Error), ("$through", run.DataThrough is { } d ? Iso(d) : null),
        ("$host", run.Host), ("$id", run.RunId),
    ];

    public override long BeginRun(SyncRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var c = Open(create: true)!;
        EnsureRunsTable(c);
        var id = Scalar(c, null,
            $"INSERT INTO {Quote(Identifiers.RunsTable)} (started_at, ended_at, api, table_name, outcome, batches, row_count, byte_count, retries, error, data_through, host) " +
            "VALUES ($started, $ended, $api, $table, $outcome, $batches, $rows, $bytes, $retries, $error, $through, $host) RETURNING run_id;",
            RunParameters(run));
        run.RunId = Convert.ToInt64(id, CultureInfo.InvariantCulture);
        return run.RunId;
    }

    public override void EndRun(SyncRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var c = Open(create: true)!;
        EnsureRunsTable(c);
        Execute(c, null,
            $"UPDATE {Quote(Identifiers.RunsTable)} SET started_at = $started, ended_at = $ended, api = $api, table_name = $table, outcome = $outcome, " +
            "batches = $batches, row_count = $rows, byte_count = $bytes, retries = $retries, error = $error, data_through = $through, host = $host WHERE run_id = $id;",
            RunParameters(run));
    }

    public override IReadOnlyList<SyncRunRecord> GetRuns(int last = 20)
    {
        var list = new List<SyncRunRecord>();
        var c = Open(create: false);
        if (c is null || !TableExists(c, null, Identifiers.RunsTable)) return list;
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT run_id, started_at, ended_at, api, table_name, outcome, batches, row_count, byte_count, retries, error, data_through, host " +
                          $"FROM {Quote(Identifiers.RunsTable)} ORDER BY run_id DESC LIMIT $n;";
        cmd.Parameters.AddWithValue("$n", Math.Max(0, last));
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add(new SyncRunRecord
            {
                RunId = r.GetInt64(0), StartedAt = ParseIso(r.GetString(1)), EndedAt = ParseIsoOrNull(r.GetValue(2)), Api = r.GetString(3),
                Table = r.GetString(4), Outcome = r.GetString(5), Batches = r.GetInt32(6), Rows = r.GetInt64(7), Bytes = r.GetInt64(8),
                Retries = r.GetInt32(9), Error = r.IsDBNull(10) ? null : r.GetString(10), DataThrough = ParseIsoOrNull(r.GetValue(11)),
                Host = r.IsDBNull(12) ? null : r.GetString(12),
            });
        }
        return list;
    }

    public override void Dispose()
    {
        connection?.Dispose();
        connection = null;
    }
}
