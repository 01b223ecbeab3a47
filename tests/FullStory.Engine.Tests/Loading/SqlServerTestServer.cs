using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Tests.Loading;

/// <summary>
/// The SQL Server the tests run against: FULLSTORY_SQLSERVER_CONNECTION_STRING (build.ps1 -Task Test sets it to a TDS
/// server it starts when ../shared/tds is there). Knows whether that server is the Babelfish stand-in, which differs from
/// SQL Server in a few documented ways (../shared/tds/README.md, "Known differences from real SQL Server").
/// </summary>
internal static class SqlServerTestServer
{
    public const string Variable = "FULLSTORY_SQLSERVER_CONNECTION_STRING";

    public static string? ConnectionString { get; } = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } cs ? cs : null;

    /// <summary>Non-null when there is no server to test against.</summary>
    public static string? SkipReason => ConnectionString is null
        ? $"No SQL Server here: set {Variable} to run the SQL Server tests against a live SQL Server database (build.ps1 -Task Test starts the TDS stand-in when ../shared/tds is there)."
        : null;

    private static readonly Lazy<string> version = new(() =>
    {
        using var c = Open();
        using var cmd = new SqlCommand("SELECT @@VERSION;", c);
        return (string)cmd.ExecuteScalar();
    });

    /// <summary>@@VERSION of the server.</summary>
    public static string Version => version.Value;

    /// <summary>True when the server is Babelfish for PostgreSQL (its @@VERSION names it), the stand-in used where SQL Server cannot run.</summary>
    public static bool IsStandIn => Version.Contains("Babelfish", StringComparison.OrdinalIgnoreCase);

    /// <summary>The reason to skip a case that depends on a documented difference of the stand-in, or null on any other server.</summary>
    public static string? KnownDifference(ServerDifference difference)
    {
        if (ConnectionString is null || !IsStandIn) return null;
        string item = difference switch
        {
            ServerDifference.LongIdentifiers => "1 (identifiers longer than 63 bytes are shortened, and result sets and catalog views report the shortened names)",
            ServerDifference.NulCharacters => "2 (NUL, U+0000, in strings or identifiers is refused: 'invalid UTF16 byte sequence - code point 0 not supported')",
            ServerDifference.ClosingBracketInIdentifier => "3 (a bracket-quoted identifier containing ]] is a syntax error)",
            ServerDifference.AppLockWithoutWait => "7 (sp_getapplock with @LockTimeout = 0 returns -999 instead of -1 when another session holds the lock)",
            _ => throw new ArgumentOutOfRangeException(nameof(difference)),
        };
        return $"The server is the Babelfish stand-in for SQL Server, which differs here: ../shared/tds/README.md, known difference {item}. SQL Server itself handles this case.";
    }

    public static SqlConnection Open(string? connectionString = null)
    {
        var c = new SqlConnection(connectionString ?? ConnectionString ?? throw new InvalidOperationException(SkipReason));
        c.Open();
        return c;
    }
}
