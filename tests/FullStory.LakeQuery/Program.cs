using System.Text.Json;
using DuckDB.NET.Data;

// Usage: FullStory.LakeQuery "<sql>"  ->  one JSON array of row objects on stdout (timestamps as ISO 8601 UTC with ms).
if (args.Length != 1) { Console.Error.WriteLine("usage: FullStory.LakeQuery \"<sql>\""); return 2; }
using var db = new DuckDBConnection("DataSource=:memory:");
db.Open();
using var cmd = db.CreateCommand();
cmd.CommandText = "SET TimeZone = 'UTC';";
cmd.ExecuteNonQuery();
cmd.CommandText = args[0];
using var reader = cmd.ExecuteReader();
var rows = new List<Dictionary<string, object?>>();
while (reader.Read())
{
    var row = new Dictionary<string, object?>();
    for (int i = 0; i < reader.FieldCount; i++)
    {
        object? v = reader.IsDBNull(i) ? null : reader.GetValue(i);
        row[reader.GetName(i)] = v switch
        {
            DateTime d => DateTime.SpecifyKind(d, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
            DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
            DateOnly d => d.ToString("yyyy-MM-dd"),
            System.Numerics.BigInteger b => b.ToString(),
            _ => v,
        };
    }
    rows.Add(row);
}
Console.WriteLine(JsonSerializer.Serialize(rows));
return 0;
