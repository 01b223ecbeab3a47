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

    private static SqlCommand Command(SqlConnection c, SqlTransaction? tx, string text, params (string Name, object? Value)[] parameters)
    {
        var cmd = new SqlCommand(text, c, tx) { CommandTimeout = 0 };
        foreach (var (n, v) in parameters) cmd.Parameters.Add(Parameter(n, v));
        return cmd;
    }

    private static SqlParameter Parameter(string name, object? value) => value switch
    {
        string s => new SqlParameter(name, SqlDbType.NVarChar, s.Length <= 4000 ? 4000 : -1) { Value = s },
        DateTimeOffset d => new SqlParameter(name, SqlDbType.DateTimeOffset) { Value = d, Scale = 3 },
        null => new SqlParameter(name, DBNull.Value),
        _ => new SqlParameter(name, value),
    };

    private static object? Scalar(SqlConnection c, SqlTransaction? tx, string text, CancellationToken ct, params (string, object?)[] parameters)
    {
        using var cmd = Command(c, tx, text, parameters);
        using var reg = ct.Register(cmd.Cancel);
        return cmd.ExecuteScalar();
    }

    private static void Execute(SqlConnection c, SqlTransaction? tx, string text, params (string, object?)[] parameters)
    {
        using var cmd = Command(c, tx, text, parameters);
        cmd.ExecuteNonQuery();
    }

    private bool TableExists(SqlConnection c, SqlTransaction? tx, string table) =>
        Convert.ToInt64(Scalar(c, tx, SqlServerStatements.TableExists, default, ("@schema", sql.Schema), ("@table", table))) > 0;

    public override bool IsLoaded(string batchKey)
    {
        ValidateKey(batchKey);
        using var c = Connect();
        if (!TableExists(c, null, Identifiers.StateTable)) return false;
        return Convert.ToInt64(Scalar(c, null, sql.IsRecorded, default, ("@table", sql.Table), ("@key", batchKey))) > 0;
    }

    public override IReadOnlyList<LoadedBatch> GetLoadedBatches()
    {
        var list = new List<LoadedBatch>();
        using var c = Connect();
        if (!TableExists(c, null, Identifiers.StateTable)) return list;
        using var cmd = Command(c, null, sql.GetLoadedBatches, ("@table", sql.Table));
        using var r = cmd.ExecuteReader();
        while (r.Read())
            list.Add(new LoadedBatch(r.GetString(0), r.IsDBNull(1) ? null : r.GetDateTimeOffset(1), r.IsDBNull(2) ? null : r.GetDateTimeOffset(2),
                r.GetInt64(3), r.GetDateTimeOffset(4)));
        return list;
    }

    protected override BatchTransaction BeginBatch(CancellationToken cancellationToken)
    {
        var c = Connect();
        SqlTransaction? tx = null;
        try
        {
            if (Convert.ToInt64(Scalar(c, null, SqlServerStatements.SchemaExists, cancellationToken, ("@schema", sql.Schema))) == 0)
                throw new InvalidOperationException($"The schema '{sql.Schema}' does not exist in {Destination}. Create it (CREATE SCHEMA) or pass another -Schema.");
            tx = c.BeginTransaction(IsolationLevel.ReadCommitted);
            // Serialises loads into this table across processes and machines; released by the commit or rollback.
            var result = Convert.ToInt32(Scalar(c, tx, sql.GetAppLock, cancellationToken, ("@resource", sql.LockResource), ("@timeout", -1)));
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

        public override bool StateTableExists() => store.TableExists(c, tx, Identifiers.StateTable);
        public override void CreateStateTable() => Execute(c, tx, Sql.CreateStateTable);

        public override bool IsRecorded(string batchKey) =>
            StateTableExists() && Convert.ToInt64(Scalar(c, tx, Sql.IsRecorded, default, ("@table", Sql.Table), ("@key", batchKey))) > 0;

        public override IReadOnlyList<string>? GetEventColumns()
        {
            if (!store.TableExists(c, tx, Sql.Table)) return null;
            using var cmd = Command(c, tx, SqlServerStatements.GetColumns, ("@schema", Sql.Schema), ("@table", Sql.Table));
            using var r = cmd.ExecuteReader();
            var names = new List<string>();
            while (r.Read()) names.Add(r.GetString(0));
            return names;
        }

        public override void CreateEventsTable(IReadOnlyList<ColumnDef> columns) => Execute(c, tx, Sql.CreateEventsTable(columns));
        public override void AddColumn(ColumnDef column) => Execute(c, tx, Sql.AddColumn(column));

        public override void WriteRows(RowStream rows, CancellationToken cancellationToken)
        {
            using var reader = new EventDataReader(rows);
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
            }
            catch (Exception)
            {
                failed = true;
                throw;
            }
        }

        public override void Record(BatchInfo batch, long rows, long bytes, DateTimeOffset loadedAt)
        {
            int n;
            using (var cmd = Command(c, tx, Sql.Record, ("@table", Sql.Table), ("@key", batch.Key), ("@range_start", batch.RangeStart),
                ("@range_end", batch.RangeEnd), ("@rows", rows), ("@bytes", bytes), ("@loaded_at", loadedAt)))
                n = cmd.ExecuteNonQuery();
            if (n != 1) throw new InvalidOperationException($"Batch {batch.Key} was recorded by another load meanwhile; this load is rolled back.");
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

    private static (string, object?)[] RunParameters(SyncRunRecord run) =>
    [
        ("@started_at", run.StartedAt), ("@ended_at", run.EndedAt), ("@api", run.Api ?? ""), ("@table_name", run.Table ?? ""),
        ("@outcome", run.Outcome ?? "Running"), ("@batches", run.Batches), ("@rows", run.Rows), ("@bytes", run.Bytes),
        ("@retries", run.Retries), ("@error", run.Error), ("@data_through", run.DataThrough), ("@host", run.Host), ("@run_id", run.RunId),
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
        using var cmd = Command(c, null, sql.GetRuns, ("@last", Math.Max(0, last)));
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
