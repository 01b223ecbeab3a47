using System.Text.Json;
using DuckDB.NET.Data;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// The shared store suite on a Parquet lake folder, every row read back by an independent engine (DuckDB's read_parquet
/// with Hive partitioning and schema merge by name), plus what only the lake has: partitions, files, crash images.
/// </summary>
public sealed class ParquetEventStoreTests : EventStoreTests
{
    private readonly TestData.TempDirectory dir = new();

    private string Folder => dir.File("lake");

    protected override string? SkipReason => null;

    protected override string HostileTableName => "ev]'ents; DROP TABLE x;-- ";

    protected override IEventStore Open(EventStoreOptions options) => EventStoreFactory.OpenParquet(Folder, options);

    private string StateDir(string table) => Path.Combine(Folder, "_fullstory", "tables", table);

    private bool HasFiles(string table) =>
        Directory.Exists(Path.Combine(Folder, table)) && Directory.EnumerateFiles(Path.Combine(Folder, table), "*.parquet", SearchOption.AllDirectories).Any();

    /// <summary>DuckDB's read_parquet over the table's partitions, as a user would query the lake.</summary>
    internal static string ReadParquet(string folder, string table) =>
        $"read_parquet('{Path.Combine(folder, table).Replace("'", "''")}/**/*.parquet', hive_partitioning = true, union_by_name = true)";

    internal static List<Dictionary<string, object?>> Query(string sql)
    {
        using var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SET TimeZone = 'UTC';";
        cmd.ExecuteNonQuery();
        cmd.CommandText = sql;
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

    protected override List<Dictionary<string, object?>> ReadRawRows(string table) =>
        HasFiles(table) ? Query($"SELECT * EXCLUDE (event_date) FROM {ReadParquet(Folder, table)};") : new();

    protected override IReadOnlyList<string> ColumnNames(string table)
    {
        if (HasFiles(table))
            return Query($"DESCRIBE SELECT * EXCLUDE (event_date) FROM {ReadParquet(Folder, table)};").Select(r => (string)r["column_name"]!).ToList();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(StateDir(table), "schema.json")));
        return doc.RootElement.GetProperty("Columns").EnumerateArray().Select(c => c.GetProperty("Name").GetString()!).ToList();
    }

    protected override bool TableExists(string table) => HasFiles(table) || File.Exists(Path.Combine(StateDir(table), "schema.json"));

    private void WriteSchema(string table, IEnumerable<(string Name, ColumnKind Kind)> columns)
    {
        Directory.CreateDirectory(StateDir(table));
        File.WriteAllText(Path.Combine(StateDir(table), "schema.json"),
            JsonSerializer.Serialize(new { Columns = columns.Select(c => new { c.Name, Kind = (int)c.Kind }) }));
    }

    protected override void CreateTable(string table, IEnumerable<ColumnDef> columns) => WriteSchema(table, columns.Select(c => (c.Name, c.Kind)));

    protected override void CreateIncompatibleTable(string table) =>
        WriteSchema(table, [("IndvId", ColumnKind.Text), ("EventStart", ColumnKind.Int64), ("foo", ColumnKind.Int64)]);

    protected override Dictionary<string, (bool Complete, long Rows)> StateRecords()
    {
        var records = new Dictionary<string, (bool, long)>();
        string batches = Path.Combine(StateDir(TableName), "batches");
        if (!Directory.Exists(batches)) return records;
        foreach (var file in Directory.EnumerateFiles(batches, "*.json"))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            records[doc.RootElement.GetProperty("Key").GetString()!] = (doc.RootElement.GetProperty("Complete").GetBoolean(), doc.RootElement.GetProperty("Rows").GetInt64());
        }
        return records;
    }

    public override void Dispose() => dir.Dispose();

    // ---- What only the lake has ----

    private const string Key = "bundle:156314880048";

    /// <summary>The sample's events (Aug 27-30, 2020), spread over more UTC days.</summary>
    private static List<FullStoryEvent> SpreadOverDays(string source)
    {
        var events = LoadingTestData.Indexed(TestData.LegacySample, source).ToList();
        for (int i = 0; i < events.Count; i++)
            events[i].EventStart = new UtcTimestamp(events[i].EventStart!.Value.AddDays(i % 3 - 1));
        return events;
    }

    private Dictionary<string, long> CountsPerDay() =>
        Query($"SELECT CAST(event_date AS VARCHAR) AS d, count(*) AS n FROM {ReadParquet(Folder, TableName)} GROUP BY ALL ORDER BY d;")
            .ToDictionary(r => (string)r["d"]!, r => Convert.ToInt64(r["n"]));

    private List<string> FilesOf(string table) =>
        Directory.EnumerateFiles(Path.Combine(Folder, table), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Folder, f).Replace('\\', '/')).Order().ToList();

    [Fact]
    public void Files_are_partitioned_by_the_UTC_day_of_EventStart_with_typed_columns()
    {
        var events = SpreadOverDays(Key);
        var expected = events.GroupBy(e => e.EventStart!.Value.UtcDateTime.ToString("yyyy-MM-dd")).ToDictionary(g => g.Key, g => (long)g.Count());
        using var store = OpenDefault();
        Assert.Equal(144, store.LoadBatch(new BatchInfo(Key), events).Rows);

        Assert.Equal(expected, CountsPerDay());
        var files = FilesOf(TableName);
        Assert.Equal(expected.Count, files.Count); // one file per batch and partition
        Assert.All(files, f => Assert.Matches($@"^{TableName}/event_date=\d{{4}}-\d{{2}}-\d{{2}}/bundle-156314880048-[0-9a-f]{{16}}-000\.parquet$", f));

        var types = Query($"DESCRIBE SELECT * FROM {ReadParquet(Folder, TableName)};").ToDictionary(r => (string)r["column_name"]!, r => (string)r["column_type"]!);
        Assert.Equal("BIGINT", types["UserId"]);
        Assert.Equal("BIGINT", types["PageDuration"]);
        Assert.Equal("BIGINT", types["_fs_index"]);
        Assert.Equal("TIMESTAMP WITH TIME ZONE", types["EventStart"]);
        Assert.Equal("TIMESTAMP WITH TIME ZONE", types["_fs_loaded_at"]);
        Assert.Equal("DOUBLE", types["EventCumulativeLayoutShift"]);
        Assert.Equal("VARCHAR", types["PageUrl"]);
        Assert.Equal("VARCHAR", types["CustomVars"]);
        Assert.Equal("DATE", types["event_date"]);
        // Milliseconds survive, as an engine prints them.
        var first = Query($"SELECT strftime(EventStart, '%Y-%m-%dT%H:%M:%S.%g') AS t FROM {ReadParquet(Folder, TableName)} WHERE _fs_index = 0;");
        Assert.Equal(events[0].EventStart!.Value.ToString(), Assert.Single(first)["t"] + "Z");
    }

    [Fact]
    public void Loading_a_batch_again_after_a_lost_record_overwrites_its_files_and_never_adds()
    {
        using (var store = OpenDefault()) store.LoadBatch(new BatchInfo(Key), SpreadOverDays(Key));
        var files = FilesOf(TableName);
        // The record is gone (as if the state were lost): the same batch loads again into the same file names.
        foreach (var f in Directory.EnumerateFiles(Path.Combine(StateDir(TableName), "batches"))) File.Delete(f);
        using (var store = OpenDefault()) Assert.Equal(144, store.LoadBatch(new BatchInfo(Key), SpreadOverDays(Key)).Rows);
        Assert.Equal(files, FilesOf(TableName));
        Assert.Equal(144, ReadRows().Count);
    }

    [Theory]
    [InlineData("staged", 0)]
    [InlineData("committed", 1)]
    [InlineData("moved", 1)]
    [InlineData("counted", 1)] // the run file is updated, the manifest not yet deleted: applied again, counted once
    public void A_batch_counts_in_its_run_exactly_once_whatever_step_of_the_commit_a_crash_interrupts(string step, int counted)
    {
        long runId;
        using (var store = (ParquetEventStore)OpenDefault())
        {
            runId = store.BeginRun(new SyncRunRecord { StartedAt = DateTimeOffset.UtcNow, Api = "Bundles", Table = TableName });
            store.FaultPoint = s => { if (s == step) throw new IOException("crash at " + s); };
            Assert.Throws<IOException>(() => store.LoadBatch(new BatchInfo(Key) { RunId = runId }, SpreadOverDays(Key)));
        }
        // The next load completes (or discards) the interrupted commit, and with it the run's count.
        using (var next = OpenDefault()) next.LoadBatch(new BatchInfo("other"), LoadingTestData.Indexed(TestData.SegmentSample, "other"));
        using (var store = OpenDefault())
        {
            var run = store.GetRuns().Single(r => r.RunId == runId);
            Assert.Equal((counted, counted * 144L), (run.Batches, run.Rows));
            Assert.Equal(counted == 1, store.IsLoaded(Key));
            // A batch loaded for the run later counts on top, once.
            if (counted == 0) store.LoadBatch(new BatchInfo(Key) { RunId = runId }, SpreadOverDays(Key));
            run = store.GetRuns().Single(r => r.RunId == runId);
            Assert.Equal((1, 144L), (run.Batches, run.Rows));
        }
    }

    [Theory]
    [InlineData("staged", false)]    // files written and flushed, no manifest yet: the batch did not happen
    [InlineData("committed", true)]  // the manifest is written: the batch happened, the next load completes it
    [InlineData("moved", true)]      // crashed between two renames
    public void A_crash_at_any_step_of_a_commit_leaves_all_of_the_batch_or_none_after_the_next_load(string step, bool committed)
    {
        using (var warm = OpenDefault()) warm.LoadBatch(new BatchInfo("bundle:1"), LoadingTestData.Indexed(TestData.SegmentSample, "bundle:1"));
        var store = (ParquetEventStore)OpenDefault();
        store.FaultPoint = s => { if (s == step) throw new IOException("crash at " + s); };
        Assert.Throws<IOException>(() => store.LoadBatch(new BatchInfo(Key), SpreadOverDays(Key)));
        store.FaultPoint = null;

        // Before any further load: nothing of it, or (crashed mid-rename) at most what was renamed, never a row twice.
        int visible = ReadRows().Count(r => (string?)r[EventTableModel.BatchColumn] == Key);
        Assert.True(visible == 0 || committed, $"{visible} rows of an uncommitted batch are visible");

        // The next load (of anything) first completes or discards it.
        using (var next = OpenDefault())
        {
            var report = next.LoadBatch(new BatchInfo(Key), SpreadOverDays(Key));
            Assert.Equal(committed, report.AlreadyLoaded);
        }
        var rows = ReadRows();
        Assert.Equal(144, rows.Count(r => (string?)r[EventTableModel.BatchColumn] == Key));
        Assert.Equal(288, rows.Count);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(Path.Combine(StateDir(TableName))), p => p.EndsWith(".tmp") || Path.GetFileName(p).StartsWith("manifest-"));
        Assert.False(Directory.Exists(Path.Combine(StateDir(TableName), "staging")) && Directory.EnumerateFileSystemEntries(Path.Combine(StateDir(TableName), "staging")).Any());
    }

    [Fact]
    public void Custom_var_columns_appear_in_later_files_and_readers_merge_them_by_name()
    {
        using var store = Open(Options(customVarColumns: true));
        store.LoadBatch(new BatchInfo("b1"), [LoadingTestData.Event(1, customVars: "{\"evt_a_str\":\"x\"}", source: "b1")]);
        store.LoadBatch(new BatchInfo("b2"), [LoadingTestData.Event(2, customVars: "{\"evt_b_int\":7}", source: "b2")]);
        var rows = ReadRows().ToDictionary(r => (long)r["UserId"]!);
        Assert.Equal("x", rows[1]["evt_a_str"]);
        Assert.Null(rows[1]["evt_b_int"]);
        Assert.Equal(7L, rows[2]["evt_b_int"]);
        Assert.Null(rows[2]["evt_a_str"]);
    }

    [Fact]
    public void A_table_name_that_is_not_a_folder_name_is_refused()
    {
        foreach (var name in new[] { "a/b", "_hidden", ".dot", "a:b" })
            Assert.Equal("Table", Assert.Throws<ArgumentException>(() => Open(new EventStoreOptions { Table = name })).ParamName);
    }
}
