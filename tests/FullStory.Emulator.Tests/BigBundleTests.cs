using System.IO.Compression;
using System.Net;
using System.Text.Json;
using Xunit.Abstractions;

namespace FullStory.Emulator.Tests;

[CollectionDefinition("Big", DisableParallelization = true)]
public class BigCollection { }

/// <summary>Streams a ~2 GB (decompressed) bundle: the emulator must not hold it in memory.</summary>
[Collection("Big")]
public class BigBundleTests(ITestOutputHelper output)
{
    private const int Events = 1_500_000; // ~1.36 KB per event → ~2 GB

    [Fact]
    public async Task Two_GB_bundle_streams_with_flat_memory()
    {
        var o = T.Options(1, Events);
        await using var em = await T.Start(o);
        using var c = T.Client(em);
        var id = em.Dataset.Bundles[0].Id;

        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        long baseline = GC.GetTotalMemory(true);
        long peak = baseline;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(false));
                try { await Task.Delay(50, stop.Token); } catch (OperationCanceledException) { }
            }
        });

        long compressed, decompressed, events;
        using (var r = await c.GetAsync($"api/v1/export/get?id={id}", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var counting = new CountingStream(await r.Content.ReadAsStreamAsync());
            await using var gz = new GZipStream(counting, CompressionMode.Decompress);
            (decompressed, events) = await CountEventsAsync(gz);
            compressed = counting.Count;
        }
        stop.Cancel();
        await sampler;

        Assert.Equal(Events, events);
        Assert.True(decompressed > 1_900_000_000L, $"decompressed {decompressed} bytes");
        Assert.True(compressed < decompressed / 3, $"compressed {compressed} bytes");
        Assert.Equal(1, em.Served.TimesServedComplete(id));
        Assert.Equal(Events, em.Served.EventsServed);
        Assert.Equal(compressed, em.Served.Requests.Single().BytesSent);
        long growth = peak - baseline;
        output.WriteLine($"{events} events, {decompressed:N0} bytes decompressed, {compressed:N0} sent; managed memory peak growth {growth / 1024 / 1024} MB");
        Assert.True(growth < 150L * 1024 * 1024, $"managed memory grew by {growth / 1024 / 1024} MB while streaming");
    }

    /// <summary>Counts bytes and top-level events of a JSON array stream with a validating Utf8JsonReader.</summary>
    internal static async Task<(long Bytes, long Events)> CountEventsAsync(Stream s)
    {
        var buf = new byte[1 << 20];
        int len = 0;
        long bytes = 0, events = 0;
        var state = new JsonReaderState();
        while (true)
        {
            if (len == buf.Length) Array.Resize(ref buf, buf.Length * 2);
            int n = await s.ReadAsync(buf.AsMemory(len));
            bytes += n;
            len += n;
            bool final = n == 0;
            int consumed = Parse(buf.AsSpan(0, len), final, ref state, ref events);
            Buffer.BlockCopy(buf, consumed, buf, 0, len - consumed);
            len -= consumed;
            if (final) { Assert.Equal(0, len); break; }
        }
        return (bytes, events);

        static int Parse(ReadOnlySpan<byte> data, bool final, ref JsonReaderState state, ref long events)
        {
            var reader = new Utf8JsonReader(data, final, state);
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.StartObject && reader.CurrentDepth == 1) events++;
            }
            state = reader.CurrentState;
            return (int)reader.BytesConsumed;
        }
    }

    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count;
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            int n = await inner.ReadAsync(buffer, ct);
            Count += n;
            return n;
        }
        public override int Read(byte[] buffer, int offset, int count) { int n = inner.Read(buffer, offset, count); Count += n; return n; }
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }
}
