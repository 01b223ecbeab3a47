using FullStory.Engine.Loading;

namespace FullStory.Engine.Tests.Loading;

/// <summary>A connection string SqlClient cannot parse: the error names what to fix, never a password or part of one.</summary>
public class ConnectionStringMessageTests
{
    private static string Refuse(string connectionString) =>
        Assert.Throws<ArgumentException>(() => EventStoreFactory.OpenSqlServer(connectionString, new EventStoreOptions())).Message;

    [Fact]
    public void An_unknown_keyword_is_named_with_the_nearest_known_one_and_no_value()
    {
        string message = Refuse("Serverr=sql01;Database=db;User Id=sa;Password=S3cret!Value");
        Assert.Contains("'serverr' is not supported", message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("did you mean 'Server'", message);
        Assert.DoesNotContain("S3cret", message);
        Assert.DoesNotContain("sql01", message);
    }

    [Fact]
    public void Text_after_an_unquoted_password_with_a_semicolon_is_not_echoed()
    {
        string message = Refuse("Server=sql01;Password=abc;defSecretPart=ghi");
        Assert.DoesNotContain("defSecretPart", message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("abc", message);
        Assert.Contains("double quotes", message);
    }

    [Fact]
    public void A_broken_format_says_where_without_quoting_the_string()
    {
        string message = Refuse("Server=sql01;Password='unterminated");
        Assert.DoesNotContain("unterminated", message);
        Assert.Contains("connection string is not valid", message);
    }
}
