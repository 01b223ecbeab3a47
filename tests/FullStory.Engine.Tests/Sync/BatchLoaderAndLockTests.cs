using FullStory.Engine.Api;
using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using Microsoft.SqlServer.TransactSql.ScriptDom;

namespace FullStory.Engine.Tests.Sync;

public class BatchLoaderTests
{
    [Fact]
    public async Task Loads_a_bundle_once_and_skips_it_afterwards_without_downloading()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 2);
        var listed = f.FullStory.Client.ListBundles(SyncFixture.Day0).ToList();
        using var store = f.Destination().OpenStore();
        var loader = new BatchLoader(f.FullStory.Session, store, f.FullStory.Observer) { ArchiveDirectory = f.Directory.File("raw") };

        var report = loader.LoadBundle(listed[0]);
        Assert.False(report.AlreadyLoaded);
        Assert.Equal(listed[0].BatchKey, report.BatchKey);
        Assert.Equal(f.Emulator.Dataset.Bundles[0].EventCount, report.Rows);
        Assert.True(report.Bytes > 0);
        Assert.True(File.Exists(Path.Combine(f.Directory.File("raw"), $"bundle-{listed[0].Id}.json.gz")));

        var again = loader.LoadBundle(listed[0]);
        var byId = loader.LoadBundle(listed[0].Id);
        Assert.True(again.AlreadyLoaded);
        Assert.True(byId.AlreadyLoaded);
        Assert.Equal(1, f.Emulator.Served.CountFor("get"));
        Assert.Equal(f.Emulator.Dataset.Bundles[0].EventCount, Db.Rows(f.DbPath));

        var loaded = Assert.Single(store.GetLoadedBatches());
        Assert.Equal(listed[0].Start.Value, loaded.RangeStart);
        Assert.Equal(listed[0].Stop.Value, loaded.RangeEnd);
    }

    [Fact]
    public async Task A_persistent_failure_rolls_back_and_loads_nothing()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 1, eventsPerBundle: 400);
        var bundle = f.FullStory.Client.ListBundles(SyncFixture.Day0).Single();
        f.Emulator.Faults.Truncate("get", afterBytes: 5000, times: 0);
        using var store = f.Destination().OpenStore();
        var loader = new BatchLoader(f.FullStory.Session, store, f.FullStory.Observer);

        Assert.ThrowsAny<Exception>(() => loader.LoadBundle(bundle));
        Assert.Equal(3, f.Emulator.Served.CountFor("get")); // the session's 3 attempts, each a whole batch
        Assert.False(store.IsLoaded(bundle.BatchKey));
        bool hasTable = File.Exists(f.DbPath) && Db.Scalar(f.DbPath, "SELECT count(*) FROM sqlite_master WHERE name = 'events'") > 0;
        if (hasTable) Assert.Equal(0, Db.Rows(f.DbPath)); // every attempt was rolled back
    }

    [Fact]
    public async Task Loads_a_segment_export_window()
    {
        await using var f = await SyncFixture.StartAsync(bundles: 2);
        using var store = f.Destination().OpenStore();
        var loader = new BatchLoader(f.FullStory.Session, store, f.FullStory.Observer);
        var request = new SegmentExportRequest(SyncFixture.Day0, SyncFixture.Day0.AddDays(2));
        var report = loader.LoadExport(request);
        Assert.Equal(request.BatchKey, report.BatchKey);
        Assert.Equal(f.Emulator.Dataset.EventsBetween(request.Start, request.End).LongCount(), report.Rows);
        Assert.True(loader.LoadExport(request).AlreadyLoaded);
        Assert.Equal(1, f.Emulator.Served.CountFor("create"));
    }
}

public class RunLockTests
{
    [Fact]
    public void The_sqlite_lock_file_is_exclusive_and_released_on_dispose()
    {
        using var dir = new TestData.TempDirectory();
        var destination = SyncDestination.Sqlite(dir.File("x.db"));
        var other = SyncDestination.Sqlite(dir.File("x.db"), new EventStoreOptions { Table = "other" });

        var first = destination.TryAcquireRunLock(TimeSpan.Zero);
        Assert.NotNull(first);
        Assert.Null(destination.TryAcquireRunLock(TimeSpan.Zero));
        Assert.Null(destination.TryAcquireRunLock(TimeSpan.FromMilliseconds(300)));
        using (var otherTable = other.TryAcquireRunLock(TimeSpan.Zero)) Assert.NotNull(otherTable); // per table
        first!.Dispose();
        using var second = destination.TryAcquireRunLock(TimeSpan.Zero);
        Assert.NotNull(second);
    }

    [Fact]
    public void Cancelling_a_wait_for_the_lock_throws_OperationCanceled()
    {
        using var dir = new TestData.TempDirectory();
        var destination = SyncDestination.Sqlite(dir.File("x.db"));
        using var held = destination.TryAcquireRunLock(TimeSpan.Zero);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => destination.TryAcquireRunLock(TimeSpan.FromMinutes(5), cts.Token));
    }

    [Theory]
    [InlineData("dbo.events")]
    [InlineData("my schema.x]; DROP TABLE events;--")]
    public void The_sql_server_lock_statements_parse_with_TSql160Parser(string table)
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        foreach (var sql in new[] { SqlServerRunLock.AcquireSql, SqlServerRunLock.ReleaseSql })
        {
            var fragment = (TSqlScript)parser.Parse(new StringReader(sql), out var errors);
            Assert.True(errors.Count == 0, string.Join("; ", errors.Select(e => e.Message)) + "\n" + sql);
            var execs = fragment.Batches.SelectMany(b => b.Statements).OfType<ExecuteStatement>().ToList();
            var exec = Assert.Single(execs);
            var proc = ((ExecutableProcedureReference)exec.ExecuteSpecification.ExecutableEntity).ProcedureReference.ProcedureReference.Name.BaseIdentifier.Value;
            Assert.Contains(proc, new[] { "sp_getapplock", "sp_releaseapplock" });
            var owner = exec.ExecuteSpecification.ExecutableEntity.Parameters.Single(p => p.Variable?.Name == "@LockOwner");
            Assert.Equal("Session", ((StringLiteral)owner.ParameterValue).Value);
        }
        // The resource is a parameter, never spliced into the text; long names are hashed to fit 255 characters.
        string resource = SqlServerRunLock.ResourceFor(table);
        Assert.StartsWith("FullStory.Sync:", resource);
        Assert.True(SqlServerRunLock.ResourceFor(new string('t', 400)).Length <= 255);
        Assert.DoesNotContain(table, SqlServerRunLock.AcquireSql);
    }

    [Fact]
    public void The_sql_server_destination_names_its_table_with_the_schema()
    {
        var d = SyncDestination.SqlServer("Server=nowhere;Database=fs;Password=secret;User ID=u", new EventStoreOptions { Table = "ev", Schema = "fs" });
        Assert.Equal("fs.ev", d.TableName);
        Assert.Equal(SyncDestinationKind.SqlServer, d.Kind);
        Assert.DoesNotContain("secret", d.LockDescription);
    }
}
