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
    /// <summary>
    /// How long a cancelled command or bulk copy may take to stop. SqlClient stops it by asking the server (an ATTENTION),
    /// which a server that stopped answering never acknowledges; past this it is left to its own timeout, which then closes
    /// its connection (and the server rolls the transaction back), so the caller is not held up.
    /// </summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="execute"/>; after an <see cref="AbandonedCommandException"/> the caller must not touch <paramref name="connection"/> again.</summary>
    public static T Run<T>(SqlConnection connection, SqlCommand cmd, Func<SqlCommand, T> execute, CancellationToken ct)
    {
        if (!ct.CanBeCanceled)
            return execute(cmd);
        ct.ThrowIfCancellationRequested();
        var work = Task.Run(() => execute(cmd), CancellationToken.None);
        if (!WaitEnded(work, ct, () => { try { cmd.Cancel(); } catch (Exception) { /* the command may have ended meanwhile */ } }))
        {
            work.ContinueWith(_ =>
            {
                try { SqlConnection.ClearPool(connection); } catch (Exception) { }
                connection.Dispose();
            }, TaskScheduler.Default);
            throw new AbandonedCommandException(ct);
        }
        try { return work.GetAwaiter().GetResult(); }
        catch (SqlException) when (ct.IsCancellationRequested) { throw new OperationCanceledException("The operation was cancelled.", ct); }
    }

    /// <summary>
    /// Waits for <paramref name="work"/> (a command, a bulk copy) to end; once <paramref name="ct"/> is cancelled, calls
    /// <paramref name="onCancel"/> and waits at most <see cref="Grace"/> more. False: it did not end in time.
    /// </summary>
    public static bool WaitEnded(Task work, CancellationToken ct, Action? onCancel = null)
    {
        var ended = (IAsyncResult)work;
        if (!ct.CanBeCanceled) { ended.AsyncWaitHandle.WaitOne(); return true; }
        if (WaitHandle.WaitAny([ended.AsyncWaitHandle, ct.WaitHandle]) == 0) return true;
        onCancel?.Invoke();
        return ended.AsyncWaitHandle.WaitOne(Grace);
    }
}

/// <summary>A cancelled command the server did not acknowledge in time: its connection is closed once the command ends.</summary>
internal sealed class AbandonedCommandException(CancellationToken ct)
    : OperationCanceledException("The operation was cancelled; the server did not acknowledge it in time, so its connection is closed.", ct);
