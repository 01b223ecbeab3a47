using System.Collections.Concurrent;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// The pipeline loader Export-FullStoryEvent runs on: events handed over one at a time from a producer thread, loaded by a
/// worker in chunks (transactions) into a real SQLite file; requests from the worker served on the producer thread.
/// </summary>
public sealed class PipelineEventLoaderTests : IDisposable
{
    private readonly TestData.TempDirectory dir = new();
    private string Db => dir.File("pipeline.db");

    public void Dispose() => dir.Dispose();

    private IEventStore Open(Func<string, bool>? confirm = null, bool customVarColumns = false) =>
        EventStoreFactory.OpenSqlite(Db, new EventStoreOptions { ConfirmSchemaChange = confirm, CustomVarColumns = customVarColumns });

    private long Scalar(string sql)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ConnectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    private static List<FullStoryEvent> Source(string key, int count)
    {
        var events = LoadingTestData.Synthetic(count, key).ToList();
        for (int i = 0; i < count; i++)
        {
            events[i].SourceIndex = i;
            events[i].SourceCount = i == count - 1 ? count : null;
        }
        return events;
    }

    private static List<LoadReport> Feed(PipelineEventLoader loader, IEnumerable<FullStoryEvent> events)
    {
        var reports = new List<LoadReport>();
        foreach (var e in events) reports.AddRange(loader.Add(e));
        reports.AddRange(loader.Complete());
        return reports;
    }

    [Fact]
    public void Sources_that_arrive_one_after_another_commit_one_transaction_each()
    {
        using var store = Open();
        using var loader = new PipelineEventLoader(store, () => { });
        var reports = new List<LoadReport>();
        foreach (var e in Source("bundle:1", 300)) reports.AddRange(loader.Add(e));
        Assert.Empty(reports); // still open
        foreach (var e in Source("bundle:2", 200)) reports.AddRange(loader.Add(e));
        var first = Assert.Single(reports); // the first source committed as soon as the second began
        Assert.Equal(("bundle:1", 300L, true), (first.BatchKey, first.Rows, first.IsComplete));
        Assert.Equal(300, Scalar("SELECT count(*) FROM events"));
        var last = Assert.Single(loader.Complete());
        Assert.Equal(("bundle:2", 200L, true), (last.BatchKey, last.Rows, last.IsComplete));
        Assert.Equal(500, Scalar("SELECT count(*) FROM events"));
    }

    [Fact]
    public void Events_sorted_across_sources_share_transactions_and_all_land_once()
    {
        var all = Source("bundle:1", 400).Concat(Source("bundle:2", 400)).OrderBy(e => e.UserId % 7).ThenBy(e => e.SourceIndex).ToList();
        using var store = Open();
        using var loader = new PipelineEventLoader(store, () => { });
        var reports = Feed(loader, all);
        Assert.Equal(800, reports.Sum(r => r.Rows));
        Assert.True(reports.Count < 20, $"{reports.Count} transactions for 800 events interleaved over two sources");
        Assert.Equal(800, Scalar("SELECT count(DISTINCT _fs_batch || ':' || _fs_index) FROM events"));
        Assert.Equal(2, Scalar("SELECT count(*) FROM fullstory_sync_state WHERE is_complete = 1"));
    }

    [Fact]
    public void A_large_chunk_ends_at_the_next_change_of_source()
    {
        using var store = Open();
        using var loader = new PipelineEventLoader(store, () => { }) { ChunkEvents = 50 };
        // Alternating sources, no source ever ending: without the size rule this would be one transaction.
        var events = Source("a", 200).Where(e => e.SourceCount is null).Zip(Source("b", 200).Where(e => e.SourceCount is null)).SelectMany(p => new[] { p.First, p.Second });
        var reports = Feed(loader, events);
        Assert.InRange(reports.Select(r => r.LoadedAt).Distinct().Count(), 7, 9); // 398 events in chunks of ~50
        Assert.Equal(398, Scalar("SELECT count(*) FROM events"));
        Assert.Equal(0, Scalar("SELECT count(*) FROM fullstory_sync_state WHERE is_complete = 1"));
    }

    [Fact]
    public void A_failed_chunk_is_rolled_back_and_reported_with_its_sources_and_later_events_go_on()
    {
        using var store = Open(customVarColumns: true);
        using var loader = new PipelineEventLoader(store, () => { });
        var bad = Source("bundle:bad", 10);
        bad[5].CustomVars = "not json"; // with custom var columns the store parses it, and fails mid-chunk
        var failures = new List<PipelineLoadException>();
        var reports = new List<LoadReport>();
        foreach (var e in Source("bundle:ok1", 5).Concat(bad).Concat(Source("bundle:ok2", 5)))
        {
            try { reports.AddRange(loader.Add(e)); }
            catch (PipelineLoadException ex) { failures.Add(ex); }
        }
        reports.AddRange(loader.Complete());
        // The failure names the source and says its events were rolled back; nothing of the other sources is lost, also not
        // the event that arrived when the failure was found. Events of the bad source after the failure may have been
        // loaded as a part of it (never as the whole source: its sixth event is not there).
        var failure = Assert.Single(failures);
        Assert.Equal(["bundle:bad"], failure.Sources);
        Assert.IsType<System.Text.Json.JsonException>(failure.InnerException, exactMatch: false);
        Assert.Equal(["bundle:ok1", "bundle:ok2"], reports.Select(r => r.BatchKey).Where(k => k != "bundle:bad"));
        Assert.Equal(10, Scalar("SELECT count(*) FROM events WHERE _fs_batch <> 'bundle:bad'"));
        Assert.InRange(Scalar("SELECT count(*) FROM events WHERE _fs_batch = 'bundle:bad'"), 0, 4);
        Assert.Equal(0, Scalar("SELECT count(*) FROM fullstory_sync_state WHERE batch_key = 'bundle:bad' AND is_complete = 1"));
    }

    [Fact]
    public void A_failure_found_when_an_invalid_source_arrives_is_still_reported()
    {
        using var store = Open(customVarColumns: true);
        using var loader = new PipelineEventLoader(store, () => { });
        var bad = Source("bundle:bad", 3);
        bad[2].CustomVars = "not json";
        var thrown = new List<Exception>();
        var reports = new List<LoadReport>();
        var input = Source("bundle:ok1", 2).Concat(bad).Concat(Source(" ", 2)).Concat(Source("bundle:ok2", 2));
        foreach (var e in input)
        {
            try { reports.AddRange(loader.Add(e)); }
            catch (Exception ex) when (ex is PipelineLoadException or ArgumentException) { thrown.Add(ex); }
        }
        reports.AddRange(loader.Complete());
        // The invalid source's error and the bad chunk's failure both reach the caller, and ok2 lands whole.
        Assert.Single(thrown.OfType<PipelineLoadException>());
        Assert.Equal("Source", Assert.Single(thrown.OfType<ArgumentException>()).ParamName);
        Assert.Equal(2, loader.EventsRejected);
        Assert.Equal(2, Scalar("SELECT count(*) FROM events WHERE _fs_batch = 'bundle:ok2'"));
        Assert.Contains(reports, r => r.BatchKey == "bundle:ok2");
    }

    [Fact]
    public void A_source_that_cannot_be_a_batch_key_is_refused_once_and_its_events_counted()
    {
        using var store = Open();
        using var loader = new PipelineEventLoader(store, () => { });
        string tooLong = new('x', EventTableModel.MaxBatchKeyLength + 1);
        var events = Source(tooLong, 3);
        Assert.Equal("Source", Assert.Throws<ArgumentException>(() => loader.Add(events[0])).ParamName);
        Assert.Empty(loader.Add(events[1]));
        Assert.Empty(loader.Add(events[2]));
        Assert.Equal(3, loader.EventsRejected);
        Assert.Empty(loader.Complete());
        Assert.False(File.Exists(Db) && Scalar("SELECT count(*) FROM sqlite_master WHERE name = 'events'") > 0);
    }

    [Fact]
    public void A_declined_source_is_not_loaded_and_each_source_is_asked_once()
    {
        var asked = new List<string>();
        using var store = Open();
        using var loader = new PipelineEventLoader(store, () => { }, admitSource: key => { asked.Add(key); return key != "bundle:no"; });
        var reports = Feed(loader, Source("bundle:yes", 4).Concat(Source("bundle:no", 6)));
        Assert.Equal(["bundle:yes", "bundle:no"], asked);
        Assert.Equal("bundle:yes", Assert.Single(reports).BatchKey);
        Assert.Equal(6, loader.EventsDeclined);
        Assert.Equal(4, Scalar("SELECT count(*) FROM events"));
    }

    [Fact]
    public void Abandon_rolls_the_open_chunk_back()
    {
        using var store = Open();
        var loader = new PipelineEventLoader(store, () => { });
        Feed(loader, Source("bundle:1", 50)); // committed
        foreach (var e in Source("bundle:2", 50).Take(30)) loader.Add(e);
        loader.Abandon();
        loader.Dispose();
        Assert.Equal(50, Scalar("SELECT count(*) FROM events"));
        Assert.Equal(0, Scalar("SELECT count(*) FROM events WHERE _fs_batch = 'bundle:2'"));
    }

    [Fact]
    public void Requests_from_the_worker_are_answered_on_the_producer_thread_while_it_waits()
    {
        // As the cmdlet does: the store's confirmations are queued for the producer (pipeline) thread, which answers them in idle().
        var pending = new ConcurrentQueue<Action>();
        int producer = Environment.CurrentManagedThreadId;
        var answeredOn = new List<int>();
        bool Confirm(string change)
        {
            var answer = new TaskCompletionSource<bool>();
            pending.Enqueue(() => { answeredOn.Add(Environment.CurrentManagedThreadId); answer.SetResult(true); });
            return answer.Task.Result;
        }
        using var store = Open(Confirm);
        using var loader = new PipelineEventLoader(store, idle: () => { while (pending.TryDequeue(out var a)) a(); });
        var reports = Feed(loader, Source("bundle:1", 2000)); // more than the queue holds: the producer waits, and serves
        Assert.Equal(2000, Assert.Single(reports).Rows);
        Assert.NotEmpty(answeredOn); // create the state table, create the events table
        Assert.All(answeredOn, t => Assert.Equal(producer, t));
    }
}
