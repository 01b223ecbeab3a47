using FullStory.Engine.Events;
using FullStory.Engine.Loading;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Tests.Loading;

/// <summary>The shared store suite on real SQLite files, plus what only SQLite can show (file-level crash images, WAL).</summary>
public sealed class SqliteEventStoreTests : EventStoreTests
{
    private readonly TestData.TempDirectory dir = new();

    private string DbPath => dir.File("fullstory.db");

    protected override string? SkipReason => null;

    protected override IEventStore Open(EventStoreOptions options) => EventStoreFactory.OpenSqlite(DbPath, options);

    private SqliteConnection Connect(string? path = null)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path ?? DbPath, Pooling = false }.ConnectionString);
        c.Open();
        return c;
    }

    private static string Q(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";

    protected override List<Dictionary<string, object?>> ReadRawRows(string table) => ReadRawRows(table, null);

    private List<Dictionary<string, object?>> ReadRawRows(string table, string? path)
    {
        using var c = Connect(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT * FROM {Q(table)} ORDER BY rowid;";
        using var r = cmd.ExecuteReader();
        var rows = new List<Dictionary<string, object?>>();
        while (r.Read())
        {
            var row = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
            for (int i = 0; i < r.FieldCount; i++) row[r.GetName(i)] = r.IsDBNull(i) ? null : r.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    protected override IReadOnlyList<string> ColumnNames(string table)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT name FROM pragma_table_info($t);";
        cmd.Parameters.AddWithValue("$t", table);
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return list;
    }

    protected override bool TableExists(string table)
    {
        if (!File.Exists(DbPath)) return false;
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $t;";
        cmd.Parameters.AddWithValue("$t", table);
        return (long)cmd.ExecuteScalar()! > 0;
    }

    protected override void CreateTable(string table, IEnumerable<ColumnDef> columns)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"CREATE TABLE {Q(table)} ({string.Join(", ", columns.Select(col => Q(col.Name) + " " + SqliteEventStore.TypeOf(col.Kind)))});";
        cmd.ExecuteNonQuery();
    }

    protected override void CreateIncompatibleTable(string table)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"CREATE TABLE {Q(table)} (IndvId TEXT, EventStart INTEGER, foo INT);";
        cmd.ExecuteNonQuery();
    }

    protected override Dictionary<string, (bool Complete, long Rows)> StateRecords()
    {
        var records = new Dictionary<string, (bool, long)>();
        if (!TableExists(Identifiers.StateTable)) return records;
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT batch_key, is_complete, row_count FROM {Q(Identifiers.StateTable)} WHERE table_name = $t;";
        cmd.Parameters.AddWithValue("$t", TableName);
        using var r = cmd.ExecuteReader();
        while (r.Read()) records[r.GetString(0)] = (r.GetInt64(1) != 0, r.GetInt64(2));
        return records;
    }

    private long Scalar(string sql)
    {
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    public override void Dispose() => dir.Dispose();

    [Fact]
    public void Default_table_is_events_in_WAL_mode_with_ISO_timestamps_and_real_types()
    {
        using (var store = EventStoreFactory.OpenSqlite(DbPath, new EventStoreOptions()))
        {
            Assert.Equal("sqlite:" + Path.GetFullPath(DbPath), store.Destination);
            var report = store.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Stream(TestData.LegacySample, "bundle:1"));
            Assert.Equal("events", report.Table);
        }
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string)cmd.ExecuteScalar()!);
        cmd.CommandText = "SELECT typeof(UserId), typeof(EventStart), EventStart, typeof(PageDuration), typeof(EventCumulativeLayoutShift) FROM events ORDER BY rowid LIMIT 1;";
        using var r = cmd.ExecuteReader();
        Assert.True(r.Read());
        Assert.Equal("integer", r.GetString(0));
        Assert.Equal("text", r.GetString(1));
        Assert.Equal("2020-08-27T06:20:26.900Z", r.GetString(2));
        Assert.Equal("integer", r.GetString(3));
        r.Close();
        cmd.CommandText = "SELECT type FROM pragma_table_info('events') WHERE name IN ('UserId','EventCumulativeLayoutShift','EventStart','CustomVars') ORDER BY cid;";
        using var t = cmd.ExecuteReader();
        var types = new List<string>();
        while (t.Read()) types.Add(t.GetString(0));
        Assert.Equal(["INTEGER", "TEXT", "REAL", "TEXT"], types);
    }

    [Fact]
    public void Timestamps_stored_as_text_sort_and_compare_correctly()
    {
        using (var store = OpenDefault())
            store.LoadBatch(new BatchInfo("b"), LoadingTestData.Stream(TestData.SegmentSample, "b"));
        var starts = ReadRows().Select(r => (DateTime)r["EventStart"]!).ToList();
        var from = new DateTime(2020, 8, 27, 6, 20, 26, 900, DateTimeKind.Utc);
        var to = from.AddMinutes(1);
        Assert.Equal(starts.Count(d => d >= from && d < to),
            Scalar($"SELECT count(*) FROM {Q(TableName)} WHERE EventStart >= '2020-08-27T06:20:26.900Z' AND EventStart < '2020-08-27T06:21:26.900Z';"));
        using var c = Connect();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT EventStart FROM {Q(TableName)} ORDER BY EventStart;";
        using var r = cmd.ExecuteReader();
        var sorted = new List<string>();
        while (r.Read()) sorted.Add(r.GetString(0));
        Assert.Equal(starts.Order().Select(d => d.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'")), sorted);
    }

    [Fact]
    public void A_connection_that_dies_mid_transaction_leaves_no_partial_batch()
    {
        var store = OpenDefault();
        store.LoadBatch(new BatchInfo("bundle:before"), LoadingTestData.Synthetic(2));
        IEnumerable<FullStoryEvent> DiesMidway()
        {
            int n = 0;
            foreach (var e in LoadingTestData.Synthetic(500))
            {
                if (++n == 300) store.Dispose(); // the "process" goes away: its connection closes without a commit
                yield return e;
            }
        }
        Assert.ThrowsAny<Exception>(() => store.LoadBatch(new BatchInfo("bundle:killed"), DiesMidway()));

        using var fresh = OpenDefault();
        Assert.False(fresh.IsLoaded("bundle:killed"));
        Assert.Equal(2, ReadRows().Count);
        Assert.Equal(500, fresh.LoadBatch(new BatchInfo("bundle:killed"), LoadingTestData.Synthetic(500)).Rows);
        Assert.Equal(502, ReadRows().Count);
    }

    [Fact]
    public void A_crash_image_taken_mid_load_recovers_without_the_batch()
    {
        // What a killed process leaves on disk is the database and its WAL as they are at that instant:
        // copy them mid-transaction (after enough rows that SQLite has spilled pages to the WAL) and open the copy.
        string image = dir.File("crash");
        Directory.CreateDirectory(image);
        using var store = OpenDefault();
        store.LoadBatch(new BatchInfo("bundle:before"), LoadingTestData.Synthetic(10));
        IEnumerable<FullStoryEvent> SnapshotMidway()
        {
            int n = 0;
            foreach (var e in LoadingTestData.Synthetic(30000))
            {
                if (++n == 25000)
                {
                    foreach (var f in Directory.GetFiles(dir.Path, "fullstory.db*"))
                        File.Copy(f, Path.Combine(image, Path.GetFileName(f)));
                }
                yield return e;
            }
        }
        Assert.Equal(30000, store.LoadBatch(new BatchInfo("bundle:big"), SnapshotMidway()).Rows);

        string copy = Path.Combine(image, "fullstory.db");
        Assert.Equal(10, ReadRawRows(TableName, copy).Count);
        using var crashed = EventStoreFactory.OpenSqlite(copy, Options());
        Assert.False(crashed.IsLoaded("bundle:big"));
        Assert.True(crashed.IsLoaded("bundle:before"));
        Assert.Equal(30000, crashed.LoadBatch(new BatchInfo("bundle:big"), LoadingTestData.Synthetic(30000)).Rows);
        Assert.Equal(30010, ReadRawRows(TableName, copy).Count);
    }

    [Fact]
    public void WhatIf_does_not_even_create_the_database_file()
    {
        var options = Options();
        options.ConfirmSchemaChange = _ => false;
        using var store = Open(options);
        Assert.False(store.IsLoaded("b"));
        Assert.Empty(store.GetLoadedBatches());
        Assert.Empty(store.GetRuns());
        Assert.Throws<SchemaChangeDeclinedException>(() => store.LoadBatch(new BatchInfo("b"), LoadingTestData.Synthetic(1)));
        Assert.False(File.Exists(DbPath));
    }

    [Fact]
    public async Task A_second_writer_waits_for_the_first_and_then_skips()
    {
        using var s1 = OpenDefault();
        using var s2 = OpenDefault();
        s1.LoadBatch(new BatchInfo("warmup"), LoadingTestData.Synthetic(1));
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        IEnumerable<FullStoryEvent> Held()
        {
            inside.Set();
            release.Wait();
            foreach (var e in LoadingTestData.Synthetic(20)) yield return e;
        }
        var first = Task.Run(() => s1.LoadBatch(new BatchInfo("k"), Held()));
        inside.Wait();
        var second = Task.Run(() => s2.LoadBatch(new BatchInfo("k"), LoadingTestData.Synthetic(20)));
        Assert.NotSame(second, await Task.WhenAny(second, Task.Delay(300))); // blocked on the write lock, not loading its own copy
        release.Set();
        Assert.False((await first).AlreadyLoaded);
        Assert.True((await second).AlreadyLoaded);
        Assert.Equal(21, ReadRows().Count);
    }
}
