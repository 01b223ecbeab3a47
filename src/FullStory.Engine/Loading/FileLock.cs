using System.Text;

namespace FullStory.Engine.Loading;

/// <summary>
/// An exclusive lock file held open for as long as the lock is held (FileShare.None: flock on Unix, a mandatory lock on
/// Windows), so a process that dies releases it. Used for a sync's run lock and the Parquet folder's load lock.
/// </summary>
internal static class FileLock
{
    /// <summary>The open lock file, or null when another process held it for all of <paramref name="wait"/>.</summary>
    public static FileStream? TryAcquire(string path, TimeSpan wait, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + (wait < TimeSpan.Zero ? TimeSpan.Zero : wait);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                // Windows: FileShare.None is a mandatory lock and the file goes away when closed.
                // Unix: .NET takes flock(LOCK_EX) for FileShare.None; the file is left in place on purpose, because deleting
                // it would let a waiter lock the unlinked file while a newcomer locks a new one (two holders).
                var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 4096,
                    OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
                try
                {
                    fs.SetLength(0);
                    var info = Encoding.UTF8.GetBytes($"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTimeOffset.UtcNow:O}\n");
                    fs.Write(info);
                    fs.Flush();
                }
                catch (IOException) { /* the note is only informative */ }
                return fs;
            }
            catch (Exception ex) when ((ex is IOException || (ex is UnauthorizedAccessException && OperatingSystem.IsWindows())) && File.Exists(path))
            {
                // Held by another process (Windows answers access denied while the holder's file is being deleted on close).
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return null;
            cancellationToken.WaitHandle.WaitOne(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }
}
