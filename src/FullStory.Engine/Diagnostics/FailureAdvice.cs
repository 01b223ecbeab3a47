using System.Reflection;
using FullStory.Engine.Api;
using FullStory.Engine.Events;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;

namespace FullStory.Engine.Diagnostics;

/// <summary>What kind of failure it was, for the caller's error category (PowerShell's ErrorCategory in the cmdlets).</summary>
public enum FailureKind
{
    Unknown,
    Authentication,
    NotFound,
    Connection,
    InvalidData,
    InvalidResult,
    InvalidArgument,
    PermissionDenied,
    ResourceBusy,
    ResourceUnavailable,
    WriteError,
    OperationTimeout,
}

/// <summary>
/// A failure described for a person: the exception that says what happened (wrappers such as AggregateException
/// removed), a stable error id (FullStory.*) scripts can test, its kind, and what to do about it.
/// </summary>
public sealed record FailureAdvice(Exception Exception, string ErrorId, FailureKind Kind, string? RecommendedAction)
{
    public string Message => Exception.Message;
}

/// <summary>
/// Turns the engine's and its libraries' exceptions (FullStory API, event data, SQLite, SQL Server, file system) into
/// <see cref="FailureAdvice"/>. One place, so every cmdlet reports the same failure with the same id and advice.
/// </summary>
public static class FailureAdvisor
{
    /// <summary>
    /// The exception that says what happened: AggregateException (from tasks), TargetInvocationException and
    /// TypeInitializationException only wrap it. An AggregateException of several failures is kept: each matters.
    /// </summary>
    public static Exception Unwrap(Exception exception)
    {
        var ex = exception;
        for (int depth = 0; depth < 16; depth++)
        {
            Exception? inner = ex switch
            {
                AggregateException { InnerExceptions.Count: 1 } a => a.InnerExceptions[0],
                TargetInvocationException { InnerException: { } i } => i,
                TypeInitializationException { InnerException: { } i } => i,
                _ => null,
            };
            if (inner is null) return ex;
            ex = inner;
        }
        return ex;
    }

    public static FailureAdvice Describe(Exception exception)
    {
        var ex = Unwrap(exception);
        return ex switch
        {
            FullStoryExportFailedException => new(ex, "FullStory.ExportFailed", FailureKind.InvalidResult,
                "FullStory could not prepare this export; try again later, or a smaller time range."),
            FullStoryExportTimedOutException => new(ex, "FullStory.ExportTimedOut", FailureKind.OperationTimeout,
                "FullStory did not finish this export in time: try again later (a sync asks for the window again on its next run). If FullStory is slow for your data, allow longer with Connect-FullStory -ExportTimeout, or sync in smaller windows (Sync-FullStoryEvent -WindowSize)."),
            FullStoryApiException { IsAuthenticationFailure: true } => new(ex, "FullStory.AuthenticationFailed", FailureKind.Authentication,
                "Check the API key (Connect-FullStory) and that the FullStory account has the Data Export add-on."),
            FullStoryApiException { StatusCode: System.Net.HttpStatusCode.NotFound } => new(ex, "FullStory.NotFound", FailureKind.NotFound, null),
            FullStoryApiException => new(ex, "FullStory.ApiError", FailureKind.Connection, null),
            EventDataException => new(ex, "FullStory.InvalidEventData", FailureKind.InvalidData, null),
            SqliteException sqlite => DescribeSqlite(sqlite),
            SqlException sql => DescribeSqlServer(sql),
            ArgumentException => new(ex, "FullStory.InvalidArgument", FailureKind.InvalidArgument, null),
            UnauthorizedAccessException => new(ex, "FullStory.FileError", FailureKind.PermissionDenied,
                "Give the account that runs the command access to that path, or use another one."),
            IOException => new(ex, "FullStory.FileError", FailureKind.WriteError, null),
            _ => new(ex, "FullStory.Failed", FailureKind.Unknown, null),
        };
    }

    // Primary result codes: https://sqlite.org/rescode.html
    private const int SqlitePerm = 3, SqliteBusy = 5, SqliteLocked = 6, SqliteReadOnly = 8, SqliteIoErr = 10, SqliteCorrupt = 11,
        SqliteFull = 13, SqliteCantOpen = 14, SqliteNotADb = 26;

    private static FailureAdvice DescribeSqlite(SqliteException ex) => ex.SqliteErrorCode switch
    {
        SqliteCantOpen => new(ex, "FullStory.DatabaseUnavailable", FailureKind.ResourceUnavailable,
            "SQLite could not open the database file: -Path must name a file (not a folder) in a folder that exists, and the account needs read and write access to that folder."),
        SqliteReadOnly or SqlitePerm => new(ex, "FullStory.DatabaseReadOnly", FailureKind.PermissionDenied,
            "The database file or its folder is read-only for this account: SQLite writes the file and a journal (-wal, -shm) beside it. Give the account write access to both, or pass another -Path."),
        SqliteBusy or SqliteLocked => new(ex, "FullStory.DatabaseBusy", FailureKind.ResourceBusy,
            "Another process holds a lock on the database file (a sync, a loader or a database browser with an open transaction). Close it or run again later."),
        SqliteFull => new(ex, "FullStory.DiskFull", FailureKind.WriteError,
            "The disk that holds the database is full. Free space, or pass -Path on another disk; nothing of the failed batch was kept."),
        SqliteNotADb or SqliteCorrupt => new(ex, "FullStory.NotADatabase", FailureKind.InvalidData,
            "The file at -Path is not a SQLite database (or is damaged). Pass -Path with a new file name, or the database the module created."),
        SqliteIoErr => new(ex, "FullStory.FileError", FailureKind.WriteError,
            "The disk reported an error while SQLite read or wrote the database; check the disk and that the file is not on a network share that drops locks."),
        _ => new(ex, "FullStory.DatabaseError", FailureKind.WriteError, null),
    };

    // Error numbers: https://learn.microsoft.com/sql/relational-databases/errors-events/database-engine-events-and-errors
    private static FailureAdvice DescribeSqlServer(SqlException ex) => ex.Number switch
    {
        2760 or 15151 => new(ex, "FullStory.InvalidSchema", FailureKind.InvalidArgument,
            "The schema does not exist or the login may not use it: create it (CREATE SCHEMA), grant access, or pass another -Schema."),
        18456 or 18452 or 18470 or 18486 or 18487 or 18488 => new(ex, "FullStory.DatabaseLoginFailed", FailureKind.Authentication,
            "Check the user and password in -ConnectionString, or use Integrated Security=true with a Windows or Kerberos login."),
        4060 => new(ex, "FullStory.DatabaseUnavailable", FailureKind.ResourceUnavailable,
            "Check Database= in -ConnectionString: the database must exist and the login must have access to it."),
        207 or 245 or 515 or 2628 or 8114 or 8152 or 4815 or 4816 or 4819 => new(ex, "FullStory.IncompatibleTable", FailureKind.InvalidData,
            "The existing table's columns do not fit FullStory events (a column is missing, too short or of another type). Load into a new -Table, or alter the table to the types in about_FullStory."),
        229 or 230 or 262 or 297 or 300 or 1088 => new(ex, "FullStory.PermissionDenied", FailureKind.PermissionDenied,
            "The login lacks a permission the load needs (CREATE TABLE, ALTER, INSERT, SELECT on the table and the fullstory_sync_* tables). Grant it, or create the tables as an administrator."),
        1205 => new(ex, "FullStory.DatabaseBusy", FailureKind.ResourceBusy, "The server chose this load as a deadlock victim; run again."),
        -2 or 2 or 11 or 53 or 10053 or 10054 or 10060 or 10061 or 11001 or 40 or 35 or -1 => new(ex, "FullStory.DatabaseUnreachable", FailureKind.Connection,
            "Check Server= in -ConnectionString, that the server is running and reachable from this machine (name, port 1433, firewall), and TrustServerCertificate/Encrypt for its certificate."),
        _ when ex.Class >= 20 => new(ex, "FullStory.DatabaseUnreachable", FailureKind.Connection,
            "The connection to the server broke; check that the server is running and reachable, then run again: nothing of the failed batch was kept."),
        _ => new(ex, "FullStory.DatabaseError", FailureKind.WriteError, null),
    };
}
