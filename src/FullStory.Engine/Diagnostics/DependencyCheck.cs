using System.Runtime.Loader;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Polly;

namespace FullStory.Engine.Diagnostics;

/// <summary>One dependency as the module loaded it.</summary>
public sealed record DependencyStatus(string Name, string? Version, string? Location, string? LoadContext, bool Works, string Detail);

/// <summary>
/// Exercises each third-party dependency from inside the module's load context, so tests (and users chasing a load
/// problem) can see that the real SqlClient, the native SQLite library and Polly load and run under pwsh.
/// </summary>
public static class DependencyCheck
{
    public static IReadOnlyList<DependencyStatus> Run() =>
    [
        Check(typeof(SqlConnection), () =>
        {
            // The package's lib/ stub throws PlatformNotSupportedException here; the real one builds the connection.
            var builder = new SqlConnectionStringBuilder { DataSource = "127.0.0.1,1", ConnectTimeout = 1, Encrypt = SqlConnectionEncryptOption.Optional };
            using var connection = new SqlConnection(builder.ConnectionString);
            try { connection.Open(); return "unexpectedly connected"; }
            catch (SqlException ex) { return $"real client: connection refused as expected (error {ex.Number})"; }
        }),
        Check(typeof(SqliteConnection), () =>
        {
            using var connection = new SqliteConnection("Data Source=:memory:");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "select sqlite_version()";
            return "SQLite " + command.ExecuteScalar();
        }),
        Check(typeof(ResiliencePipeline), () =>
        {
            int attempts = 0;
            var pipeline = new ResiliencePipelineBuilder()
                .AddRetry(new Polly.Retry.RetryStrategyOptions { MaxRetryAttempts = 2, Delay = TimeSpan.Zero, ShouldHandle = new PredicateBuilder().Handle<InvalidOperationException>() })
                .Build();
            pipeline.Execute(() => { if (++attempts < 3) throw new InvalidOperationException(); });
            return $"retry pipeline ran {attempts} attempts";
        }),
    ];

    private static DependencyStatus Check(Type type, Func<string> probe)
    {
        var assembly = type.Assembly;
        string name = assembly.GetName().Name ?? type.Name;
        try
        {
            return new DependencyStatus(name, assembly.GetName().Version?.ToString(), assembly.Location,
                AssemblyLoadContext.GetLoadContext(assembly)?.Name, true, probe());
        }
        catch (Exception ex)
        {
            return new DependencyStatus(name, assembly.GetName().Version?.ToString(), assembly.Location,
                AssemblyLoadContext.GetLoadContext(assembly)?.Name, false, $"{ex.GetType().Name}: {ex.Message}");
        }
    }
}
