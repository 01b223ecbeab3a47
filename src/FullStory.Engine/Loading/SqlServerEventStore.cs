using System.Data;
using System.Runtime.ExceptionServices;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Loading;

/// <summary>
/// SQL Server (and compatible servers): a thin renderer over the shared logic. Each batch runs in one SqlTransaction
/// that first takes sp_getapplock (owner: the transaction) on a resource derived from the table, then checks the
/// state table, bulk-loads with SqlBulkCopy streaming from an <see cref="EventDataReader"/>, records the key and commits.
/// Every statement and the bulk copy are bounded (<see cref="EventStoreOptions.CommandTimeout"/>,
/// <see cref="EventStoreOptions.BulkCopyTimeout"/>, <see cref="EventStoreOptions.LockTimeout"/>) and cancellable.
/// </summary>
internal sealed class SqlServerEventStore : EventStoreBase
{
    private readonly string connectionString;
    private readonly SqlServerStatements sql;
    private readonly int commandTimeout, bulkCopyTimeout, lockTimeoutMs;

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
        commandTimeout = Seconds(options.CommandTimeout, nameof(options.CommandTimeout));
        bulkCopyTimeout = Seconds(options.BulkCopyTimeout, nameof(options.BulkCopyTimeout));
        lockTimeoutMs = (int)Math.Min(int.MaxValue - 1, Seconds(options.LockTimeout, nameof(options.LockTimeout)) * 1000L);
    }

    /// <summary>A timeout in whole seconds for SqlClient (at least 1; 0 would mean "wait forever", which a load never does).</summary>
    private static int Seconds(TimeSpan timeout, string name)
    {
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(name, timeout, $"{name} must be positive: a load never waits forever.");
        return (int)Math.Min(int.MaxValue / 1000, Math.Ceiling(timeout.TotalSeconds));
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

    private SqlCommand Command(SqlConnection c, SqlTransaction? tx, string text, params SqlParameter[] parameters)
    {
        var cmd = new SqlCommand(text, c, tx) { CommandTimeout = commandTimeout };
        cmd.Parameters.AddRange(parameters);
        return cmd;
    }

    /// <summary>Runs a command so that cancellation stops it (the server acknowledges and the command ends with OperationCanceledException).</summary>
    private static T Run<T>(SqlCommand cmd, Func<SqlCommand, T> execute, CancellationToken ct)
    {
        using var registration = ct.CanBeCanceled ? ct.Register(static state => ((SqlCommand)state!).Cancel(), cmd) : default;
        try { return execute(cmd); }
        catch (SqlException) when (ct.IsCancellationRequested) { throw new OperationCanceledException("The load was cancelled.", ct); }
    }

    private object? Scalar(SqlConnection c, SqlTransaction? tx, string text, CancellationToken ct, params SqlParameter[] parameters)
    {
        using var cmd = Command(c, tx, text, parameters);
        return Run(cmd, static x => x.ExecuteScalar(), ct);
    }

    private int Execute(SqlConnection c, SqlTransaction? tx, string text, CancellationToken ct, params SqlParameter[] parameters)
    {
        using var cmd = Command(c, tx, text, parameters);
        return Run(cmd, static x => x.ExecuteNonQuery(), ct);
    }

    private SqlParameter SchemaParameter => SqlParam.Name("@schema", sql.Schema);
    private SqlParameter TableParameter => SqlParam.Name("@table", sql.Table);

    private bool TableExists(SqlConnection c, SqlTransaction? tx, string table, CancellationToken ct = default) =>
        Convert.ToInt64(Scalar(c, tx, SqlServerStatements.TableExists, ct, SchemaParameter, SqlParam.Name("@table", table))) > 0;

    /// <summary>Missing, made by an older version (no is_complete: every record is of a whole source), or current.</summary>
    private StateTableShape StateShape(SqlConnection c, SqlTransaction? tx, CancellationToken ct = default)
    {
        if (!TableExists(c, tx, Identifiers.StateTable, ct)) return StateTableShape.Missing;
        return Convert.ToInt64(Scalar(c, tx, sql.StateHasCompleteness, ct, SchemaParameter)) > 0 ? StateTableShape.Current : StateTableShape.WithoutCompleteness;
    }

    private BatchRecord? GetRecord(SqlConnection c, SqlTransaction? tx, string batchKey, CancellationToken ct = default, StateTableShape? knownShape = null)
    {
        var shape = knownShape ?? StateShape(c, tx, ct);
        if (shape == StateTableShape.Missing) return null;
        using var cmd = Command(c, tx, sql.GetRecord(shape == StateTableShape.Current), TableParameter, SqlParam.Key("@key", batchKey));
        return Run(cmd, x =>
        {
            using var r = x.ExecuteReader();
            if (!r.Read()) return null;
            return new BatchRecord(batchKey, r.GetBoolean(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetDateTimeOffset(2), r.IsDBNull(3) ? null : r.GetDateTimeOffset(3),
                r.IsDBNull(4) ? null : r.GetInt64(4));
        }, ct);
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

    /// <summary>sp_getapplock did not grant the table's load lock within <see cref="EventStoreOptions.LockTimeout"/>.</summary>
    private sealed class LoadLockTimeoutException(string message) : TimeoutException(message);

    protected override BatchTransaction BeginBatch(CancellationToken cancellationToken)
    {
        var c = Connect();
        SqlTransaction? tx = null;
        try
        {
            if (Convert.ToInt64(Scalar(c, null, SqlServerStatements.SchemaExists, cancellationToken, SchemaParameter)) == 0)
                throw new InvalidOperationException($"The schema '{sql.Schema}' does not exist in {Destination}. Create it (CREATE SCHEMA) or pass another -Schema.");
            tx = c.BeginTransaction(IsolationLevel.ReadCommitted);
            // Serialises loads into this table across processes and machines; released by the commit or rollback. Waits at
            // most LockTimeout (the server answers -1 then), so a lock that is never released cannot hold a load forever.
            // The wait may be long: a cancellation the server does not act on (some do not interrupt a lock wait) is not waited out.
            TakeAppLock(c, tx, sql.LockResource, $"the table's load lock (sp_getapplock resource '{sql.LockResource}') was not granted within {Options.LockTimeout}: " +
                "another load of the table has held it all that time.", cancellationToken);
            return new Transaction(this, c, tx, cancellationToken);
        }
        catch (AbandonedCommandException)
        {
            throw; // the connection is still in use by the abandoned command, which disposes it when it ends
        }
        catch
        {
            try { tx?.Rollback(); } catch (Exception) { }
            tx?.Dispose();
            c.Dispose();
            throw;
        }
    }

    protected override Exception? DescribeFailure(Exception failure, string what)
    {
        const string rerun = "Then run the command again: what is already loaded is recognised and skipped.";
        switch (failure)
        {
            case LoadLockTimeoutException:
                return new DestinationLoadException(what, failure.Message,
                    "If no other load of the table is running, a session holds the lock without releasing it: find it with " +
                    "SELECT request_session_id FROM sys.dm_tran_locks WHERE resource_type = 'APPLICATION', and end that session or its transaction. " + rerun, failure);
            case SqlException { Number: -2 }:
                return new DestinationLoadException(what,
                    $"the server did not answer within the timeout ({failure.Message.TrimEnd('.')}; statements wait at most {Options.CommandTimeout}, the bulk copy {Options.BulkCopyTimeout}).",
                    "Check that the server is up and that no other session is blocking the table (a long-running transaction or a lock on it); if the server is only slow, raise -CommandTimeout. " + rerun, failure);
            case SqlException { Class: >= 20 }:
                return new DestinationLoadException(what, $"the connection to the server failed or was lost ({failure.Message.TrimEnd('.')}).",
                    "Check that the server is up and reachable (a restart, a failover, a network break or a KILL of the session ends the connection). " + rerun, failure);
            default:
                return null;
        }
    }

    /// <summary>Thrown (as its cause) when a cancelled bulk copy did not stop within <see cref="SqlCancellation.Grace"/>.</summary>
    private sealed class AbandonedCopyException : Exception;

    private sealed class Transaction : BatchTransaction
    {
        private readonly SqlServerEventStore store;
        private readonly SqlConnection c;
        private readonly CancellationToken ct;
        private SqlTransaction? tx;
        private bool failed;
        /// <summary>A cancelled bulk copy that did not stop: it owns the connection until its timeout ends it.</summary>
        private Task? abandoned;
        /// <summary>The events table's columns in table order, as declared (the bulk copy maps to their positions).</summary>
        private List<string>? tableColumns;

        public Transaction(SqlServerEventStore store, SqlConnection c, SqlTransaction tx, CancellationToken ct)
        {
            this.store = store;
            this.c = c;
            this.tx = tx;
            this.ct = ct;
        }

        private SqlServerStatements Sql => store.sql;

        // Read once per transaction. The state table is shared by the schema's tables, so another table's load may create or
        // upgrade it meanwhile: the two changes below check again under the bookkeeping lock. Records of this table are only
        // written under its load lock, which this transaction holds, so an outdated "missing" still reads them right (none).
        private StateTableShape? shape;

        public override StateTableShape GetStateTableShape() => shape ??= store.StateShape(c, tx, ct);
        public override void CreateStateTable()
        {
            store.TakeBookkeepingLock(c, tx!, ct);
            if (store.StateShape(c, tx, ct) == StateTableShape.Missing) store.Execute(c, tx, Sql.CreateStateTable, ct);
            shape = null; // created here, or by another load meanwhile (possibly in the older shape): read it again
        }

        public override void AddStateCompleteness()
        {
            store.TakeBookkeepingLock(c, tx!, ct);
            if (store.StateShape(c, tx, ct) == StateTableShape.WithoutCompleteness)
            {
                store.Execute(c, tx, Sql.AddStateCompleteness, ct);
                store.Execute(c, tx, Sql.AddStateSourceEvents, ct);
            }
            shape = StateTableShape.Current;
        }
        public override BatchRecord? GetRecord(string batchKey) => store.GetRecord(c, tx, batchKey, ct, GetStateTableShape());

        public override IReadOnlyList<ExistingColumn>? GetEventColumns()
        {
            if (!store.TableExists(c, tx, Sql.Table, ct)) return null;
            using var cmd = store.Command(c, tx, SqlServerStatements.GetColumnTypes, store.SchemaParameter, store.TableParameter);
            var columns = Run(cmd, static x =>
            {
                using var r = x.ExecuteReader();
                var list = new List<ExistingColumn>();
                static int IntOrZero(SqlDataReader r, int i) => r.IsDBNull(i) ? 0 : Convert.ToInt32(r.GetValue(i));
                while (r.Read())
                {
                    string type = r.GetString(1).ToLowerInvariant();
                    int length = IntOrZero(r, 2), precision = IntOrZero(r, 3);
                    int scale = type is "datetime2" or "datetimeoffset" or "time" ? IntOrZero(r, 5) : IntOrZero(r, 4);
                    string display = type switch
                    {
                        "nvarchar" or "varchar" or "nchar" or "char" or "varbinary" or "binary" => $"{type}({(length == -1 ? "max" : length)})",
                        "decimal" or "numeric" => $"{type}({precision},{scale})",
                        "datetime2" or "datetimeoffset" or "time" => $"{type}({scale})",
                        "float" => $"float({precision})",
                        _ => type,
                    };
                    list.Add(new ExistingColumn(r.GetString(0), type, display, length, precision, scale));
                }
                return list;
            }, ct);
            tableColumns = columns.Select(x => x.Name).ToList();
            return columns;
        }

        public override long DeleteRows(string batchKey) => store.Execute(c, tx, Sql.DeleteRows, ct, SqlParam.Key("@key", batchKey));

        public override void ReadIndexes(string batchKey, IndexSet into)
        {
            using var cmd = store.Command(c, tx, Sql.GetIndexes, SqlParam.Key("@key", batchKey));
            Run(cmd, x =>
            {
                using var r = x.ExecuteReader();
                while (r.Read()) into.Add(r.GetInt64(0));
                return 0;
            }, ct);
        }

        public override void CreateEventsTable(IReadOnlyList<ColumnDef> columns)
        {
            store.Execute(c, tx, Sql.CreateEventsTable(columns), ct);
            tableColumns = columns.Select(x => x.Name).ToList();
        }

        public override void AddColumn(ColumnDef column)
        {
            store.Execute(c, tx, Sql.AddColumn(column), ct);
            tableColumns?.Add(column.Name); // ALTER TABLE ADD appends: the new column is the table's last
        }

        /// <summary>The position of a column in the table: its exact name, else the same name in another case (names compare case-insensitively).</summary>
        private int DestinationOrdinal(string name)
        {
            var columns = tableColumns ?? throw new InvalidOperationException("The events table's columns were not read before the bulk copy.");
            int i = columns.FindIndex(x => string.Equals(x, name, StringComparison.Ordinal));
            if (i < 0) i = columns.FindIndex(x => string.Equals(x, name, StringComparison.OrdinalIgnoreCase));
            if (i < 0) throw new InvalidOperationException($"The table {store.DisplayTable} has no column {name}: was it dropped during the load?");
            return i;
        }

        public override void WriteRows(RowStream rows, CancellationToken cancellationToken)
        {
            // The event source (a download, the pipeline) may fail mid-stream. Thrown inside WriteToServer, that leaves the
            // server waiting for the rest of the bulk load (SQL-Server-compatible servers have been seen to spin on it for
            // minutes); caught by the reader, the bulk copy ends cleanly and the failure is rethrown here: the batch rolls back.
            var reader = new EventDataReader(rows) { CaptureSourceFailure = true };
            var bulk = new SqlBulkCopy(c, BulkOptions, tx)
            {
                DestinationTableName = Sql.EventsTable,
                // Rows go to the server as they are read (never a DataTable of the batch); every BatchSize rows SqlClient
                // ends one INSERT BULK and starts the next, within this transaction, which bounds the server's per-command work.
                BatchSize = store.Options.BatchSize,
                EnableStreaming = true,
                // Per wait for the server, not for the whole load: a load may take as long as its data needs.
                BulkCopyTimeout = store.bulkCopyTimeout,
            };
            // By position in the table, from the names the catalog reported: SqlBulkCopy's name matching is case-sensitive
            // and compares with the names of a result set, which servers may report differently from the declaration.
            for (int i = 0; i < reader.Columns.Count; i++) bulk.ColumnMappings.Add(i, DestinationOrdinal(reader.Columns[i].Name));

            var copy = Task.Run(() => bulk.WriteToServerAsync(reader, cancellationToken), CancellationToken.None);
            try
            {
                // The copy has the token: SqlClient cancels it; a server that does not acknowledge it is not waited out.
                if (!SqlCancellation.WaitEnded(copy, cancellationToken))
                {
                    reader.Close(); // the copy reads no further rows
                    abandoned = copy.ContinueWith(_ => { ((IDisposable)bulk).Dispose(); reader.Dispose(); CloseConnection(); }, TaskScheduler.Default);
                    throw new OperationCanceledException("The load was cancelled; the server did not acknowledge it, so its connection is closed.", new AbandonedCopyException(), cancellationToken);
                }
                copy.GetAwaiter().GetResult();
                if (reader.SourceFailure is { } failure) ExceptionDispatchInfo.Capture(failure).Throw();
            }
            catch (Exception)
            {
                failed = true;
                throw;
            }
            finally
            {
                if (abandoned is null)
                {
                    ((IDisposable)bulk).Dispose();
                    reader.Dispose();
                }
            }
        }

        /// <summary>
        /// TableLock: a bulk-update (BU) lock for the transaction instead of a lock per row. Loads of a table never wait on it:
        /// they are serialised by the load lock (sp_getapplock) before they touch the table, and BU locks are compatible with
        /// each other. Readers of the table are blocked until the batch commits, as they would be anyway: a batch's rows are
        /// inserted in one transaction, and past about 5,000 row locks SQL Server escalates them to an exclusive table lock.
        /// In return the server can log minimally (heap, simple or bulk-logged recovery) and keeps no per-row locks.
        /// </summary>
        private static SqlBulkCopyOptions BulkOptions => SqlBulkCopyOptions.TableLock;

        public override void Record(BatchRecord record, long bytes, DateTimeOffset loadedAt, bool exists)
        {
            int n = store.Execute(c, tx, exists ? Sql.UpdateRecord : Sql.Record, ct, store.TableParameter, SqlParam.Key("@key", record.Key),
                SqlParam.Time("@range_start", record.RangeStart), SqlParam.Time("@range_end", record.RangeEnd), SqlParam.BigInt("@rows", record.Rows),
                SqlParam.BigInt("@bytes", bytes), SqlParam.Time("@loaded_at", loadedAt), SqlParam.Bit("@is_complete", record.IsComplete),
                SqlParam.BigInt("@source_events", record.SourceEvents));
            if (n != 1) throw new InvalidOperationException($"Batch {record.Key} was recorded by another load meanwhile; this load is rolled back.");
        }

        public override void CountInRun(long runId, string batchKey, long rows, long bytes) =>
            store.Execute(c, tx, Sql.CountInRun, ct, SqlParam.BigInt("@run_id", runId), SqlParam.BigInt("@rows", rows), SqlParam.BigInt("@bytes", bytes));

        public override void Commit()
        {
            tx!.Commit();
            tx.Dispose();
            tx = null;
        }

        public override void Rollback()
        {
            if (abandoned is not null) return; // the abandoned copy still uses the connection; closing it rolls back
            if (tx is not null)
            {
                try { tx.Rollback(); } catch (Exception) { failed = true; /* the server already rolled back, or the connection is gone */ }
                try { tx.Dispose(); } catch (Exception) { }
                tx = null;
                // After a failed bulk load the pooled connection can stay broken for bulk loads: drop the pool.
                if (failed) SqlConnection.ClearPool(c);
            }
        }

        /// <summary>Once an abandoned copy has ended (by its timeout): the connection is broken or mid-transaction, so it leaves the pool.</summary>
        private void CloseConnection()
        {
            try { tx?.Dispose(); } catch (Exception) { }
            tx = null;
            try { SqlConnection.ClearPool(c); } catch (Exception) { }
            c.Dispose();
        }

        public override void Dispose()
        {
            if (abandoned is not null) return;
            Rollback();
            c.Dispose();
        }
    }

    /// <summary>
    /// The state and run tables are shared by every events table of the schema, so the load lock of one table does not
    /// cover them: creating or altering one takes this lock (until the transaction ends) and checks again under it, so
    /// two first loads of different tables never both create it.
    /// </summary>
    private void TakeBookkeepingLock(SqlConnection c, SqlTransaction tx, CancellationToken ct) =>
        TakeAppLock(c, tx, sql.BookkeepingLockResource, $"the lock for creating the schema's bookkeeping tables (sp_getapplock resource " +
            $"'{sql.BookkeepingLockResource}') was not granted within {Options.LockTimeout}.", ct);

    /// <summary>Takes an exclusive transaction-owned app lock, waiting at most LockTimeout (then <see cref="LoadLockTimeoutException"/> with <paramref name="timeoutMessage"/>).</summary>
    private void TakeAppLock(SqlConnection c, SqlTransaction tx, string resource, string timeoutMessage, CancellationToken ct)
    {
        using var cmd = Command(c, tx, sql.GetAppLock, SqlParam.Text("@resource", resource, 255), SqlParam.Int("@timeout", lockTimeoutMs));
        // The server waits up to the lock timeout before it answers: the command may take that long on top of its own timeout.
        cmd.CommandTimeout = (int)Math.Min(int.MaxValue, (long)commandTimeout + lockTimeoutMs / 1000 + 1);
        int result = Convert.ToInt32(SqlCancellation.Run(c, cmd, static x => x.ExecuteScalar(), ct));
        if (result == -1) throw new LoadLockTimeoutException(timeoutMessage);
        if (result < 0) throw new InvalidOperationException($"Could not take the lock '{resource}' on {DisplayTable} (sp_getapplock returned {result}).");
    }

    private void EnsureRunsTable(SqlConnection c)
    {
        if (TableExists(c, null, Identifiers.RunsTable)) return;
        Require($"Create table {sql.Schema}.{Identifiers.RunsTable} (the sync's run history)");
        using var tx = c.BeginTransaction(IsolationLevel.ReadCommitted);
        TakeBookkeepingLock(c, tx, default);
        if (!TableExists(c, tx, Identifiers.RunsTable)) Execute(c, tx, sql.CreateRunsTable, default);
        tx.Commit();
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
        Execute(c, null, sql.EndRun, default, RunParameters(run));
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
