using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Loading;

/// <summary>Read-only look into an existing SQLite database, for tab completion: never creates or changes the file.</summary>
public static class SqliteCatalog
{
    /// <summary>
    /// The user tables of the database at <paramref name="path"/> (not SQLite's own nor the sync bookkeeping tables),
    /// sorted; empty when the file does not exist or is not a readable SQLite database.
    /// </summary>
    public static IReadOnlyList<string> ListTables(string path)
    {
        if (!File.Exists(path)) return Array.Empty<string>();
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 1 };
        try
        {
            using var c = new SqliteConnection(builder.ConnectionString);
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' " +
                              "AND name NOT IN ($state, $runs) ORDER BY name;";
            cmd.Parameters.AddWithValue("$state", Identifiers.StateTable);
            cmd.Parameters.AddWithValue("$runs", Identifiers.RunsTable);
            var names = new List<string>();
            using var reader = cmd.ExecuteReader();
            while (reader.Read()) names.Add(reader.GetString(0));
            return names;
        }
        catch (SqliteException)
        {
            return Array.Empty<string>();
        }
    }
}
