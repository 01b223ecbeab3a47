using System.Diagnostics;
using System.Text.Json;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;

// Usage: FullStory.Benchmarks <parse|sqlite|parquet|sqlserver> <file.json.gz> <label> [batch size]
// sqlserver loads into a table of its own in FULLSTORY_SQLSERVER_CONNECTION_STRING's database, dropped afterwards.
// Prints one line: ROW {"Case":…,"Events":…,"Seconds":…,"EventsPerSecond":…,"PeakWorkingSetMB":…}
if (args.Length < 3) { Console.Error.WriteLine("usage: FullStory.Benchmarks <parse|sqlite> <file> <label>"); return 2; }
string mode = args[0], file = args[1], label = args[2];
var sw = Stopwatch.StartNew();
long events;
long? bytesOnDisk = null;
string caseName;
switch (mode)
{
    case "parse":
    {
        // Decompress and parse alone: the baseline the loader is measured against.
        using var reader = new EventStreamReader(File.OpenRead(file), file, "bundle:1");
        events = 0;
        while (reader.TryRead(out _)) events++;
        caseName = $"parse alone (gzip + Utf8JsonReader), {label}";
        break;
    }
    case "sqlite":
    {
        string db = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.db");
        try
        {
            using var store = EventStoreFactory.OpenSqlite(db, new EventStoreOptions());
            using var reader = new EventStreamReader(File.OpenRead(file), file, "bundle:1");
            // As BatchLoader does (the fast path): parsing on a worker thread overlaps the inserts.
            var report = store.LoadBatch(new BatchInfo("bundle:1"), ReadAhead.Buffered(reader.ReadAll()), () => reader.BytesRead);
            events = report.Rows;
            store.Dispose();
            bytesOnDisk = new FileInfo(db).Length;
        }
        finally
        {
            foreach (var f in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(db) + "*")) File.Delete(f);
        }
        caseName = $"SQLite load (bundle to events table, one transaction), {label}";
        break;
    }
    case "parquet":
    {
        string folder = Path.Combine(Path.GetTempPath(), $"bench-lake-{Guid.NewGuid():N}");
        try
        {
            using var store = EventStoreFactory.OpenParquet(folder, new EventStoreOptions());
            using var reader = new EventStreamReader(File.OpenRead(file), file, "bundle:1");
            var report = store.LoadBatch(new BatchInfo("bundle:1"), ReadAhead.Buffered(reader.ReadAll()), () => reader.BytesRead);
            events = report.Rows;
            bytesOnDisk = Directory.EnumerateFiles(Path.Combine(folder, "events"), "*.parquet", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        caseName = $"Parquet load (bundle to a lake folder, one batch), {label}";
        break;
    }
    case "sqlserver":
    {
        string cs = Environment.GetEnvironmentVariable("FULLSTORY_SQLSERVER_CONNECTION_STRING")
            ?? throw new InvalidOperationException("Set FULLSTORY_SQLSERVER_CONNECTION_STRING.");
        int batchSize = args.Length > 3 ? int.Parse(args[3]) : new EventStoreOptions().BatchSize;
        string table = $"bench_{Guid.NewGuid():N}"[..16];
        try
        {
            using var store = EventStoreFactory.OpenSqlServer(cs, new EventStoreOptions { Table = table, BatchSize = batchSize });
            using var reader = new EventStreamReader(File.OpenRead(file), file, "bundle:1");
            var report = store.LoadBatch(new BatchInfo("bundle:1"), ReadAhead.Buffered(reader.ReadAll()), () => reader.BytesRead);
            events = report.Rows;
        }
        finally
        {
            using var c = new Microsoft.Data.SqlClient.SqlConnection(cs);
            c.Open();
            using var drop = new Microsoft.Data.SqlClient.SqlCommand(
                $"IF OBJECT_ID(N'dbo.{table}', N'U') IS NOT NULL DROP TABLE dbo.{table}; DELETE FROM dbo.{Identifiers.StateTable} WHERE table_name = N'{table}';", c);
            drop.CommandTimeout = 300;
            drop.ExecuteNonQuery();
        }
        caseName = $"SQL Server load (bundle to events table, SqlBulkCopy, one transaction), {label}";
        break;
    }
    default:
        Console.Error.WriteLine($"unknown mode {mode}");
        return 2;
}
sw.Stop();
using var self = Process.GetCurrentProcess();
self.Refresh();
Console.WriteLine("ROW " + JsonSerializer.Serialize(new
{
    Case = caseName,
    Events = events,
    Seconds = Math.Round(sw.Elapsed.TotalSeconds, 2),
    EventsPerSecond = Math.Round(events / sw.Elapsed.TotalSeconds),
    PeakWorkingSetMB = self.PeakWorkingSet64 / (1024 * 1024),
    BytesOnDisk = bytesOnDisk,
}));
return 0;
