using FullStory.Engine.Events;
using FullStory.Engine.Loading;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// Nothing hangs: against the live server (FULLSTORY_SQLSERVER_CONNECTION_STRING), a load whose event source throws, whose
/// server stops answering, whose table's load lock is never released, whose connection is killed, or which is cancelled
/// while the server does not answer, ends (within a generous bound, no timing asserted), rolls its batch back, and says
/// what was being loaded and what to do. A loopback proxy (<see cref="TcpProxy"/>) plays the server that stops answering.
/// </summary>
public sealed class SqlServerFailureTests : IDisposable
{
    /// <summary>How long a test waits for a load to end before calling it hung (far above every timeout the tests set).</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    private readonly string table = "fail_" + Guid.NewGuid().ToString("N")[..10];
    private readonly List<IDisposable> cleanup = new();

    private static void SkipIfUnavailable() => Skip.If(SqlServerTestServer.SkipReason is not null, SqlServerTestServer.SkipReason);

    private EventStoreOptions Options(TimeSpan? command = null, TimeSpan? bulk = null, TimeSpan? lockTimeout = null) => new()
    {
        Table = table,
        BatchSize = 100,
        CommandTimeout = command ?? TimeSpan.FromSeconds(30),
        BulkCopyTimeout = bulk ?? TimeSpan.FromSeconds(30),
        LockTimeout = lockTimeout ?? TimeSpan.FromSeconds(30),
    };

    private IEventStore Open(string connectionString, EventStoreOptions options)
    {
        var store = EventStoreFactory.OpenSqlServer(connectionString, options);
        cleanup.Add(store);
        return store;
    }

    private (TcpProxy Proxy, string ConnectionString) Proxy()
    {
        var (proxy, cs) = TcpProxy.For(SqlServerTestServer.ConnectionString!, "fullstory-test-" + table);
        cleanup.Add(proxy);
        return (proxy, cs);
    }

    /// <summary>Events heavy enough (8 KB each on the wire) that a server that stops reading fills the socket buffers.</summary>
    private static IEnumerable<FullStoryEvent> Heavy(int count, Action<int>? at = null)
    {
        for (int i = 0; i < count; i++)
        {
            at?.Invoke(i);
            var e = LoadingTestData.Event(1000 + i);
            e.PageUserAgent = new string('u', 4000);
            yield return e;
        }
    }

    /// <summary>Runs the load on a worker and waits at most <see cref="Bound"/>; returns what it threw.</summary>
    private static Exception Ends(Action load)
    {
        var task = Task.Run(load);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(Bound), $"The load did not end within {Bound}: it hangs.");
        return Assert.ThrowsAny<Exception>(() => task.GetAwaiter().GetResult());
    }

    private long Rows(string? batchKey = null)
    {
        using var c = SqlServerTestServer.Open();
        // Waits for the server to roll back the failed load's transaction (it holds the rows' locks until then), boundedly.
        using (var set = new SqlCommand("SET LOCK_TIMEOUT 60000;", c)) set.ExecuteNonQuery();
        using var exists = new SqlCommand("SELECT COUNT(*) FROM sys.tables WHERE name = @t;", c);
        exists.Parameters.Add(new SqlParameter("@t", System.Data.SqlDbType.NVarChar, 128) { Value = table });
        if (Convert.ToInt64(exists.ExecuteScalar()) == 0) return 0;
        using var cmd = new SqlCommand($"SELECT COUNT(*) FROM [dbo].[{table}]" + (batchKey is null ? ";" : " WHERE _fs_batch = @k;"), c);
        cmd.Parameters.Add(new SqlParameter("@k", System.Data.SqlDbType.NVarChar, 320) { Value = (object?)batchKey ?? DBNull.Value });
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    private static void AssertNamesTheBatchAndWhatToDo(Exception ex, string batchKey, string problem)
    {
        var load = Assert.IsType<DestinationLoadException>(ex);
        Assert.Contains(batchKey, load.Message);
        Assert.Contains(problem, load.Message);
        Assert.Contains("rolled back", load.Message);
        Assert.Contains("run the command again", load.Message);
    }

    [SkippableFact]
    public void A_source_that_throws_mid_copy_rolls_back_and_leaves_the_table_usable()
    {
        SkipIfUnavailable();
        using var store = Open(SqlServerTestServer.ConnectionString!, Options());
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));
        var broken = new InvalidDataException("the download broke off");
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), Heavy(1000, i => { if (i == 750) throw broken; })));
        Assert.Same(broken, ex); // the source's own error, unchanged: the caller retries the batch
        Assert.False(store.IsLoaded("bundle:2"));
        Assert.Equal(10, Rows());

        // No server session was left busy with the aborted copy: the table can be altered and dropped at once.
        using (var c = SqlServerTestServer.Open())
        {
            using var set = new SqlCommand("SET LOCK_TIMEOUT 10000;", c);
            set.ExecuteNonQuery();
            using var alter = new SqlCommand($"ALTER TABLE [dbo].[{table}] ADD probe int NULL;", c);
            alter.ExecuteNonQuery();
        }
        Assert.Equal(1000, store.LoadBatch(new BatchInfo("bundle:2"), Heavy(1000)).Rows);
        Assert.Equal(1010, Rows());
    }

    [SkippableFact]
    public void A_server_that_stops_answering_mid_copy_ends_the_load_at_the_bulk_copy_timeout()
    {
        SkipIfUnavailable();
        var (proxy, cs) = Proxy();
        using var store = Open(cs, Options(bulk: TimeSpan.FromSeconds(3)));
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), Heavy(4000, i => { if (i == 300) proxy.Freeze(); })));
        AssertNamesTheBatchAndWhatToDo(ex, "bundle:2", "did not answer");
        Assert.IsType<SqlException>(ex.InnerException);

        proxy.Dispose(); // the server sees the connection go and rolls back
        Assert.Equal(0, Rows("bundle:2"));
        Assert.Equal(10, Rows());
        using var direct = Open(SqlServerTestServer.ConnectionString!, Options());
        Assert.False(direct.IsLoaded("bundle:2"));
        Assert.Equal(4000, direct.LoadBatch(new BatchInfo("bundle:2"), Heavy(4000)).Rows);
    }

    [SkippableFact]
    public void A_server_that_stops_answering_before_the_load_ends_it_at_the_command_timeout()
    {
        SkipIfUnavailable();
        var (proxy, cs) = Proxy();
        using var store = Open(cs, Options(command: TimeSpan.FromSeconds(3)));
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));
        proxy.Freeze();
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), LoadingTestData.Synthetic(10)));
        AssertNamesTheBatchAndWhatToDo(ex, "bundle:2", "did not answer");
        proxy.Dispose();
        Assert.Equal(10, Rows());
    }

    [SkippableFact]
    public void Cancelling_a_copy_the_server_does_not_answer_returns_and_the_server_rolls_it_back()
    {
        SkipIfUnavailable();
        var (proxy, cs) = Proxy();
        // Timeouts far beyond the test's bound: only the cancellation can end this load in time.
        var long_ = TimeSpan.FromMinutes(10);
        using var store = Open(cs, Options(command: long_, bulk: long_));
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));
        using var cts = new CancellationTokenSource();
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), Heavy(4000, i =>
        {
            if (i == 300) { proxy.Freeze(); cts.CancelAfter(TimeSpan.FromSeconds(2)); }
        }), cancellationToken: cts.Token));
        Assert.IsAssignableFrom<OperationCanceledException>(ex);

        proxy.Dispose();
        Assert.Equal(0, Rows("bundle:2"));
        using var direct = Open(SqlServerTestServer.ConnectionString!, Options());
        Assert.False(direct.IsLoaded("bundle:2"));
    }

    [SkippableFact]
    public void A_load_lock_that_is_never_released_fails_the_load_at_the_lock_timeout()
    {
        SkipIfUnavailable();
        using var store = Open(SqlServerTestServer.ConnectionString!, Options(lockTimeout: TimeSpan.FromSeconds(2)));
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));

        // Another session takes the table's load lock and keeps it (a stuck process, a forgotten transaction).
        using var holder = SqlServerTestServer.Open(new SqlConnectionStringBuilder(SqlServerTestServer.ConnectionString) { Pooling = false }.ConnectionString);
        using (var take = new SqlCommand(SqlServerRunLockSql, holder))
        {
            take.Parameters.Add(new SqlParameter("@resource", System.Data.SqlDbType.NVarChar, 255) { Value = new SqlServerStatements("dbo", table).LockResource });
            Assert.True(Convert.ToInt32(take.ExecuteScalar()) >= 0);
        }
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), LoadingTestData.Synthetic(10)));
        AssertNamesTheBatchAndWhatToDo(ex, "bundle:2", "load lock");
        Assert.Contains("sp_getapplock", ex.Message);
        Assert.False(store.IsLoaded("bundle:2"));

        holder.Close(); // the session ends (unpooled), and with it the lock
        Assert.Equal(10, store.LoadBatch(new BatchInfo("bundle:2"), LoadingTestData.Synthetic(10)).Rows);
    }

    [SkippableFact]
    public void Waiting_for_a_load_lock_is_cancellable()
    {
        SkipIfUnavailable();
        using var store = Open(SqlServerTestServer.ConnectionString!, Options(lockTimeout: TimeSpan.FromMinutes(10)));
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));
        using var holder = SqlServerTestServer.Open(new SqlConnectionStringBuilder(SqlServerTestServer.ConnectionString) { Pooling = false }.ConnectionString);
        using (var take = new SqlCommand(SqlServerRunLockSql, holder))
        {
            take.Parameters.Add(new SqlParameter("@resource", System.Data.SqlDbType.NVarChar, 255) { Value = new SqlServerStatements("dbo", table).LockResource });
            Assert.True(Convert.ToInt32(take.ExecuteScalar()) >= 0);
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), LoadingTestData.Synthetic(10), cancellationToken: cts.Token));
        Assert.IsAssignableFrom<OperationCanceledException>(ex);
        holder.Close();
        Assert.False(store.IsLoaded("bundle:2"));
    }

    private const string SqlServerRunLockSql =
        "DECLARE @result int; EXEC @result = sp_getapplock @Resource = @resource, @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = 0; SELECT @result;";

    [SkippableFact]
    public void A_connection_killed_mid_load_fails_the_load_and_a_rerun_loads_it_once()
    {
        SkipIfUnavailable();
        var builder = new SqlConnectionStringBuilder(SqlServerTestServer.ConnectionString) { ApplicationName = "fullstory-test-" + table };
        using var store = Open(builder.ConnectionString, Options());
        store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(10));
        var ex = Ends(() => store.LoadBatch(new BatchInfo("bundle:2"), Heavy(2000, i =>
        {
            if (i != 500) return;
            using var admin = SqlServerTestServer.Open();
            using var find = new SqlCommand("SELECT session_id FROM sys.dm_exec_sessions WHERE program_name = @app AND session_id <> @@SPID;", admin);
            find.Parameters.Add(new SqlParameter("@app", System.Data.SqlDbType.NVarChar, 128) { Value = builder.ApplicationName });
            var sessions = new List<int>();
            using (var r = find.ExecuteReader()) while (r.Read()) sessions.Add(Convert.ToInt32(r.GetValue(0)));
            Assert.NotEmpty(sessions);
            foreach (var id in sessions) new SqlCommand($"KILL {id};", admin).ExecuteNonQuery();
        })));
        AssertNamesTheBatchAndWhatToDo(ex, "bundle:2", "connection to the server");
        Assert.Equal(0, Rows("bundle:2"));
        Assert.False(store.IsLoaded("bundle:2"));
        Assert.Equal(2000, store.LoadBatch(new BatchInfo("bundle:2"), Heavy(2000)).Rows);
        Assert.Equal(2010, Rows());
    }

    [SkippableFact]
    public void First_loads_of_different_tables_at_once_share_the_bookkeeping_tables_they_create()
    {
        SkipIfUnavailable();
        // A new schema: no state or run table yet, so every load below wants to create them (different tables: different load locks).
        string schema = "fs_c_" + Guid.NewGuid().ToString("N")[..8];
        var tables = Enumerable.Range(0, 4).Select(i => $"t{i}").ToList();
        using (var c = SqlServerTestServer.Open()) new SqlCommand($"EXEC(N'CREATE SCHEMA [{schema}]');", c).ExecuteNonQuery();
        try
        {
            using var start = new Barrier(tables.Count);
            var loads = tables.Select(t => Task.Run(() =>
            {
                using var store = EventStoreFactory.OpenSqlServer(SqlServerTestServer.ConnectionString!, new EventStoreOptions { Table = t, Schema = schema });
                start.SignalAndWait();
                var report = store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Synthetic(100));
                long run = store.BeginRun(new SyncRunRecord { StartedAt = DateTimeOffset.UtcNow, Api = "Bundles", Table = $"{schema}.{t}" });
                return (report.Rows, run);
            })).ToArray();
            Assert.True(Task.WaitAll(loads, Bound), "The loads did not end.");
            Assert.All(loads, l => Assert.Equal(100, l.Result.Rows));
            Assert.Equal(tables.Count, loads.Select(l => l.Result.run).Distinct().Count());
            using var check = SqlServerTestServer.Open();
            using var state = new SqlCommand($"SELECT COUNT(*) FROM [{schema}].[{Identifiers.StateTable}] WHERE batch_key = N'bundle:1';", check);
            Assert.Equal(tables.Count, Convert.ToInt32(state.ExecuteScalar()));
        }
        finally
        {
            using var c = SqlServerTestServer.Open();
            using (var set = new SqlCommand("SET LOCK_TIMEOUT 60000;", c)) set.ExecuteNonQuery();
            foreach (var t in tables.Append(Identifiers.StateTable).Append(Identifiers.RunsTable))
                new SqlCommand($"IF OBJECT_ID(N'[{schema}].[{t}]', N'U') IS NOT NULL DROP TABLE [{schema}].[{t}];", c).ExecuteNonQuery();
            new SqlCommand($"EXEC(N'DROP SCHEMA [{schema}]');", c).ExecuteNonQuery();
        }
    }

    public void Dispose()
    {
        foreach (var d in cleanup) { try { d.Dispose(); } catch (Exception) { } }
        if (SqlServerTestServer.SkipReason is not null) return;
        using var c = SqlServerTestServer.Open();
        using (var set = new SqlCommand("SET LOCK_TIMEOUT 60000;", c)) set.ExecuteNonQuery();
        using var drop = new SqlCommand($"IF OBJECT_ID(N'[dbo].[{table}]', N'U') IS NOT NULL DROP TABLE [dbo].[{table}];", c);
        drop.ExecuteNonQuery();
        using var del = new SqlCommand($"IF OBJECT_ID(N'[dbo].[{Identifiers.StateTable}]', N'U') IS NOT NULL DELETE FROM [dbo].[{Identifiers.StateTable}] WHERE table_name = @t;", c);
        del.Parameters.Add(new SqlParameter("@t", System.Data.SqlDbType.NVarChar, 128) { Value = table });
        del.ExecuteNonQuery();
    }
}
