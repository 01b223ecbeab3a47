using System.Data;
using System.Text.Json;
using System.Text.Json.Nodes;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Tests.Loading;

/// <summary>The dialect-neutral column model, row stream and data reader.</summary>
public class ColumnModelTests
{
    [Theory]
    [InlineData("evt_name_str", ColumnKind.Text)]
    [InlineData("evt_qty_int", ColumnKind.Int64)]
    [InlineData("evt_order.total_real", ColumnKind.Double)]
    [InlineData("user_ok_bool", ColumnKind.Boolean)]
    [InlineData("page_when_date", ColumnKind.Timestamp)]
    [InlineData("evt_tags_strs", ColumnKind.Json)]
    [InlineData("evt_ns_ints", ColumnKind.Json)]
    [InlineData("custom_error", ColumnKind.Json)]
    [InlineData("nosuffix", ColumnKind.Json)]
    public void Custom_var_kind_comes_from_the_suffix(string key, ColumnKind kind) => Assert.Equal(kind, EventTableModel.CustomKindOf(key));

    [Fact]
    public void Values_that_do_not_fit_convert_to_null()
    {
        object? C(string json, ColumnKind k) => EventTableModel.ConvertCustom(JsonDocument.Parse(json).RootElement, k);
        Assert.Equal(4.0, C("4", ColumnKind.Double));
        Assert.Equal(1L << 62, C("4611686018427387904", ColumnKind.Int64));
        Assert.Null(C("4.5", ColumnKind.Int64));
        Assert.Null(C("\"x\"", ColumnKind.Int64));
        Assert.Null(C("1", ColumnKind.Text));
        Assert.Null(C("\"yes\"", ColumnKind.Boolean));
        Assert.Null(C("\"not a date\"", ColumnKind.Timestamp));
        Assert.Equal("[1,2]", C("[1,2]", ColumnKind.Json));
    }

    [Fact]
    public void Column_names_are_deterministic_and_avoid_collisions()
    {
        var m = new EventTableModel(true);
        m.SetExisting(EventTableModel.FixedColumns.Select(c => c.Name).Append("evt_a_str"));
        Assert.Equal("evt_b_str", m.CustomColumn("evt_b_str").Name);
        Assert.Equal("evt_a_str", m.CustomColumn("evt_a_str").Name);
        Assert.Equal(Identifiers.Shorten("evt_A_str"), m.CustomColumn("evt_A_str").Name); // differs only in case from an existing column
        Assert.Equal(Identifiers.Shorten("eventtype"), m.CustomColumn("eventtype").Name); // would collide with a standard column
        Assert.Equal(Identifiers.Shorten("_FS_BATCH"), m.CustomColumn("_FS_BATCH").Name);
        Assert.Equal(Identifiers.Shorten("a\0b"), m.CustomColumn("a\0b").Name);
        string longKey = "evt_" + new string('é', 300) + "_str";
        Assert.Equal(Identifiers.Shorten(longKey), new EventTableModel(true).CustomColumn(longKey).Name);
        Assert.True(Identifiers.Shorten(longKey).Length <= Identifiers.MaxLength);
        Assert.NotEqual(Identifiers.Shorten("evt_a_str"), Identifiers.Shorten("evt_A_str"));
        Assert.DoesNotContain('\0', Identifiers.Shorten("a\0b"));
        Assert.Equal(Identifiers.Shorten(longKey), Identifiers.Shorten(longKey));
        Assert.Equal(Identifiers.Shorten("\U0001F600" + new string('x', 200)), Identifiers.Shorten("\U0001F600" + new string('x', 200)));
        Assert.Equal("evt_\U0001F34E_str", m.CustomColumn("evt_\U0001F34E_str").Name);
    }

    [Fact]
    public void Over_long_short_text_goes_to_CustomVars_where_lengths_are_enforced()
    {
        var e = LoadingTestData.Event(1, customVars: "{\"evt_a_str\":\"x\"}");
        e.EventType = new string('t', EventTableModel.ShortTextLength + 1);
        using var rows = new RowStream(new EventTableModel(false), [e], "b", DateTime.UtcNow, enforceMaxLength: true);
        Assert.True(rows.Read());
        int typeOrdinal = rows.Columns.ToList().FindIndex(c => c.Name == "EventType");
        int cvOrdinal = rows.Columns.ToList().FindIndex(c => c.Name == "CustomVars");
        Assert.Null(rows.Current[typeOrdinal]);
        var cv = JsonNode.Parse((string)rows.Current[cvOrdinal]!)!;
        Assert.Equal("x", cv["evt_a_str"]!.GetValue<string>());
        Assert.Equal(e.EventType, cv["EventType"]!.GetValue<string>());
        Assert.False(rows.Read());
        Assert.True(rows.Finished);
    }

    [Fact]
    public void The_row_stream_pauses_for_new_columns_and_resumes_with_the_held_event()
    {
        var model = new EventTableModel(true);
        model.SetExisting(EventTableModel.FixedColumns.Select(c => c.Name));
        var events = new[] { LoadingTestData.Event(1), LoadingTestData.Event(2, customVars: "{\"evt_n_int\":5}"), LoadingTestData.Event(3, customVars: "{\"evt_n_int\":6}") };
        using var rows = new RowStream(model, events, "b", DateTime.UtcNow, false);
        Assert.True(rows.Read());
        Assert.False(rows.Read());
        Assert.False(rows.Finished);
        Assert.Equal("evt_n_int", Assert.Single(rows.NewColumns).Name);
        model.AddExisting("evt_n_int");
        rows.Resume();
        Assert.True(rows.Read());
        Assert.Equal(5L, rows.Current[^1]);
        Assert.True(rows.Read());
        Assert.Equal(6L, rows.Current[^1]);
        Assert.False(rows.Read());
        Assert.True(rows.Finished);
        Assert.Equal(3, rows.Rows);
    }

    [Fact]
    public void The_data_reader_streams_one_event_at_a_time()
    {
        int pulled = 0;
        IEnumerable<FullStoryEvent> Source()
        {
            foreach (var e in LoadingTestData.Synthetic(1000)) { pulled++; yield return e; }
        }
        using var reader = EventDataReader.Create(Source(), "bundle:1", new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.Equal(EventTableModel.FixedColumns.Count, reader.FieldCount);
        Assert.True(reader.Read());
        Assert.Equal(1, pulled);
        Assert.Equal(1000L, reader.GetInt64(reader.GetOrdinal("UserId")));
        Assert.Equal(typeof(DateTime), reader.GetFieldType(reader.GetOrdinal("EventStart")));
        Assert.True(reader.IsDBNull(reader.GetOrdinal("PageName")));
        Assert.Equal(DBNull.Value, reader.GetValue(reader.GetOrdinal("PageName")));
        Assert.Equal("bundle:1", reader.GetString(reader.GetOrdinal("_fs_batch")));
        var table = new DataTable();
        table.Load(reader);
        Assert.Equal(999, table.Rows.Count);
        Assert.Equal(1000, pulled);
    }
}
