using FullStory.Engine.Loading;
using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// The shared store suite against a live SQL Server (or compatible) database, when FULLSTORY_SQLSERVER_CONNECTION_STRING
/// is set. Each test uses its own table and drops it (and its bookkeeping rows) afterwards.
/// </summary>
public sealed class SqlServerEventStoreTests : EventStoreTests
{
    public const string Variable = "FULLSTORY_SQLSERVER_CONNECTION_STRING";
    private static readonly string? ConnectionString = Environment.GetEnvironmentVariable(Variable);
    private readonly HashSet<string> tables = new();

    protected override string? SkipReason => string.IsNullOrWhiteSpace(ConnectionString)
        ? $"No SQL Server here: set {Variable} to run the store suite against a live SQL Server database."
        : null;

    private static string Q(string name) => SqlServerStatements.Quote(name);

    protected override IEventStore Open(EventStoreOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.Table)) tables.Add(options.Table);
        return EventStoreFactory.OpenSqlServer(ConnectionString!, options);
    }

    private SqlConnection Connect()
    {
        var c = new SqlConnection(ConnectionString);
        c.Open();
        return c;
    }

    protected override List<Dictionary<string, object?>> ReadRawRows(string table)
    {
        using var c = Connect();
        using var cmd = new SqlCommand($"SELECT * FROM [dbo].{Q(table)};", c);
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
        using var cmd = new SqlCommand(SqlServerStatements.GetColumns, c);
        cmd.Parameters.AddWithValue("@schema", "dbo");
        cmd.Parameters.AddWithValue("@table", table);
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetString(0));
        return list;
    }

    protected override bool TableExists(string table)
    {
        using var c = Connect();
        using var cmd = new SqlCommand(SqlServerStatements.TableExists, c);
        cmd.Parameters.AddWithValue("@schema", "dbo");
        cmd.Parameters.AddWithValue("@table", table);
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
        foreach (var t in tables)
        {
            using var drop = new SqlCommand($"IF OBJECT_ID(@name, N'U') IS NOT NULL DROP TABLE [dbo].{Q(t)};", c);
            drop.Parameters.AddWithValue("@name", "[dbo]." + Q(t));
            drop.ExecuteNonQuery();
            foreach (var book in new[] { (Identifiers.StateTable, "table_name"), (Identifiers.RunsTable, "table_name") })
            {
                using var del = new SqlCommand($"IF OBJECT_ID(N'[dbo].{Q(book.Item1)}', N'U') IS NOT NULL DELETE FROM [dbo].{Q(book.Item1)} WHERE {book.Item2} = @t;", c);
                del.Parameters.AddWithValue("@t", t);
                del.ExecuteNonQuery();
            }
        }
    }
}
