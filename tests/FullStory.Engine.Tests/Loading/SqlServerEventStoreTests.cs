using FullStory.Engine.Loading;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// The shared store suite against a live SQL Server (or compatible) database, when FULLSTORY_SQLSERVER_CONNECTION_STRING
/// is set. Each test uses its own table and drops it (and its bookkeeping rows) afterwards.
/// </summary>
public sealed class SqlServerEventStoreTests : EventStoreTests
{
    private static string? ConnectionString => SqlServerTestServer.ConnectionString;
    private readonly HashSet<string> tables = new();

    protected override string? SkipReason => SqlServerTestServer.SkipReason;

    protected override string? KnownDifference(ServerDifference difference) => SqlServerTestServer.KnownDifference(difference);

    private static string Q(string name) => SqlServerStatements.Quote(name);

    protected override IEventStore Open(EventStoreOptions options)
    {
        var store = EventStoreFactory.OpenSqlServer(ConnectionString!, options); // refuses invalid names before any table exists
        tables.Add(options.Table);
        return store;
    }

    private static SqlConnection Connect() => SqlServerTestServer.Open();

    /// <summary>
    /// Rows keyed by the column names as declared (from the catalog, matched by position): result sets may report names
    /// differently (shortened, on the stand-in), and the names in the table are what the tests are about.
    /// nvarchar(max) values are read in pieces of 2,000 characters as nvarchar(4000): the stand-in lets a PLP chunk of a
    /// max value cross a TDS packet boundary, which SqlClient misreads now and then (ArgumentOutOfRangeException in
    /// TryReadByteArray; Babelfish fixed it after 4.3: babelfish_extensions PR 3830). SQL Server keeps chunks within packets.
    /// </summary>
    protected override List<Dictionary<string, object?>> ReadRawRows(string table)
    {
        var columns = ColumnTypes(table);
        using var c = Connect();
        var select = new List<string>();
        var pieces = new int[columns.Count];
        for (int i = 0; i < columns.Count; i++)
        {
            var (name, maxLength) = columns[i];
            if (maxLength != -1) { select.Add(Q(name)); pieces[i] = 1; continue; }
            using (var longest = new SqlCommand($"SELECT ISNULL(MAX(LEN({Q(name)} + N'.')), 0) FROM [dbo].{Q(table)};", c))
                pieces[i] = Math.Max(1, (int)((Convert.ToInt64(longest.ExecuteScalar()) + 1999) / 2000));
            for (int p = 0; p < pieces[i]; p++) select.Add($"CAST(SUBSTRING({Q(name)}, {p * 2000 + 1}, 2000) AS nvarchar(4000))");
        }
        using var cmd = new SqlCommand($"SELECT {string.Join(", ", select)} FROM [dbo].{Q(table)};", c);
        using var r = cmd.ExecuteReader();
        var rows = new List<Dictionary<string, object?>>();
        while (r.Read())
        {
            var row = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
            int field = 0;
            for (int i = 0; i < columns.Count; i++)
            {
                if (pieces[i] == 1 && columns[i].MaxLength != -1) { row[columns[i].Name] = r.IsDBNull(field) ? null : r.GetValue(field); field++; continue; }
                var text = new System.Text.StringBuilder();
                bool isNull = r.IsDBNull(field);
                for (int p = 0; p < pieces[i]; p++, field++) if (!r.IsDBNull(field)) text.Append(r.GetString(field));
                row[columns[i].Name] = isNull ? null : text.ToString();
            }
            rows.Add(row);
        }
        return rows;
    }

    private static List<(string Name, int MaxLength)> ColumnTypes(string table)
    {
        using var c = Connect();
        using var cmd = new SqlCommand(SqlServerStatements.GetColumnTypes, c);
        cmd.Parameters.Add(new SqlParameter("@schema", System.Data.SqlDbType.NVarChar, 128) { Value = "dbo" });
        cmd.Parameters.Add(new SqlParameter("@table", System.Data.SqlDbType.NVarChar, 128) { Value = table });
        using var r = cmd.ExecuteReader();
        var list = new List<(string, int)>();
        while (r.Read()) list.Add((r.GetString(0), r.IsDBNull(2) ? 0 : Convert.ToInt32(r.GetValue(2))));
        return list;
    }

    protected override IReadOnlyList<string> ColumnNames(string table)
    {
        using var c = Connect();
        using var cmd = new SqlCommand(SqlServerStatements.GetColumns, c);
        cmd.Parameters.Add(new SqlParameter("@schema", System.Data.SqlDbType.NVarChar, 128) { Value = "dbo" });
        cmd.Parameters.Add(new SqlParameter("@table", System.Data.SqlDbType.NVarChar, 128) { Value = table });
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return list;
    }

    protected override bool TableExists(string table)
    {
        using var c = Connect();
        using var cmd = new SqlCommand(SqlServerStatements.TableExists, c);
        cmd.Parameters.Add(new SqlParameter("@schema", System.Data.SqlDbType.NVarChar, 128) { Value = "dbo" });
        cmd.Parameters.Add(new SqlParameter("@table", System.Data.SqlDbType.NVarChar, 128) { Value = table });
        return Convert.ToInt64(cmd.ExecuteScalar()) > 0;
    }

    protected override void CreateTable(string table, IEnumerable<ColumnDef> columns)
    {
        tables.Add(table);
        using var c = Connect();
        using var cmd = new SqlCommand(new SqlServerStatements("dbo", table).CreateEventsTable(columns), c);
        cmd.ExecuteNonQuery();
    }

    protected override void CreateIncompatibleTable(string table)
    {
        tables.Add(table);
        using var c = Connect();
        using var cmd = new SqlCommand($"CREATE TABLE [dbo].{Q(table)} ([IndvId] nvarchar(50) NULL, [EventStart] int NULL, [foo] int NULL);", c);
        cmd.ExecuteNonQuery();
    }

    protected override Dictionary<string, (bool Complete, long Rows)> StateRecords()
    {
        var records = new Dictionary<string, (bool, long)>();
        if (!TableExists(Identifiers.StateTable)) return records;
        using var c = Connect();
        using var cmd = new SqlCommand($"SELECT batch_key, is_complete, row_count FROM [dbo].{Q(Identifiers.StateTable)} WHERE table_name = @t;", c);
        cmd.Parameters.Add(new SqlParameter("@t", System.Data.SqlDbType.NVarChar, 128) { Value = TableName });
        using var r = cmd.ExecuteReader();
        while (r.Read()) records[r.GetString(0)] = (r.GetBoolean(1), r.GetInt64(2));
        return records;
    }

    public override void Dispose()
    {
        if (SkipReason is not null) return;
        using var c = Connect();
        // A lock left behind (a stuck session) must fail the cleanup, not hang it.
        using (var set = new SqlCommand("SET LOCK_TIMEOUT 30000;", c)) set.ExecuteNonQuery();
        foreach (var t in tables)
        {
            using var drop = new SqlCommand($"IF EXISTS (SELECT 1 FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE s.name = N'dbo' AND t.name = @t) DROP TABLE [dbo].{Q(t)};", c);
            drop.Parameters.Add(new SqlParameter("@t", System.Data.SqlDbType.NVarChar, 128) { Value = t });
            drop.ExecuteNonQuery();
            foreach (var book in new[] { Identifiers.StateTable, Identifiers.RunsTable })
            {
                using var del = new SqlCommand($"IF OBJECT_ID(N'[dbo].{Q(book)}', N'U') IS NOT NULL DELETE FROM [dbo].{Q(book)} WHERE table_name = @t;", c);
                del.Parameters.Add(new SqlParameter("@t", System.Data.SqlDbType.NVarChar, 128) { Value = t });
                del.ExecuteNonQuery();
            }
        }
    }
}
