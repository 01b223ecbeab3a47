using FullStory.Engine.Events;

namespace FullStory.Engine.Api;

/// <summary>
/// Copies a download to disk exactly as received while it is read. The file is written as .partial and renamed
/// (to .json.gz or .json, by the gzip magic bytes) only once the body has been read to its end and the reader has
/// verified that end (<see cref="Commit"/>: the closing ']', the gzip trailer), so an archive never holds a cut-off or
/// invalid download, even one whose HTTP response ended normally, and can be replayed with Receive-FullStoryEvent -Path.
/// </summary>
internal sealed class ArchivingStream : ReadOnlyStream
{
    private readonly Stream inner;
    private readonly string basePath;
    private readonly string partialPath;
    private FileStream? file;
    private readonly byte[] head = new byte[2];
    private int headLength;
    private bool endOfBody;

    public ArchivingStream(Stream inner, string basePath)
    {
        this.inner = inner;
        this.basePath = basePath;
        partialPath = basePath + ".partial";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(basePath))!);
        file = new FileStream(partialPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
    }

    public string? CompletedPath { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        if (n > 0)
        {
            for (int i = 0; i < n && headLength < 2; i++) head[headLength++] = buffer[i];
            file!.Write(buffer[..n]);
        }
        else if (!endOfBody)
        {
            endOfBody = true;
            file!.Flush();
        }
        return n;
    }

    /// <summary>The reader verified the body: the .partial file becomes the archive file (replacing an older copy).</summary>
    public void Commit()
    {
        if (!endOfBody || file is null) return; // not read to its end: stays partial and is deleted on Dispose
        file.Dispose();
        file = null;
        CompletedPath = basePath + (BodyDecoder.IsGzip(head.AsSpan(0, headLength)) ? ".json.gz" : ".json");
        File.Move(partialPath, CompletedPath, overwrite: true);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            if (file is not null)
            {
                file.Dispose();
                file = null;
                try { File.Delete(partialPath); } catch (IOException) { }
            }
        }
        base.Dispose(disposing);
    }

}
