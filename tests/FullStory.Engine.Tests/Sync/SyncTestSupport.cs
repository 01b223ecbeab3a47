using System.Globalization;
using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.Engine.Tests.Api;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Tests.Sync;

/// <summary>Reads what a sync left in a SQLite file, straight from the file (not through the store under test).</summary>
internal static class Db
{
    private static SqliteConnection Open(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ConnectionString);
        c.Open();
        return c;
    }

    public static long Scalar(string path, string sql)
    {
        using var c = Open(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public static long Rows(string path, string table = "events") => Scalar(path, $"SELECT count(*) FROM \"{table}\";");

    /// <summary>Rows per batch key.</summary>
    public static Dictionary<string, long> RowsPerBatch(string path, string table = "events")
    {
        using var c = Open(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {EventTableModel.BatchColumn}, count(*) FROM \"{table}\" GROUP BY {EventTableModel.BatchColumn};";
        using var r = cmd.ExecuteReader();
        var d = new Dictionary<string, long>();
        while (r.Read()) d[r.GetString(0)] = r.GetInt64(1);
        return d;
    }

    /// <summary>Selected columns of the rows of one batch, in insertion order.</summary>
    public static List<Dictionary<string, object?>> Select(string path, string batchKey, params string[] columns)
    {
        using var c = Open(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {string.Join(", ", columns.Select(x => "\"" + x + "\""))} FROM events WHERE {EventTableModel.BatchColumn} = $k ORDER BY rowid;";
        cmd.Parameters.AddWithValue("$k", batchKey);
        using var r = cmd.ExecuteReader();
        var list = new List<Dictionary<string, object?>>();
        while (r.Read())
        {
            var row = new Dictionary<string, object?>();
            for (int i = 0; i < columns.Length; i++) row[columns[i]] = r.IsDBNull(i) ? null : r.GetValue(i);
            list.Add(row);
        }
        return list;
    }
}

/// <summary>An emulator, a session with fast retries and a SQLite file for one sync test.</summary>
internal sealed class SyncFixture : IAsyncDisposable
{
    public static readonly DateTimeOffset Day0 = EmulatedFullStory.Day0;

    private SyncFixture(EmulatedFullStory fs, TestData.TempDirectory dir)
    {
        FullStory = fs;
        Directory = dir;
        DbPath = dir.File("fullstory.db");
    }

    public EmulatedFullStory FullStory { get; }
    public TestData.TempDirectory Directory { get; }
    public string DbPath { get; }
    public FullStory.Emulator.FullStoryEmulator Emulator => FullStory.Emulator;

    public static async Task<SyncFixture> StartAsync(int bundles = 5, int eventsPerBundle = 150, int maxAttempts = 3, Action<FullStory.Emulator.EmulatorOptions>? configure = null)
    {
        var fs = await EmulatedFullStory.StartAsync(o =>
        {
            o.BundleCount = bundles; o.EventsPerBundle = eventsPerBundle; o.OperationPendingPolls = 1;
            configure?.Invoke(o);
        }, maxAttempts);
        return new SyncFixture(fs, new TestData.TempDirectory());
    }

    public SyncDestination Destination(string table = "events") => SyncDestination.Sqlite(DbPath, new EventStoreOptions { Table = table });

    public SyncSummary Sync(SyncOptions options, OperationObserver? observer = null, CancellationToken cancellationToken = default) =>
        new SyncEngine(FullStory.Session, Destination(), options, observer ?? new OperationObserver()).Run(cancellationToken);

    public IReadOnlyList<SyncRunRecord> History()
    {
        using var store = Destination().OpenStore();
        return store.GetRuns(100);
    }

    public long ExpectedRows(IEnumerable<FullStory.Emulator.EmulatorBundle> bundles) => bundles.Sum(b => b.EventCount);

    public async ValueTask DisposeAsync()
    {
        await FullStory.DisposeAsync();
        Directory.Dispose();
    }
}

/// <summary>
/// The emulator's clock for export times, moved by the test: frozen until <see cref="Run"/>, then racing ahead (a second of
/// emulator time every few milliseconds), so exports complete fast and a test can first see several of them running at once
/// without depending on how fast the machine is.
/// </summary>
internal sealed class ExportClock : IDisposable
{
    private readonly object gate = new();
    private DateTimeOffset now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly CancellationTokenSource stop = new();
    private Task? ticker;

    public DateTimeOffset Now { get { lock (gate) return now; } }

    public void Advance(TimeSpan by) { lock (gate) now += by; }

    /// <summary>Starts moving: one emulator second every 5 ms.</summary>
    public void Run() => ticker ??= Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            Advance(TimeSpan.FromSeconds(1));
            try { await Task.Delay(5, stop.Token); } catch (OperationCanceledException) { }
        }
    });

    /// <summary>Waits (up to a minute) until <paramref name="condition"/> holds; false if it never did.</summary>
    public static bool WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            Thread.Sleep(10);
        }
        return true;
    }

    public void Dispose()
    {
        stop.Cancel();
        try { ticker?.Wait(); } catch (AggregateException) { }
        stop.Dispose();
    }
}
