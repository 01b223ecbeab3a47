using FullStory.Engine.Api;
using FullStory.Engine.Diagnostics;
using FullStory.Engine.Loading;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Tests.Diagnostics;

/// <summary>Real failures of real SQLite files, wrapped as tasks wrap them, come out unwrapped with a stable id and advice.</summary>
public sealed class FailureAdvisorTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "fs-advice-" + Guid.NewGuid().ToString("N")[..8]);

    public FailureAdvisorTests() => Directory.CreateDirectory(dir);

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(dir, recursive: true);
    }

    private static SqliteException Capture(Action action) => Assert.Throws<SqliteException>(action);

    [Fact]
    public async Task A_read_only_database_inside_an_AggregateException_is_DatabaseReadOnly_with_advice()
    {
        string db = Path.Combine(dir, "ro.db");
        using (var create = new SqliteConnection($"Data Source={db}"))
        {
            create.Open();
            using var cmd = create.CreateCommand();
            cmd.CommandText = "CREATE TABLE t (x INTEGER);";
            cmd.ExecuteNonQuery();
        }
        // The connection's mode makes the file read-only for SQLite, whoever runs the test (root ignores file permissions).
        var readOnly = Capture(() =>
        {
            using var c = new SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False");
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "INSERT INTO t VALUES (1);";
            cmd.ExecuteNonQuery();
        });
        var wrapped = await Task.Run(() => throw readOnly).ContinueWith(t => t.Exception!);
        Assert.IsType<AggregateException>(wrapped);

        var advice = FailureAdvisor.Describe(wrapped);
        Assert.Same(readOnly, advice.Exception);
        Assert.Equal("FullStory.DatabaseReadOnly", advice.ErrorId);
        Assert.Equal(FailureKind.PermissionDenied, advice.Kind);
        Assert.Contains("write access", advice.RecommendedAction);
        Assert.DoesNotContain("One or more errors", advice.Message);
    }

    [Fact]
    public void A_file_that_is_not_a_database_is_NotADatabase()
    {
        string notDb = Path.Combine(dir, "notes.txt");
        File.WriteAllText(notDb, new string('x', 4096));
        using var store = EventStoreFactory.OpenSqlite(notDb, new EventStoreOptions());
        var ex = Assert.ThrowsAny<Exception>(() => store.GetLoadedBatches());
        var advice = FailureAdvisor.Describe(new AggregateException(ex));
        Assert.Equal("FullStory.NotADatabase", advice.ErrorId);
        Assert.Contains("not a SQLite database", advice.RecommendedAction);
    }

    [Fact]
    public void A_database_in_a_folder_that_does_not_exist_is_DatabaseUnavailable_and_says_so()
    {
        var ex = Capture(() =>
        {
            using var c = new SqliteConnection($"Data Source={Path.Combine(dir, "nodir", "sub", "x.db")};Pooling=False");
            c.Open();
        });
        var advice = FailureAdvisor.Describe(ex);
        Assert.Equal("FullStory.DatabaseUnavailable", advice.ErrorId);
        Assert.Contains("folder that exists", advice.RecommendedAction);
    }

    [Fact]
    public void Wrappers_are_removed_and_the_engine_s_own_failures_keep_their_ids()
    {
        var api = new FullStoryApiException("refused", System.Net.HttpStatusCode.Unauthorized);
        var nested = new System.Reflection.TargetInvocationException(new AggregateException(new AggregateException(api)));
        var advice = FailureAdvisor.Describe(nested);
        Assert.Same(api, advice.Exception);
        Assert.Equal("FullStory.AuthenticationFailed", advice.ErrorId);
        Assert.Equal(FailureKind.Authentication, advice.Kind);

        // Several failures are all kept: nothing to unwrap to.
        var several = new AggregateException(new IOException("a"), new IOException("b"));
        Assert.Same(several, FailureAdvisor.Describe(several).Exception);
        Assert.Equal("FullStory.Failed", FailureAdvisor.Describe(several).ErrorId);
    }
}
