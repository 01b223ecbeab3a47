using FullStory.Engine.Loading;
using Microsoft.SqlServer.TransactSql.ScriptDom;

namespace FullStory.Engine.Tests.Loading;

/// <summary>Every T-SQL statement the SQL Server store can issue parses with Microsoft's own parser (TSql160Parser).</summary>
public class SqlServerStatementsTests
{
    public static TheoryData<string, string> Schemas => new()
    {
        { "dbo", "events" },
        { "my schema", "x]; DROP TABLE events;--" },
        { "s]]\"'[", "t\"'[]] ]" },
        { new string('s', 128), new string('t', 127) + "]" },
        { "日本", "🍎events" },
    };

    private static IReadOnlyList<ColumnDef> SampleColumns()
    {
        var model = new EventTableModel(true);
        var cols = EventTableModel.FixedColumns.ToList();
        foreach (var key in new[] { "evt_x]; DROP TABLE events;--_str", "evt_y\"'[_int", "evt_order.total_real", "user_ok_bool", "page_when_date",
                     "evt_tags_strs", "evt_" + new string('n', 300) + "_str", "evt_a\0b\r\n_str", "evt_🍎_str", "EventType" })
            cols.Add(model.CustomColumn(key));
        return cols;
    }

    [Theory]
    [MemberData(nameof(Schemas))]
    public void Every_statement_parses_without_errors(string schema, string table)
    {
        var statements = new SqlServerStatements(schema, table).All(SampleColumns()).ToList();
        Assert.True(statements.Count > 80);
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        foreach (var (name, sql) in statements)
        {
            using var reader = new StringReader(sql);
            var fragment = parser.Parse(reader, out var errors);
            Assert.True(errors.Count == 0, $"{name}: {string.Join("; ", errors.Select(e => e.Message))}\n{sql}");
            Assert.NotNull(fragment);
        }
    }

    [Fact]
    public void Hostile_identifiers_stay_one_identifier()
    {
        var s = new SqlServerStatements("dbo", "x]; DROP TABLE events;--");
        var script = (TSqlScript)new TSql160Parser(true).Parse(new StringReader(s.AddColumn(SampleColumns()[^10])), out var errors);
        Assert.Empty(errors);
        var statement = Assert.Single(Assert.Single(script.Batches).Statements);
        var alter = Assert.IsType<AlterTableAddTableElementStatement>(statement);
        Assert.Equal("x]; DROP TABLE events;--", alter.SchemaObjectName.BaseIdentifier.Value);
        var column = Assert.Single(alter.Definition.ColumnDefinitions);
        Assert.Equal("evt_x]; DROP TABLE events;--_str", column.ColumnIdentifier.Value);
    }

    [Fact]
    public void Creating_the_events_table_is_one_statement_with_every_column_typed()
    {
        var s = new SqlServerStatements("dbo", "events");
        var script = (TSqlScript)new TSql160Parser(true).Parse(new StringReader(s.CreateEventsTable(EventTableModel.FixedColumns)), out var errors);
        Assert.Empty(errors);
        var create = Assert.IsType<CreateTableStatement>(Assert.Single(Assert.Single(script.Batches).Statements));
        var defs = create.Definition.ColumnDefinitions;
        Assert.Equal(EventTableModel.FixedColumns.Select(c => c.Name), defs.Select(d => d.ColumnIdentifier.Value));
        string TypeOf(string name) => SqlServerStatements.TypeOf(EventTableModel.FixedColumns.Single(c => c.Name == name));
        Assert.Equal("bigint", TypeOf("UserId"));
        Assert.Equal("int", TypeOf("PageScreenWidth"));
        Assert.Equal("float", TypeOf("EventCumulativeLayoutShift"));
        Assert.Equal("datetime2(3)", TypeOf("EventStart"));
        Assert.Equal("nvarchar(256)", TypeOf("EventType"));
        Assert.Equal("nvarchar(max)", TypeOf("PageUrl"));
        Assert.Equal("nvarchar(max)", TypeOf("PageUserAgent"));
        Assert.Equal("nvarchar(max)", TypeOf("CustomVars"));
    }

    [Fact]
    public void No_statement_uses_MERGE_and_each_ALTER_adds_one_column()
    {
        foreach (var (name, sql) in new SqlServerStatements("dbo", "events").All(SampleColumns()))
        {
            Assert.DoesNotContain("MERGE", sql, StringComparison.OrdinalIgnoreCase);
            if (name.StartsWith("AddColumn")) Assert.Single(new[] { sql }.SelectMany(x => x.Split(" ADD ")).Skip(1));
        }
    }

    [Fact]
    public void The_lock_resource_fits_sp_getapplock_and_ignores_case()
    {
        Assert.Equal(new SqlServerStatements("dbo", "Events").LockResource, new SqlServerStatements("DBO", "events").LockResource);
        Assert.True(new SqlServerStatements(new string('s', 128), new string('t', 128)).LockResource.Length <= 255);
    }

    [Fact]
    public void Every_parameter_the_product_sends_to_SQL_Server_is_typed()
    {
        // The source of every SqlClient call in the engine: no AddWithValue (an untyped NULL goes out as nvarchar), and
        // every SqlParameter built with its SqlDbType (SqlParam's helpers, or the constructor with a type).
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FullStoryPS.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var files = Directory.GetFiles(Path.Combine(dir!.FullName, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && File.ReadAllText(f).Contains("Microsoft.Data.SqlClient"))
            .ToList();
        Assert.Contains(files, f => f.EndsWith("SqlServerEventStore.cs"));
        foreach (var f in files)
        {
            var text = File.ReadAllText(f);
            Assert.DoesNotContain("AddWithValue", text);
            // new SqlParameter(...), and new(...) returned by a member declared to return a SqlParameter (SqlParam's helpers).
            const string pattern = @"new SqlParameter\((?<args>[^)]*)\)|SqlParameter\s+\w+\([^)]*\)\s*=>\s*new\((?<args>[^)]*)\)";
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(text, pattern))
                Assert.True(m.Groups["args"].Value.Contains("SqlDbType."), $"{Path.GetFileName(f)}: {m.Value} has no SqlDbType");
            if (f.EndsWith("SqlServerEventStore.cs"))
                Assert.Equal(5, System.Text.RegularExpressions.Regex.Matches(text, @"SqlParameter\s+\w+\([^)]*\)\s*=>\s*new\(").Count); // Text, BigInt, Int, Bit, Time (Name and Key go through Text)
        }

        // And the helpers type NULLs too (what the stand-in refuses untyped: a NULL into datetimeoffset).
        var time = SqlParam.Time("@t", null);
        Assert.Equal(System.Data.SqlDbType.DateTimeOffset, time.SqlDbType);
        Assert.Equal(3, time.Scale);
        Assert.Equal(DBNull.Value, time.Value);
        Assert.Equal((System.Data.SqlDbType.NVarChar, 320), (SqlParam.Key("@k", "x").SqlDbType, SqlParam.Key("@k", "x").Size));
        Assert.Equal((System.Data.SqlDbType.NVarChar, -1), (SqlParam.Text("@e", null, -1).SqlDbType, SqlParam.Text("@e", null, -1).Size));
        Assert.Equal(System.Data.SqlDbType.BigInt, SqlParam.BigInt("@b", null).SqlDbType);
    }
}
