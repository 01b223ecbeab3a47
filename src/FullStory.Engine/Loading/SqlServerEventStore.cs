using System.Data;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Loading;

/// <summary>
/// SQL Server (and compatible servers): a thin renderer over the shared logic. Each batch runs in one SqlTransaction
/// that first takes sp_getapplock (owner: the transaction) on a resource derived from the table, then checks the
/// state table, bulk-loads with SqlBulkCopy streaming from an <see cref="EventDataReader"/>, records the key and commits.
/// </summary>
internal sealed class SqlServerEventStore : EventStoreBase
{
    private readonly string connectionString;
    private readonly SqlServerStatements sql;

    public SqlServerEventStore(string connectionString, EventStoreOptions options) : base(options)
    {
        if (string.IsNullOrWhiteSpace(connectionString)) throw new ArgumentException("The connection string must not be empty.", nameof(connectionString));
        SqlConnectionStringBuilder builder;
        try { builder = new SqlConnectionStringBuilder(connectionString); }
        catch (Exception ex) when (ex is ArgumentException or FormatException or KeyNotFoundException)
        {
            // The parser's message can quote the string; never echo it (it may hold a password): name only the keyword or position.
            throw new ArgumentException("The connection string is not valid: " + DescribeParseError(connectionString, ex) + " Check its keywords and quoting.", nameof(connectionString));
        }
        this.connectionString = builder.ConnectionString;
        Destination = $"sqlserver:{builder.DataSource}/{builder.InitialCatalog}";
        sql = new SqlServerStatements(options.Schema is null ? "dbo" : Identifiers.ValidateName(options.Schema, "Schema", "schema"), Table);
    }

    private static readonly string[] KnownKeywords = new SqlConnectionStringBuilder().Keys.Cast<string>()
        .Concat(["Server", "Database", "UID", "User", "PWD", "Address", "Addr", "Trusted_Connection", "TrustServerCertificate", "Timeout"]).ToArray();

    /// <summary>What SqlClient's parser disliked, without any value from the string: a keyword it does not know (with the
    /// nearest one it does), a keyword whose value it refused, or where the format broke.</summary>
    internal static string DescribeParseError(string connectionString, Exception ex)
    {
        var keyword = System.Text.RegularExpressions.Regex.Match(ex.Message, @"(?:Keyword not supported|Invalid value for key):? '([^']{1,64})'");
        if (!keyword.Success)
        {
            var index = System.Text.RegularExpressions.Regex.Match(ex.Message, @"index (\d+)");
            return index.Success ? $"its format breaks at character {index.Groups[1].Value} (a value with ';' or '=' needs double quotes)." : ex.GetType().Name + ".";
        }
        string name = keyword.Groups[1].Value.Trim();
        // "Password=ab;cd=ef" makes "cd" look like a keyword: it is part of the password, so do not echo it.
        var segments = connectionString.Split(';');
        int at = Array.FindIndex(segments, seg => string.Equals(seg.Split('=')[0].Trim(), name, StringComparison.OrdinalIgnoreCase));
        if (at > 0 && segments[at - 1].Split('=')[0].Trim() is var previous &&
            (previous.Equals("Password", StringComparison.OrdinalIgnoreCase) || previous.Equals("PWD", StringComparison.OrdinalIgnoreCase)))
            return "the text after the password is not a keyword: a password that contains ';' must be in double quotes (Password=\"...\").";
        if (ex.Message.StartsWith("Invalid value", StringComparison.Ordinal)) return $"the value of '{name}' is not valid.";
        string? nearest = KnownKeywords.Select(k => (k, d: EditDistance(k.ToLowerInvariant(), name.ToLowerInvariant())))
            .Where(x => x.d <= 2).OrderBy(x => x.d).Select(x => x.k).FirstOrDefault();
        return $"the keyword '{name}' is not supported" + (nearest is null ? "." : $" (did you mean '{nearest}'?).");
    }

    private static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

    /// <summary>A connection string with the password removed, for messages.</summary>
    public static string Describe(string connectionString)
    {
        try
        {
            var b = new SqlConnectionStringBuilder(connectionString);
            b.Remove("Password");
            return b.ConnectionString;
        }
        catch (Exception) { return "(invalid connection string)"; }
    }

    public override string Destination { get; }
    protected override bool EnforcesMaxLength => true;
    protected override string DisplayTable => sql.Schema + "." + sql.Table;

    private SqlConnection Connect()
    {
        var c = new SqlConnection(connectionString);
        try { c.Open(); }
        catch { c.Dispose(); throw; }
        return c;
    }

    private static SqlCommand Command(SqlConnection c, SqlTransaction? tx, string text, params SqlParameter[] parameters)
    {
        var cmd = new SqlCommand(text, c, tx) { CommandTimeout = 0 };
        cmd.Parameters.AddRange(parameters);
        return cmd;
    }

    private static object? Scalar(SqlConnection c, SqlTransaction? tx, string text, CancellationToken ct, params SqlParameter[] parameters)
    {
        using var cmd = Command(c, tx, text, parameters);
        using var reg = ct.Register(cmd.Cancel);
        return cmd.ExecuteScalar();
    }

    private static void Execute(SqlConnection c, SqlTransaction? tx, string text, params SqlParameter[] parameters)
    {
        using var cmd = Command(c, tx, text, parameters);
        cmd.ExecuteNonQuery();
    }

    private SqlParameter SchemaParameter => SqlParam.Name("@schema", sql.Schema);
    private SqlParameter TableParameter => SqlParam.Name("@table", sql.Table);

    private bool TableExists(SqlConnection c, SqlTransaction? tx, string table) =>
        Convert.ToInt64(Scalar(c, tx, SqlServerStatements.TableExists, default, SchemaParameter, SqlParam.Name("@table", table))) > 0;

    /// <summary>Missing, made by an older version (no is_complete: every record is of a whole source), or current.</summary>
    private StateTableShape StateShape(SqlConnection c, SqlTransaction? tx)
    {
        if (!TableExists(c, tx, Identifiers.StateTable)) return StateTableShape.Missing;
        return Convert.ToInt64(Scalar(c, tx, sql.StateHasCompleteness, default, SchemaParameter)) > 0 ? StateTableShape.Current : StateTableShape.WithoutCompleteness;
    }

    private BatchRecord? GetRecord(SqlConnection c, SqlTransaction? tx, string batchKey)
    {
        var shape = StateShape(c, tx);
        if (shape == StateTableShape.Missing) return null;
        using var cmd = Command(c, tx, sql.GetRecord(shape == StateTableShape.Current), TableParameter, SqlParam.Key("@key", batchKey));
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        return new BatchRecord(batchKey, r.GetBoolean(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetDateTimeOffset(2), r.IsDBNull(3) ? null : r.GetDateTimeOffset(3),
            r.IsDBNull(4) ? null : r.GetInt64(4));
    }

    public override bool IsLoaded(string batchKey)
    {
        ValidateKey(batchKey);
        using var c = Connect();
        return GetRecord(c, null, batchKey) is { IsComplete: true };
    }

    public override IReadOnlyList<LoadedBatch> GetLoadedBatches()
    {
        var list = new List<LoadedBatch>();
        using var c = Connect();
        var shape = StateShape(c, null);
        if (shape == StateTableShape.Missing) return list;
        using var cmd = Command(c, null, sql.GetLoadedBatches(shape == StateTableShape.Current), TableParameter);
        using var r = cmd.ExecuteReader();
        while (r.Read())
            list.Add(new LoadedBatch(r.GetString(0), r.IsDBNull(1) ? null : r.GetDateTimeOffset(1), r.IsDBNull(2) ? null : r.GetDateTimeOffset(2),
                r.GetInt64(3), r.GetDateTimeOffset(4)));
        return list;
    }

    /// <summary>
    /// Types that hold the module's values without loss: bigint (or decimal(19+,0)) for ids, float(53) for doubles,
    /// datetime2/datetimeoffset with milliseconds for timestamps, nvarchar long enough for text (varchar loses characters).
    /// </summary>
    protected override string? RequiredTypeFor(ColumnDef column, ExistingColumn existing)
    {
        string t = existing.TypeName.ToLowerInvariant();
        bool exactInteger(int digits) => t is "decimal" or "numeric" && existing.Scale == 0 && existing.Precision >= digits;
        bool ok = column.Kind switch
        {
            ColumnKind.Int64 => t == "bigint" || exactInteger(19),
            ColumnKind.Int32 => t is "int" or "bigint" || exactInteger(10),
            ColumnKind.Double => t == "float" && existing.Precision >= 53,
            ColumnKind.Boolean => t is "bit" or "tinyint" or "smallint" or "int" or "bigint",
            ColumnKind.Timestamp => t is "datetime2" or "datetimeoffset" && existing.Scale >= 3,
            ColumnKind.Text when column.MaxLength is int max => t == "nvarchar" && (existing.Length == -1 || existing.Length >= max) || t == "ntext",
            _ => t == "nvarchar" && existing.Length == -1 || t == "ntext",
        };
        return ok ? null : SqlServerStatements.TypeOf(column) + (column.Kind switch
        {
            ColumnKind.Int64 => " (64-bit integers)",
            ColumnKind.Timestamp => " (UTC timestamps with milliseconds)",
            ColumnKind.Text or ColumnKind.Json => " (Unicode text)",
            _ => "",
        });
    }

    protected override BatchTransaction BeginBatch(CancellationToken cancellationToken)
    {
        var c = Connect();
        SqlTransaction? tx = null;
        try
        {
            if (Convert.ToInt64(Scalar(c, null, SqlServerStatements.SchemaExists, cancellationToken, SchemaParameter)) == 0)
                throw new InvalidOperationException($"The schema '{sql.Schema}' does not exist in {Destination}. Create it (CREATE SCHEMA) or pass another -Schema.");
            tx = c.BeginTransaction(IsolationLevel.ReadCommitted);
            // Serialises loads into this table across processes and machines; released by the commit or rollback.
            var result = Convert.ToInt32(Scalar(c, tx, sql.GetAppLock, cancellationToken,
                new SqlParameter("@resource", SqlDbType.NVarChar, 255) { Value = sql.LockResource }, new SqlParameter("@timeout", SqlDbType.Int) { Value = -1 }));
            if (result < 0) throw new InvalidOperationException($"Could not take the load lock on {DisplayTable} (sp_getapplock returned {result}).");
            return new Transaction(this, c, tx);
        }
        catch
        {
            try { tx?.Rollback(); } catch (Exception) { }
            tx?.Dispose();
            c.Dispose();
            throw;
        }
    }

    private sealed class Transaction : BatchTransaction
    {
        private readonly SqlServerEventStore store;
        private readonly SqlConnection c;
        private SqlTransaction? tx;
        private bool failed;

        public Transaction(SqlServerEventStore store, SqlConnection c, SqlTransaction tx)
        {
            this.store = store;
            this.c = c;
            this.tx = tx;
        }

        private SqlServerStatements Sql => store.sql;

        public override StateTableShape GetStateTableShape() => store.StateShape(c, tx);
        public override void CreateStateTable() => Execute(c, tx, Sql.CreateStateTable);
        public override void AddStateCompleteness()
        {
            Execute(c, tx, Sql.AddStateCompleteness);
            Execute(c, tx, Sql.AddStateSourceEvents);
        }
        public override BatchRecord? GetRecord(string batchKey) => store.GetRecord(c, tx, batchKey);

        public override IReadOnlyList<ExistingColumn>? GetEventColumns()
        {
            if (!store.TableExists(c, tx, Sql.Table)) return null;
            using var cmd = Command(c, tx, SqlServerStatements.GetColumnTypes, store.SchemaParameter, store.TableParameter);
            using var r = cmd.ExecuteReader();
            var columns = new List<ExistingColumn>();
            while (r.Read())
            {
                string type = r.GetString(1);
                int bytes = Convert.ToInt32(r.GetValue(2));
                int precision = Convert.ToInt32(r.GetValue(3)), scale = Convert.ToInt32(r.GetValue(4));
                bool unicode = type is "nvarchar" or "nchar";
                int length = bytes == -1 ? -1 : unicode ? bytes / 2 : bytes;
                string display = type switch
                {
                    "nvarchar" or "varchar" or "nchar" or "char" or "varbinary" or "binary" => $"{type}({(length == -1 ? "max" : length)})",
                    "decimal" or "numeric" => $"{type}({precision},{scale})",
                    "datetime2" or "datetimeoffset" or "time" => $"{type}({scale})",
                    "float" => $"float({precision})",
                    _ => type,
                };
                columns.Add(new ExistingColumn(r.GetString(0), type, display, length, precision, scale));
            }
            return columns;
        }

        public override long DeleteRows(string batchKey)
        {
            using var cmd = Command(c, tx, Sql.DeleteRows, SqlParam.Key("@key", batchKey));
            return cmd.ExecuteNonQuery();
        }

        public override void ReadIndexes(string batchKey, IndexSet into)
        {
            using var cmd = Command(c, tx, Sql.GetIndexes, SqlParam.Key("@key", batchKey));
            using var r = cmd.ExecuteReader();
            while (r.Read()) into.Add(r.GetInt64(0));
        }

        public override void CreateEventsTable(IReadOnlyList<ColumnDef> columns) => Execute(c, tx, Sql.CreateEventsTable(columns));
        public override void AddColumn(ColumnDef column) => Execute(c, tx, Sql.AddColumn(column));

        public override void WriteRows(RowStream rows, CancellationToken cancellationToken)
        {
            // The event source (a download, the pipeline) may fail mid-stream. Thrown inside WriteToServer, that leaves the
            // server waiting for the rest of the bulk load (SQL-Server-compatible servers have been seen to spin on it for
            // minutes); caught by the reader, the bulk copy ends cleanly and the failure is rethrown here: the batch rolls back.
            using var reader = new EventDataReader(rows) { CaptureSourceFailure = true };
            using var bulk = new SqlBulkCopy(c, SqlBulkCopyOptions.Default, tx)
            {
                DestinationTableName = Sql.EventsTable,
                BatchSize = store.Options.BatchSize,
                EnableStreaming = true,
                BulkCopyTimeout = 0,
            };
            // Mappings are case-sensitive: use the exact names the table was created with.
            foreach (var col in reader.Columns) bulk.ColumnMappings.Add(col.Name, col.Name);
            try
            {
                bulk.WriteToServerAsync(reader, cancellationToken).GetAwaiter().GetResult();
                if (reader.SourceFailure is { } failure) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            }
            catch (Exception)
            {
                failed = true;
                throw;
            }
        }

        public override void Record(BatchRecord record, long bytes, DateTimeOffset loadedAt, bool exists)
        {
            int n;
            using (var cmd = Command(c, tx, exists ? Sql.UpdateRecord : Sql.Record, store.TableParameter, SqlParam.Key("@key", record.Key),
                SqlParam.Time("@range_start", record.RangeStart), SqlParam.Time("@range_end", record.RangeEnd), SqlParam.BigInt("@rows", record.Rows),
                SqlParam.BigInt("@bytes", bytes), SqlParam.Time("@loaded_at", loadedAt), SqlParam.Bit("@is_complete", record.IsComplete),
                SqlParam.BigInt("@source_events", record.SourceEvents)))
                n = cmd.ExecuteNonQuery();
            if (n != 1) throw new InvalidOperationException($"Batch {record.Key} was recorded by another load meanwhile; this load is rolled back.");
        }

        public override void Commit()
        {
            tx!.Commit();
            tx.Dispose();
            tx = null;
        }

        public override void Rollback()
        {
            if (tx is not null)
            {
                try { tx.Rollback(); } catch (Exception) { failed = true; /* the server already rolled back, or the connection is gone */ }
                try { tx.Dispose(); } catch (Exception) { }
                tx = null;
                // After a failed bulk load the pooled connection can stay broken for bulk loads: drop the pool.
                if (failed) SqlConnection.ClearPool(c);
            }
        }

        public override void Dispose()
        {
            Rollback();
            c.Dispose();
        }
    }

    private void EnsureRunsTable(SqlConnection c)
    {
        if (TableExists(c, null, Identifiers.RunsTable)) return;
        Require($"Create table {sql.Schema}.{Identifiers.RunsTable} (the sync's run history)");
        Execute(c, null, sql.CreateRunsTable);
    }

    private static SqlParameter[] RunParameters(SyncRunRecord run) =>
    [
        SqlParam.Time("@started_at", run.StartedAt), SqlParam.Time("@ended_at", run.EndedAt), SqlParam.Text("@api", run.Api ?? "", 64),
        SqlParam.Name("@table_name", run.Table ?? ""), SqlParam.Text("@outcome", run.Outcome ?? "Running", 32), SqlParam.Int("@batches", run.Batches),
        SqlParam.BigInt("@rows", run.Rows), SqlParam.BigInt("@bytes", run.Bytes), SqlParam.Int("@retries", run.Retries),
        SqlParam.Text("@error", run.Error, -1), SqlParam.Time("@data_through", run.DataThrough), SqlParam.Text("@host", run.Host, 256),
        SqlParam.BigInt("@run_id", run.RunId),
    ];

    public override long BeginRun(SyncRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        using var c = Connect();
        EnsureRunsTable(c);
        run.RunId = Convert.ToInt64(Scalar(c, null, sql.BeginRun, default, RunParameters(run)));
        return run.RunId;
    }

    public override void EndRun(SyncRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        using var c = Connect();
        EnsureRunsTable(c);
        Execute(c, null, sql.EndRun, RunParameters(run));
    }

    public override IReadOnlyList<SyncRunRecord> GetRuns(int last = 20)
    {
        var list = new List<SyncRunRecord>();
        using var c = Connect();
        if (!TableExists(c, null, Identifiers.RunsTable)) return list;
        using var cmd = Command(c, null, sql.GetRuns, SqlParam.Int("@last", Math.Max(0, last)));
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add(new SyncRunRecord
            {
                RunId = r.GetInt64(0), StartedAt = r.GetDateTimeOffset(1), EndedAt = r.IsDBNull(2) ? null : r.GetDateTimeOffset(2), Api = r.GetString(3),
                Table = r.GetString(4), Outcome = r.GetString(5), Batches = r.GetInt32(6), Rows = r.GetInt64(7), Bytes = r.GetInt64(8),
                Retries = r.GetInt32(9), Error = r.IsDBNull(10) ? null : r.GetString(10), DataThrough = r.IsDBNull(11) ? null : r.GetDateTimeOffset(11),
                Host = r.IsDBNull(12) ? null : r.GetString(12),
            });
        }
        return list;
    }

    public override void Dispose() { }
}

/// <summary>
/// Parameters with their SqlDbType, size and scale always explicit: an untyped NULL goes out as nvarchar, which SQL Server
/// converts but stricter servers refuse for other column types, and typed parameters let the server reuse query plans.
/// </summary>
internal static class SqlParam
{
    /// <summary>An identifier value (sysname): table, schema.</summary>
    public static SqlParameter Name(string name, string value) => Text(name, value, 128);

    /// <summary>A batch key, as stored in the state table and _fs_batch.</summary>
    public static SqlParameter Key(string name, string value) => Text(name, value, EventTableModel.MaxBatchKeyLength);

    /// <summary>nvarchar(<paramref name="size"/>); -1 = nvarchar(max).</summary>
    public static SqlParameter Text(string name, string? value, int size) =>
        new(name, SqlDbType.NVarChar, size) { Value = (object?)value ?? DBNull.Value };

    public static SqlParameter BigInt(string name, long? value) => new(name, SqlDbType.BigInt) { Value = (object?)value ?? DBNull.Value };
    public static SqlParameter Int(string name, int? value) => new(name, SqlDbType.Int) { Value = (object?)value ?? DBNull.Value };
    public static SqlParameter Bit(string name, bool? value) => new(name, SqlDbType.Bit) { Value = (object?)value ?? DBNull.Value };

    /// <summary>datetimeoffset(3), the state and run tables' type for instants.</summary>
    public static SqlParameter Time(string name, DateTimeOffset? value) =>
        new(name, SqlDbType.DateTimeOffset) { Scale = 3, Value = (object?)value ?? DBNull.Value };
}
