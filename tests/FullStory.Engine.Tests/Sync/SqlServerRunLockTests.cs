using FullStory.Engine.Loading;
using FullStory.Engine.Sync;
using FullStory.Engine.Tests.Loading;

namespace FullStory.Engine.Tests.Sync;

/// <summary>The sync's run lock (sp_getapplock, Session owner) against the live server: one holder per table, released by Dispose or by the session ending.</summary>
public sealed class SqlServerRunLockTests
{
    private static SyncDestination Destination(string table) =>
        SyncDestination.SqlServer(SqlServerTestServer.ConnectionString!, new EventStoreOptions { Table = table });

    [SkippableFact]
    public void A_second_run_of_the_same_table_does_not_get_the_lock_until_the_first_releases_it()
    {
        Skip.If(SqlServerTestServer.SkipReason is not null, SqlServerTestServer.SkipReason);
        string table = "lock_" + Guid.NewGuid().ToString("N")[..10];
        var first = Destination(table).TryAcquireRunLock(TimeSpan.Zero);
        Assert.NotNull(first);
        Assert.Null(Destination(table).TryAcquireRunLock(TimeSpan.FromSeconds(1))); // waited, then gave up
        using (var other = Destination(table + "_other").TryAcquireRunLock(TimeSpan.Zero)) Assert.NotNull(other); // another table: its own lock

        // Released while a waiter waits: the waiter gets it.
        var waiter = Task.Run(() => Destination(table).TryAcquireRunLock(TimeSpan.FromMinutes(1)));
        Thread.Sleep(500);
        first!.Dispose();
        Assert.True(((IAsyncResult)waiter).AsyncWaitHandle.WaitOne(TimeSpan.FromMinutes(2)));
        using var second = waiter.Result;
        Assert.NotNull(second);
    }

    [SkippableFact]
    public void A_wait_for_the_lock_is_cancellable()
    {
        Skip.If(SqlServerTestServer.SkipReason is not null, SqlServerTestServer.SkipReason);
        string table = "lock_" + Guid.NewGuid().ToString("N")[..10];
        using var held = Destination(table).TryAcquireRunLock(TimeSpan.Zero);
        Assert.NotNull(held);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var wait = Task.Run(() => Destination(table).TryAcquireRunLock(TimeSpan.FromMinutes(10), cts.Token));
        Assert.True(((IAsyncResult)wait).AsyncWaitHandle.WaitOne(TimeSpan.FromMinutes(2)), "The wait for the lock did not end when cancelled.");
        Assert.ThrowsAny<OperationCanceledException>(() => wait.GetAwaiter().GetResult());
    }
}
