using Microsoft.Data.SqlClient;

namespace FullStory.Engine.Loading;

/// <summary>
/// Cancellation of a SQL Server command that must return even when the server does not acknowledge it. SqlClient cancels by
/// asking the server (an ATTENTION) and then waits for the answer; a server that stopped answering, or one that does not
/// interrupt a lock wait for it, would hold the caller until the command's own timeout. Here the command runs on a worker:
/// on cancellation the caller waits at most <see cref="Grace"/>, then leaves the command to its timeout and gets an
/// <see cref="AbandonedCommandException"/>; the connection is disposed (and its pool cleared) once the command has ended,
/// which ends the session on the server and with it its transaction and locks.
/// </summary>
internal static class SqlCancellation
{
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="execute"/>; after an <see cref="AbandonedCommandException"/> the caller must not touch <paramref name="connection"/> again.</summary>
    public static T Run<T>(SqlConnection connection, SqlCommand cmd, Func<SqlCommand, T> execute, CancellationToken ct)
    {
        if (!ct.CanBeCanceled)
            return execute(cmd);
        ct.ThrowIfCancellationRequested();
        var work = Task.Run(() => execute(cmd), CancellationToken.None);
        var ended = (IAsyncResult)work;
        if (WaitHandle.WaitAny([ended.AsyncWaitHandle, ct.WaitHandle]) != 0)
        {
            try { cmd.Cancel(); } catch (Exception) { /* the command may have ended meanwhile */ }
            if (!ended.AsyncWaitHandle.WaitOne(Grace))
            {
                work.ContinueWith(_ =>
                {
                    try { SqlConnection.ClearPool(connection); } catch (Exception) { }
                    connection.Dispose();
                }, TaskScheduler.Default);
                throw new AbandonedCommandException(ct);
            }
        }
        try { return work.GetAwaiter().GetResult(); }
        catch (SqlException) when (ct.IsCancellationRequested) { throw new OperationCanceledException("The operation was cancelled.", ct); }
    }
}

/// <summary>A cancelled command the server did not acknowledge in time: its connection is closed once the command ends.</summary>
internal sealed class AbandonedCommandException(CancellationToken ct)
    : OperationCanceledException("The operation was cancelled; the server did not acknowledge it in time, so its connection is closed.", ct);
