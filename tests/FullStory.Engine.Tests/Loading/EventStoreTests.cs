using System.Globalization;
using System.Text.Json.Nodes;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// End-to-end store tests, written once and run against every store: SQLite always (which proves the shared logic),
/// SQL Server when FULLSTORY_SQLSERVER_CONNECTION_STRING is set (otherwise reported as skipped).
/// </summary>
public abstract class EventStoreTests : IDisposable
{
    protected EventStoreTests() => TableName = "events_" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>A table name unique to this test.</summary>
    protected string TableName { get; set; }

    /// <summary>Non-null when this store cannot be tested here.</summary>
    protected abstract string? SkipReason { get; }
    protected abstract IEventStore Open(EventStoreOptions options);
    /// <summary>Every row of the table, values as the database returns them.</summary>
    protected abstract List<Dictionary<string, object?>> ReadRawRows(string table);
    protected abstract IReadOnlyList<string> ColumnNames(string table);
    protected abstract bool TableExists(string table);
    /// <summary>Creates a table with just these columns, as an older version of the module would have.</summary>
    protected abstract void CreateTable(string table, IEnumerable<ColumnDef> columns);
    /// <summary>Creates a table a user made: IndvId as text, EventStart as an integer, and a column of their own (foo).</summary>
    protected abstract void CreateIncompatibleTable(string table);
    /// <summary>Rows of the state table for the test's table: key -> (is_complete, row_count).</summary>
    protected abstract Dictionary<string, (bool Complete, long Rows)> StateRecords();
    public abstract void Dispose();

    protected void SkipIfUnavailable() => Skip.If(SkipReason is not null, SkipReason);

    /// <summary>
    /// Non-null (the reason) when the server under test is a stand-in known to differ from the real database in this
    /// respect; the test case that depends on it is skipped there, the rest of the suite still runs.
    /// </summary>
    protected virtual string? KnownDifference(ServerDifference difference) => null;

    protected void SkipIfServerDiffers(ServerDifference difference)
    {
        SkipIfUnavailable();
        var reason = KnownDifference(difference);
        Skip.If(reason is not null, reason);
    }

    /// <summary>A table name that breaks naive SQL (a folder name must hold it too for the Parquet store, which cannot take '"').</summary>
    protected virtual string HostileTableName => "ev]\"ents; DROP TABLE x;-- ";

    protected EventStoreOptions Options(bool customVarColumns = false) => new() { Table = TableName, CustomVarColumns = customVarColumns, BatchSize = 50 };

    protected IEventStore OpenDefault(bool customVarColumns = false) => Open(Options(customVarColumns));

    /// <summary>Rows with values normalised by column kind: integers as long, timestamps as UTC DateTime, booleans as bool.</summary>
    protected List<Dictionary<string, object?>> ReadRows(string? table = null)
    {
        var model = new EventTableModel(true);
        var kinds = EventTableModel.FixedColumns.ToDictionary(c => c.Name, c => c.Kind, StringComparer.OrdinalIgnoreCase);
        var rows = ReadRawRows(table ?? TableName);
        foreach (var row in rows)
        {
            foreach (var key in row.Keys.ToList())
            {
                var kind = kinds.TryGetValue(key, out var k) ? k : EventTableModel.CustomKindOf(key);
                row[key] = Normalize(row[key], kind);
            }
        }
        return rows;
    }

    private static object? Normalize(object? v, ColumnKind kind) => v switch
    {
        null or DBNull => null,
        _ => kind switch
        {
            ColumnKind.Int64 or ColumnKind.Int32 => Convert.ToInt64(v, CultureInfo.InvariantCulture),
            ColumnKind.Double => Convert.ToDouble(v, CultureInfo.InvariantCulture),
            ColumnKind.Boolean => Convert.ToBoolean(v, CultureInfo.InvariantCulture),
            ColumnKind.Timestamp when v is string s => DateTime.SpecifyKind(
                DateTime.ParseExact(s, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), DateTimeKind.Utc),
            ColumnKind.Timestamp when v is DateTime d => DateTime.SpecifyKind(d, DateTimeKind.Utc),
            _ => v,
        },
    };

    private static string CustomColumnName(IReadOnlyList<string> columns, string key)
    {
        var model = new EventTableModel(true);
        model.SetExisting(columns);
        return model.CustomColumn(key).Name;
    }

    [SkippableFact]
    public void Both_samples_load_with_exact_row_counts_and_values()
    {
        SkipIfUnavailable();
        using var store = OpenDefault();
        var a = store.LoadBatch(new BatchInfo("bundle:156314880048"), LoadingTestData.Stream(TestData.LegacySample, "bundle:156314880048"));
        var b = store.LoadBatch(new BatchInfo("export:everyone:2020-08-27T00:00:00Z/2020-08-28T00:00:00Z"),
            LoadingTestData.Stream(TestData.SegmentSample, "export:x"));

        Assert.Equal(144, a.Rows);
        Assert.Equal(144, b.Rows);
        Assert.False(a.AlreadyLoaded);
        Assert.Equal(store.Destination, a.Destination);

        var expected = new List<string>();
        foreach (var file in new[] { TestData.LegacySample, TestData.SegmentSample })
            foreach (var node in JsonNode.Parse(File.ReadAllText(file))!.AsArray())
                expected.Add(LoadingTestData.Canonical(LoadingTestData.ExpectedRow(node!.AsObject())));

        var rows = ReadRows();
        Assert.Equal(288, rows.Count);
        Assert.Equal(expected.Order(StringComparer.Ordinal), rows.Select(LoadingTestData.Canonical).Order(StringComparer.Ordinal));
        Assert.Equal(144, rows.Count(r => (string?)r[EventTableModel.BatchColumn] == "bundle:156314880048"));
        Assert.All(rows, r => Assert.Equal((string?)r[EventTableModel.BatchColumn] == a.BatchKey ? a.LoadedAt.UtcDateTime : b.LoadedAt.UtcDateTime,
            r[EventTableModel.LoadedAtColumn]));
        // Spot checks of typed values: a 64-bit id and a timestamp to the millisecond.
        Assert.Contains(rows, r => (long?)r["UserId"] == 5189870820212736L && (DateTime?)r["EventStart"] == new DateTime(2020, 8, 27, 6, 20, 26, 900, DateTimeKind.Utc));
        Assert.Contains(rows, r => (string?)r["CustomVars"] is { } cv && cv.Contains("page_foobar_str"));
        Assert.Equal(StandardFields.All.Select(f => f.Name).Concat(["CustomVars", "_fs_batch", "_fs_index", "_fs_loaded_at"]), ColumnNames(TableName));
    }

    [SkippableFact]
    public void A_rerun_adds_nothing_and_the_state_is_the_bookmark()
    {
        SkipIfUnavailable();
        var start = new DateTimeOffset(2019, 7, 15, 0, 0, 0, TimeSpan.Zero);
        var batch = new BatchInfo("bundle:156314880048", start, start.AddDays(1));
        using (var store = OpenDefault())
        {
            Assert.False(store.IsLoaded(batch.Key));
            Assert.Empty(store.GetLoadedBatches());
            var first = store.LoadBatch(batch, LoadingTestData.Stream(TestData.LegacySample, batch.Key), () => 12345);
            Assert.Equal(144, first.Rows);
            Assert.Equal(12345, first.Bytes);
        }
        using (var store = OpenDefault())
        {
            Assert.True(store.IsLoaded(batch.Key));
            bool enumerated = false;
            var again = store.LoadBatch(batch, Enumerate());
            IEnumerable<FullStoryEvent> Enumerate() { enumerated = true; yield break; }
            Assert.True(again.AlreadyLoaded);
            Assert.Equal(0, again.Rows);
            Assert.False(enumerated);
            var loaded = Assert.Single(store.GetLoadedBatches());
            Assert.Equal(batch.Key, loaded.Key);
            Assert.Equal(start, loaded.RangeStart);
            Assert.Equal(start.AddDays(1), loaded.RangeEnd);
            Assert.Equal(144, loaded.Rows);
        }
        Assert.Equal(144, ReadRows().Count);
    }

    [SkippableFact]
    public void An_exception_mid_enumeration_leaves_nothing_and_a_retry_loads_exactly_once()
    {
        SkipIfUnavailable();
        using var store = OpenDefault();
        var batch = new BatchInfo("bundle:1");
        var error = new InvalidDataException("truncated body");
        var thrown = Assert.Throws<InvalidDataException>(() => store.LoadBatch(batch, LoadingTestData.Failing(120, error)));
        Assert.Same(error, thrown);
        Assert.False(store.IsLoaded(batch.Key));
        Assert.Empty(store.GetLoadedBatches());
        Assert.True(!TableExists(TableName) || ReadRows().Count == 0);

        var report = store.LoadBatch(batch, LoadingTestData.Synthetic(150));
        Assert.Equal(150, report.Rows);
        Assert.True(store.LoadBatch(batch, LoadingTestData.Synthetic(150)).AlreadyLoaded);
        Assert.Equal(150, ReadRows().Count);
        Assert.Single(store.GetLoadedBatches());
    }

    [SkippableFact]
    public void Cancellation_mid_load_rolls_back()
    {
        SkipIfUnavailable();
        using var store = OpenDefault();
        store.LoadBatch(new BatchInfo("bundle:0"), LoadingTestData.Synthetic(3));
        using var cts = new CancellationTokenSource();
        IEnumerable<FullStoryEvent> CancelAfter(int n)
        {
            foreach (var e in LoadingTestData.Synthetic(1000))
            {
                if (n-- == 0) cts.Cancel();
                yield return e;
            }
        }
        Assert.ThrowsAny<OperationCanceledException>(() => store.LoadBatch(new BatchInfo("bundle:1"), CancelAfter(100), cancellationToken: cts.Token));
        Assert.False(store.IsLoaded("bundle:1"));
        Assert.Equal(3, ReadRows().Count);
    }

    [SkippableFact]
    public void Two_concurrent_loads_of_the_same_batch_produce_one_copy()
    {
        SkipIfUnavailable();
        using var s1 = OpenDefault();
        using var s2 = OpenDefault();
        s1.LoadBatch(new BatchInfo("bundle:warmup"), LoadingTestData.Synthetic(1)); // create the tables first
        var batch = new BatchInfo("bundle:42");
        using var bothStarted = new Barrier(2);
        IEnumerable<FullStoryEvent> Slow()
        {
            foreach (var e in LoadingTestData.Synthetic(200))
            {
                Thread.Sleep(e.UserId == 1100 ? 50 : 0);
                yield return e;
            }
        }
        LoadReport Run(IEventStore s) { bothStarted.SignalAndWait(); return s.LoadBatch(batch, Slow()); }
        var t1 = Task.Run(() => Run(s1));
        var t2 = Task.Run(() => Run(s2));
        var reports = Task.WhenAll(t1, t2).GetAwaiter().GetResult();

        Assert.Equal(1, reports.Count(r => !r.AlreadyLoaded));
        Assert.Equal(1, reports.Count(r => r.AlreadyLoaded));
        Assert.Equal(200, reports.Sum(r => r.Rows));
        Assert.Equal(200, ReadRows().Count(r => (string?)r[EventTableModel.BatchColumn] == batch.Key));
        Assert.Equal(2, s1.GetLoadedBatches().Count);
    }

    [SkippableTheory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Hostile_data_lands_intact_and_the_table_survives(bool nulCharacters, bool closingBrackets)
    {
        SkipIfUnavailable();
        if (nulCharacters) SkipIfServerDiffers(ServerDifference.NulCharacters);
        if (closingBrackets) SkipIfServerDiffers(ServerDifference.ClosingBracketInIdentifier);
        string nul = nulCharacters ? "a\0b" : "a\u0001b", crlf = "line1\r\nline2\n", longText = new string('x', 4990) + "\U0001F600end",
            emoji = "🍎 fruit 𝄞 \U0001F468\u200D\U0001F469";
        long big = 1L << 62;
        string bracket = closingBrackets ? "]" : "[";
        string hostileKey = $"evt_x{bracket}; DROP TABLE events;--_str", quoteKey = "evt_y\"'; DROP TABLE events;--_str";
        string customVars = new JsonObject
        {
            [hostileKey] = "still data",
            [quoteKey] = "also data",
            ["evt_count_real"] = 4,
            ["evt_big_int"] = big,
            ["evt_text_str"] = nul + crlf + emoji,
        }.ToJsonString();
        var e = LoadingTestData.Event(big, type: "click", customVars: customVars);
        e.EventTargetText = nul + crlf;
        e.PageUserAgent = longText;
        e.PageName = emoji;
        e.EventType = new string('t', 300); // longer than SQL Server's short column: kept (in CustomVars there)
        e.PageClusterId = big;

        using var store = Open(Options(customVarColumns: true));
        var report = store.LoadBatch(new BatchInfo("bundle:x]; DROP TABLE events;--"), [e]);
        Assert.Equal(1, report.Rows);
        Assert.True(TableExists(TableName));

        var row = Assert.Single(ReadRows());
        Assert.Equal(big, row["IndvId"]);
        Assert.Equal(big, row["PageClusterId"]);
        Assert.Equal(nul + crlf, row["EventTargetText"]);
        Assert.Equal(longText, row["PageUserAgent"]);
        Assert.Equal(emoji, row["PageName"]);
        Assert.Equal("bundle:x]; DROP TABLE events;--", row["_fs_batch"]);
        Assert.True(row["EventType"] as string == e.EventType
            || (row["EventType"] is null && JsonNode.Parse((string)row["CustomVars"]!)!["EventType"]!.GetValue<string>() == e.EventType));

        var custom = JsonNode.Parse((string)row["CustomVars"]!)!.AsObject();
        Assert.Equal("still data", custom[hostileKey]!.GetValue<string>());
        Assert.Equal(big, custom["evt_big_int"]!.GetValue<long>());
        Assert.Equal(nul + crlf + emoji, custom["evt_text_str"]!.GetValue<string>());

        var columns = ColumnNames(TableName);
        Assert.Contains(hostileKey, columns); // the name itself, quoted, not a stand-in for it
        Assert.Equal("still data", row[CustomColumnName(columns, hostileKey)]);
        Assert.Equal("also data", row[CustomColumnName(columns, quoteKey)]);
        Assert.Equal(4.0, row["evt_count_real"]);
        Assert.Equal(big, row["evt_big_int"]);
        Assert.Equal(nul + crlf + emoji, row["evt_text_str"]);
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Hostile_table_names_are_quoted(bool closingBracket)
    {
        SkipIfUnavailable();
        if (closingBracket) SkipIfServerDiffers(ServerDifference.ClosingBracketInIdentifier);
        TableName = (closingBracket ? HostileTableName : HostileTableName.Replace("]", "")) + Guid.NewGuid().ToString("N")[..6];
        using var store = OpenDefault();
        Assert.Equal(5, store.LoadBatch(new BatchInfo("b"), LoadingTestData.Synthetic(5)).Rows);
        Assert.Equal(5, ReadRows().Count);
        Assert.True(store.IsLoaded("b"));
        Assert.True(TableExists(TableName));
    }

    [SkippableTheory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(null)]
    [InlineData("a\0b")]
    [InlineData("fullstory_sync_state")]
    public void Invalid_table_names_are_refused_naming_the_parameter(string? table)
    {
        SkipIfUnavailable();
        var ex = Assert.Throws<ArgumentException>(() => Open(new EventStoreOptions { Table = table! }));
        Assert.Equal("Table", ex.ParamName);
    }

    [SkippableFact]
    public void Names_over_128_characters_are_shortened_the_same_way_every_run()
    {
        SkipIfServerDiffers(ServerDifference.LongIdentifiers); // the shortened name still has 117 characters
        string key = "evt_" + new string('n', 200) + "_int";
        using (var store = Open(Options(customVarColumns: true)))
        {
            var r1 = store.LoadBatch(new BatchInfo("b1"), [LoadingTestData.Event(1, customVars: $"{{\"{key}\":1}}")]);
            var added = Assert.Single(r1.ColumnsAdded);
            Assert.True(added.Length <= 128);
            Assert.Equal(Identifiers.Shorten(key), added);
        }
        using (var store = Open(Options(customVarColumns: true)))
        {
            var r2 = store.LoadBatch(new BatchInfo("b2"), [LoadingTestData.Event(2, customVars: $"{{\"{key}\":2}}")]);
            Assert.Empty(r2.ColumnsAdded);
        }
        var col = Identifiers.Shorten(key);
        Assert.Equal([1L, 2L], ReadRows().Select(r => (long)r[col]!).Order());
    }

    [SkippableFact]
    public void Missing_standard_columns_of_an_older_table_are_added()
    {
        SkipIfUnavailable();
        var old = EventTableModel.FixedColumns.Where(c => c.Name is "UserId" or "EventStart" or "EventType" or "CustomVars").ToList();
        CreateTable(TableName, old);
        using var store = OpenDefault();
        var report = store.LoadBatch(new BatchInfo("b"), LoadingTestData.Stream(TestData.SegmentSample, "s"));
        Assert.Equal(144, report.Rows);
        Assert.Equal(EventTableModel.FixedColumns.Count - old.Count, report.ColumnsAdded.Count);
        Assert.Contains("PageUserAgent", report.ColumnsAdded);
        Assert.Contains("_fs_batch", report.ColumnsAdded);
        Assert.Equal(EventTableModel.FixedColumns.Select(c => c.Name).Order(), ColumnNames(TableName).Order());
        Assert.Equal(144, ReadRows().Count(r => r["PageUserAgent"] is string));
    }

    [SkippableFact]
    public void A_table_whose_columns_are_named_in_another_case_is_loaded_into_those_columns()
    {
        SkipIfUnavailable();
        // A table made by hand (or by another tool) in lower case, in another column order, with a column of its own.
        var lower = EventTableModel.FixedColumns.Reverse().Select(c => new ColumnDef(c.Name.ToLowerInvariant(), c.Kind, c.Role, c.MaxLength, c.Field))
            .Append(new ColumnDef("note", ColumnKind.Text, ColumnRole.Standard)).ToList();
        CreateTable(TableName, lower);
        using var store = Open(Options(customVarColumns: true));
        var report = store.LoadBatch(new BatchInfo("bundle:156314880048"), LoadingTestData.Stream(TestData.LegacySample, "bundle:156314880048"));
        Assert.Equal(144, report.Rows);
        Assert.DoesNotContain(report.ColumnsAdded, c => EventTableModel.FixedColumns.Any(f => f.Name.Equals(c, StringComparison.OrdinalIgnoreCase)));
        var names = ColumnNames(TableName);
        Assert.All(EventTableModel.FixedColumns, f => Assert.Single(names, n => n.Equals(f.Name, StringComparison.OrdinalIgnoreCase))); // none added twice

        var expected = JsonNode.Parse(File.ReadAllText(TestData.LegacySample))!.AsArray()
            .Select(n => LoadingTestData.Canonical(LoadingTestData.ExpectedRow(n!.AsObject()))).Order(StringComparer.Ordinal);
        var rows = ReadRows();
        Assert.Equal(expected, rows.Select(LoadingTestData.Canonical).Order(StringComparer.Ordinal));
        Assert.All(rows, r => Assert.Null(r.GetValueOrDefault("note")));
    }

    [SkippableFact]
    public void Custom_var_columns_are_typed_added_as_keys_appear_and_keep_misfits_in_CustomVars()
    {
        SkipIfUnavailable();
        using var store = Open(Options(customVarColumns: true));
        var first = new JsonObject
        {
            ["evt_name_str"] = "apple", ["evt_qty_int"] = 3, ["evt_price_real"] = 4, ["evt_ok_bool"] = true,
            ["evt_when_date"] = "2020-08-27T06:20:26.901Z", ["evt_tags_strs"] = new JsonArray("a", "b"), ["evt_other"] = new JsonObject { ["x"] = 1 },
        }.ToJsonString();
        var r1 = store.LoadBatch(new BatchInfo("b1"), [LoadingTestData.Event(1, customVars: first), LoadingTestData.Event(2)]);
        Assert.Equal(7, r1.ColumnsAdded.Count);

        var second = new JsonObject { ["evt_qty_int"] = "not a number", ["evt_price_real"] = 4.5, ["evt_new_str"] = "late", ["evt_ok_bool"] = false }.ToJsonString();
        var r2 = store.LoadBatch(new BatchInfo("b2"), [LoadingTestData.Event(3, customVars: second)]);
        Assert.Equal(["evt_new_str"], r2.ColumnsAdded);

        var rows = ReadRows().ToDictionary(r => (long)r["UserId"]!);
        var a = rows[1];
        Assert.Equal("apple", a["evt_name_str"]);
        Assert.Equal(3L, a["evt_qty_int"]);
        Assert.Equal(4.0, a["evt_price_real"]);
        Assert.Equal(true, a["evt_ok_bool"]);
        Assert.Equal(new DateTime(2020, 8, 27, 6, 20, 26, 901, DateTimeKind.Utc), a["evt_when_date"]);
        Assert.True(JsonNode.DeepEquals(new JsonArray("a", "b"), JsonNode.Parse((string)a["evt_tags_strs"]!)));
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["x"] = 1 }, JsonNode.Parse((string)a["evt_other"]!)));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(first), JsonNode.Parse((string)a["CustomVars"]!)));

        Assert.Null(rows[2]["evt_name_str"]);
        Assert.Null(rows[2]["CustomVars"]);

        var c = rows[3];
        Assert.Null(c["evt_qty_int"]); // does not fit bigint...
        Assert.Equal("not a number", JsonNode.Parse((string)c["CustomVars"]!)!["evt_qty_int"]!.GetValue<string>()); // ...so it stays in CustomVars
        Assert.Equal(4.5, c["evt_price_real"]);
        Assert.Equal(false, c["evt_ok_bool"]);
        Assert.Equal("late", c["evt_new_str"]);
    }

    [SkippableFact]
    public void Sample_custom_vars_get_columns_with_their_values()
    {
        SkipIfUnavailable();
        using var store = Open(Options(customVarColumns: true));
        var report = store.LoadBatch(new BatchInfo("b"), LoadingTestData.Stream(TestData.SegmentSample, "s"));
        Assert.Contains("evt_order.total_real", report.ColumnsAdded);
        Assert.Contains("page_foobar_str", report.ColumnsAdded);
        var rows = ReadRows();
        Assert.Equal(144, rows.Count);
        foreach (var r in rows)
        {
            var custom = r["CustomVars"] is string s ? JsonNode.Parse(s)!.AsObject() : new JsonObject();
            foreach (var (k, v) in custom)
            {
                if (k.EndsWith("_real")) Assert.Equal(v!.GetValue<double>(), r[k]);
                else if (k.EndsWith("_str")) Assert.Equal(v!.GetValue<string>(), r[k]);
            }
        }
        Assert.Equal(33, rows.Count(r => r["page_foobar_str"] is string));
    }

    [SkippableFact]
    public void Declined_schema_changes_create_nothing()
    {
        SkipIfUnavailable();
        var asked = new List<string>();
        var options = Options();
        options.ConfirmSchemaChange = change => { asked.Add(change); return false; };
        using var store = Open(options);
        Assert.Throws<SchemaChangeDeclinedException>(() => store.LoadBatch(new BatchInfo("b"), LoadingTestData.Synthetic(3)));
        Assert.NotEmpty(asked);
        Assert.False(TableExists(TableName));
        Assert.False(store.IsLoaded("b"));
    }

    [SkippableFact]
    public void Run_history_round_trips()
    {
        SkipIfUnavailable();
        using var store = OpenDefault();
        var started = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
        var run = new SyncRunRecord { StartedAt = started, Api = "legacy", Table = TableName, Outcome = "Running", Host = Environment.MachineName };
        long id = store.BeginRun(run);
        Assert.True(id > 0);
        Assert.Equal(id, run.RunId);
        run.EndedAt = started.AddMinutes(3);
        run.Outcome = "Failed";
        run.Batches = 2;
        run.Rows = 288;
        run.Bytes = 1L << 40;
        run.Retries = 3;
        run.Error = "HTTP 429 \"too many\" ]; --";
        run.DataThrough = started.AddDays(-1);
        store.EndRun(run);
        var second = new SyncRunRecord { StartedAt = started.AddHours(1), Api = "segment", Table = TableName };
        store.BeginRun(second);

        var runs = store.GetRuns(50).Where(r => r.Table == TableName).ToList();
        Assert.Equal(2, runs.Count);
        Assert.Equal(second.RunId, runs[0].RunId); // newest first
        var back = runs[1];
        Assert.Equal(id, back.RunId);
        Assert.Equal(started, back.StartedAt);
        Assert.Equal(started.AddMinutes(3), back.EndedAt);
        Assert.Equal("legacy", back.Api);
        Assert.Equal("Failed", back.Outcome);
        Assert.Equal(2, back.Batches);
        Assert.Equal(288, back.Rows);
        Assert.Equal(1L << 40, back.Bytes);
        Assert.Equal(3, back.Retries);
        Assert.Equal(run.Error, back.Error);
        Assert.Equal(started.AddDays(-1), back.DataThrough);
        Assert.Equal(Environment.MachineName, back.Host);
        Assert.Equal("Running", runs[0].Outcome);
        Assert.Single(store.GetRuns(1));
    }

    // ---- Nothing lost, nothing twice: partial and complete loads of a source (issue 12) ----

    private const string LegacyKey = "bundle:156314880048", SegmentKey = "export:everyone:2020-08-27T00:00:00Z/2020-08-28T00:00:00Z";

    /// <summary>The (source, position) pairs in the table, with how often each occurs.</summary>
    private Dictionary<(string, long), int> Identities() => ReadRows()
        .GroupBy(r => ((string)r[EventTableModel.BatchColumn]!, (long)r[EventTableModel.SourceIndexColumn]!))
        .ToDictionary(g => g.Key, g => g.Count());

    [SkippableFact]
    public void Rows_carry_their_position_in_the_source()
    {
        SkipIfUnavailable();
        using var store = OpenDefault();
        store.LoadBatch(new BatchInfo(LegacyKey), LoadingTestData.Indexed(TestData.LegacySample, LegacyKey));
        var ids = Identities();
        Assert.Equal(144, ids.Count);
        Assert.All(ids.Values, n => Assert.Equal(1, n));
        Assert.Equal(Enumerable.Range(0, 144).Select(i => (long)i), ids.Keys.Select(k => k.Item2).Order());
        // Rows keep their event's values at that position: event 0 of the sample is a uservar event.
        var first = ReadRows().Single(r => (long)r[EventTableModel.SourceIndexColumn]! == 0);
        Assert.Equal("uservar", first["EventType"]);
    }

    [SkippableFact]
    public void A_filtered_load_is_partial_and_a_whole_load_of_the_source_replaces_it()
    {
        SkipIfUnavailable();
        var events = LoadingTestData.Indexed(TestData.LegacySample, LegacyKey).ToList();
        var clicks = events.Where(e => e.EventType == "click").ToList();
        Assert.InRange(clicks.Count, 1, 143);
        using var store = OpenDefault();

        var partial = Assert.Single(store.LoadEvents(clicks, "pipeline:x"));
        Assert.Equal(clicks.Count, partial.Rows);
        Assert.False(partial.IsComplete);
        Assert.False(partial.AlreadyLoaded);
        Assert.False(store.IsLoaded(LegacyKey)); // a partial record is not a bookmark
        Assert.Empty(store.GetLoadedBatches());
        Assert.Equal((false, (long)clicks.Count), StateRecords()[LegacyKey]);

        // The identical filtered command again adds nothing.
        var again = Assert.Single(store.LoadEvents(clicks, "pipeline:y"));
        Assert.Equal(0, again.Rows);
        Assert.Equal(clicks.Count, again.SkippedEvents);
        Assert.Equal(clicks.Count, ReadRows().Count);

        // The whole bundle (Export of bundles, or a sync): replaces the partial rows in one transaction.
        var whole = store.LoadBatch(new BatchInfo(LegacyKey, DateTimeOffset.FromUnixTimeSeconds(1563148800), DateTimeOffset.FromUnixTimeSeconds(1563235200)),
            LoadingTestData.Indexed(TestData.LegacySample, LegacyKey));
        Assert.Equal(144, whole.Rows);
        Assert.Equal(clicks.Count, whole.ReplacedRows);
        Assert.True(whole.IsComplete);
        var ids = Identities();
        Assert.Equal(144, ids.Count);
        Assert.All(ids.Values, n => Assert.Equal(1, n));
        Assert.True(store.IsLoaded(LegacyKey));
        var loaded = Assert.Single(store.GetLoadedBatches());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1563235200), loaded.RangeEnd);
        Assert.Equal((true, 144L), StateRecords()[LegacyKey]);

        // ...and after it, every pipeline load of the source is skipped whole.
        var after = Assert.Single(store.LoadEvents(clicks, "pipeline:z"));
        Assert.True(after.AlreadyLoaded);
        Assert.Equal(144, ReadRows().Count);
    }

    [SkippableFact]
    public void Events_sorted_across_sources_all_land_once_and_both_sources_become_complete()
    {
        SkipIfUnavailable();
        var all = LoadingTestData.Indexed(TestData.LegacySample, LegacyKey)
            .Concat(LoadingTestData.Indexed(TestData.SegmentSample, SegmentKey))
            .OrderBy(e => e.EventType, StringComparer.Ordinal).ToList(); // a stable sort, as Sort-Object EventType
        using var store = OpenDefault();
        // As the pipeline loader chunks them: three transactions, cut anywhere.
        var reports = store.LoadEvents(all.Take(100), "p").Concat(store.LoadEvents(all.Skip(100).Take(77), "p")).Concat(store.LoadEvents(all.Skip(177), "p")).ToList();

        Assert.Equal(288, reports.Sum(r => r.Rows));
        var ids = Identities();
        Assert.Equal(288, ids.Count);
        Assert.All(ids.Values, n => Assert.Equal(1, n));
        Assert.True(store.IsLoaded(LegacyKey));
        Assert.True(store.IsLoaded(SegmentKey));
        Assert.Equal((true, 144L), StateRecords()[LegacyKey]);

        // The same command again: nothing new.
        var again = store.LoadEvents(all, "p");
        Assert.All(again, r => Assert.True(r.AlreadyLoaded));
        Assert.Equal(288, ReadRows().Count);
    }

    [SkippableFact]
    public void A_source_loaded_in_pieces_becomes_complete_once_every_event_is_there()
    {
        SkipIfUnavailable();
        var events = LoadingTestData.Indexed(TestData.SegmentSample, SegmentKey).ToList();
        using var store = OpenDefault();
        // The last event (which carries the count) arrives first; the rest in two overlapping pieces.
        Assert.False(Assert.Single(store.LoadEvents(events.Skip(143), "p")).IsComplete);
        Assert.False(Assert.Single(store.LoadEvents(events.Take(80), "p")).IsComplete);
        var last = Assert.Single(store.LoadEvents(events.Skip(60).Take(83), "p"));
        Assert.Equal(63, last.Rows);
        Assert.Equal(20, last.SkippedEvents);
        Assert.True(last.IsComplete);
        Assert.True(store.IsLoaded(SegmentKey));
        Assert.Equal(144, Identities().Count);
        Assert.Equal(144, ReadRows().Count);
    }

    [SkippableFact]
    public void A_cut_source_never_becomes_complete()
    {
        SkipIfUnavailable();
        // What a body that broke off leaves: the first 100 events, no count on any of them.
        var events = LoadingTestData.Indexed(TestData.LegacySample, LegacyKey).Take(100).Select(e => { e.SourceCount = null; return e; }).ToList();
        using var store = OpenDefault();
        var report = Assert.Single(store.LoadEvents(events, "p"));
        Assert.Equal(100, report.Rows);
        Assert.False(report.IsComplete);
        Assert.False(store.IsLoaded(LegacyKey));
        // The whole source later: all 144, once.
        Assert.Equal(44, Assert.Single(store.LoadEvents(LoadingTestData.Indexed(TestData.LegacySample, LegacyKey), "p")).Rows);
        Assert.True(store.IsLoaded(LegacyKey));
        Assert.Equal(144, ReadRows().Count);
    }

    [SkippableFact]
    public void Events_without_a_source_or_position_still_land()
    {
        SkipIfUnavailable();
        var events = LoadingTestData.Synthetic(5).Select(e => { e.Source = null; return e; }).ToList();
        using var store = OpenDefault();
        var report = Assert.Single(store.LoadEvents(events, "pipeline:1234"));
        Assert.Equal("pipeline:1234", report.BatchKey);
        Assert.Equal(5, report.Rows);
        Assert.False(report.IsComplete);
        Assert.Equal(5, ReadRows().Count(r => (string?)r[EventTableModel.BatchColumn] == "pipeline:1234" && r[EventTableModel.SourceIndexColumn] is null));
    }

    [SkippableFact]
    public void Pipeline_input_of_loaded_sources_only_changes_nothing()
    {
        SkipIfUnavailable();
        var asked = new List<string>();
        var options = Options();
        using (var store = Open(options)) store.LoadBatch(new BatchInfo(LegacyKey), LoadingTestData.Indexed(TestData.LegacySample, LegacyKey));
        options.ConfirmSchemaChange = change => { asked.Add(change); return true; };
        using (var store = Open(options))
        {
            var report = Assert.Single(store.LoadEvents(LoadingTestData.Indexed(TestData.LegacySample, LegacyKey), "p"));
            Assert.True(report.AlreadyLoaded);
            Assert.Equal(144, report.SkippedEvents);
        }
        Assert.Empty(asked);
    }

    [SkippableFact]
    public void A_failed_pipeline_load_leaves_nothing_of_any_of_its_sources()
    {
        SkipIfUnavailable();
        var error = new InvalidDataException("broken");
        IEnumerable<FullStoryEvent> Failing()
        {
            foreach (var e in LoadingTestData.Indexed(TestData.LegacySample, LegacyKey)) yield return e;
            foreach (var e in LoadingTestData.Indexed(TestData.SegmentSample, SegmentKey).Take(50)) yield return e;
            throw error;
        }
        using var store = OpenDefault();
        Assert.Same(error, Assert.Throws<InvalidDataException>(() => store.LoadEvents(Failing(), "p")));
        Assert.True(!TableExists(TableName) || ReadRows().Count == 0);
        Assert.Empty(StateRecords());
    }

    [SkippableFact]
    public void An_incompatible_existing_table_is_refused_before_anything_changes()
    {
        SkipIfUnavailable();
        CreateIncompatibleTable(TableName);
        var before = ColumnNames(TableName);
        using var store = OpenDefault();
        var ex = Assert.Throws<IncompatibleTableException>(() => store.LoadBatch(new BatchInfo("b"), LoadingTestData.Synthetic(10)));
        // Identifiers compare case-insensitively (SQL Server's default collations; some servers report them lower-cased).
        Assert.Contains(ex.Columns, c => c.Column.Equals("IndvId", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(ex.Columns, c => c.Column.Equals("EventStart", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(ex.Columns, c => c.Column.Equals("foo", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("-Table", ex.Message);
        Assert.Contains(TableName, ex.Message);
        Assert.Equal(before, ColumnNames(TableName)); // nothing altered
        Assert.Empty(ReadRows());
        Assert.Empty(StateRecords());
        Assert.Throws<IncompatibleTableException>(() => store.LoadEvents(LoadingTestData.Synthetic(3), "p"));
        Assert.Equal(before, ColumnNames(TableName));
        Assert.Empty(ReadRows());
    }
}

/// <summary>Where a stand-in server is known to behave unlike the database it stands in for (see the stand-in's README).</summary>
public enum ServerDifference
{
    /// <summary>NUL (U+0000) in text values.</summary>
    NulCharacters,
    /// <summary>A bracket-quoted identifier containing ]] (a ] in a table or column name).</summary>
    ClosingBracketInIdentifier,
    /// <summary>Identifiers longer than 63 bytes (SQL Server allows 128 characters).</summary>
    LongIdentifiers,
    /// <summary>sp_getapplock with @LockTimeout = 0 on a lock another session holds (SQL Server answers -1, timed out).</summary>
    AppLockWithoutWait,
}
