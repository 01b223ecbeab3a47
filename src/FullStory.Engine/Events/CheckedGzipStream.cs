using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;

namespace FullStory.Engine.Events;

/// <summary>
/// gzip decompression that proves the data is complete. The framework's GZipStream inflates, and zlib checks the CRC-32
/// and length of every member it finishes; but when the input simply stops (at a deflate block boundary, inside a block
/// or inside the 8-byte trailer, as a killed copy, a full disk or a cut download leaves it) GZipStream ends the stream as
/// if nothing were missing, and it ignores bytes after the end. So this stream computes the CRC-32 and length of what it
/// inflated and, at the end, requires the last 8 bytes of the input to be exactly that trailer; otherwise it throws
/// <see cref="InvalidDataException"/> naming the compressed byte count.
/// <para>
/// Several members (concatenated .gz files, which RFC 1952, gzip -d and GZipStream all read as one stream) are accepted.
/// zlib verifies the trailer of every member but the last as it passes it; the last member is verified here. Its start is
/// found from the trailer's length field: one GZipStream read never crosses a member boundary (zlib stops at the end of a
/// member), so the member starts where one of the reads started, and the CRC-32 of the output from there to the end
/// follows from the running CRC-32 at that point (CRC-32 is linear; see <see cref="Crc32Math"/>). If a future GZipStream
/// returned output across a boundary, a multi-member file would fail here with an error, never pass unverified.
/// </para>
/// </summary>
internal sealed class CheckedGzipStream : ReadOnlyStream
{
    private const int TrailerLength = 8;
    private const int MinimalMemberLength = 10 + 2 + TrailerLength; // header, an empty final deflate block, trailer

    private readonly TailRecordingStream compressed;
    private readonly GZipStream inflater;
    private readonly Crc32 crc = new();
    private long length; // decompressed bytes so far
    // (offset, CRC-32 of the output before it) at the start of every read: the last member starts at one of them.
    private readonly List<(long Offset, uint Crc)> readStarts = new();
    private bool verified;

    public CheckedGzipStream(Stream raw)
    {
        compressed = new TailRecordingStream(raw);
        inflater = new GZipStream(compressed, CompressionMode.Decompress);
    }

    /// <summary>Compressed bytes read so far.</summary>
    public long CompressedBytesRead => compressed.BytesRead;

    public override int Read(Span<byte> buffer)
    {
        if (verified || buffer.IsEmpty) return 0;
        uint before = crc.GetCurrentHashAsUInt32();
        if (readStarts.Count == 0 || readStarts[^1].Offset != length) readStarts.Add((length, before));
        int n;
        try
        {
            n = inflater.Read(buffer);
        }
        catch (InvalidDataException ex)
        {
            // zlib's own checks (a member's CRC-32 or length, or bytes that are not deflate data); the framework's message
            // ("unsupported compression method") does not say which, so say what it can be and where.
            throw new InvalidDataException($"the gzip data is corrupt after {compressed.BytesRead:N0} compressed bytes (a CRC-32 or length check failed, or the bytes are not deflate data)", ex);
        }
        if (n > 0)
        {
            crc.Append(buffer[..n]);
            length += n;
            return n;
        }
        Verify();
        verified = true;
        return 0;
    }

    private void Verify()
    {
        long total = compressed.BytesRead;
        if (total < MinimalMemberLength || !compressed.TryGetTail(out var tail))
            throw Incomplete(total);
        uint expectedCrc = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        uint expectedLength = BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]); // ISIZE: the member's length modulo 2^32
        uint whole = crc.GetCurrentHashAsUInt32();
        for (int i = readStarts.Count - 1; i >= 0; i--)
        {
            var (offset, crcBefore) = readStarts[i];
            long memberLength = length - offset;
            if ((uint)memberLength != expectedLength) continue;
            if (Crc32Math.OfSuffix(whole, crcBefore, memberLength) == expectedCrc) return;
        }
        throw Incomplete(total);
    }

    private static InvalidDataException Incomplete(long compressedBytes) =>
        new($"the gzip data stops after {compressedBytes:N0} compressed bytes without a complete end: the last 8 bytes are not the CRC-32 and length " +
            "of the data (the file or download was cut off, or has extra bytes after its end)");

    protected override void Dispose(bool disposing)
    {
        if (disposing) inflater.Dispose(); // and through it the compressed stream
        base.Dispose(disposing);
    }

    /// <summary>Passes the compressed bytes through, counting them and keeping the last 8 (the trailer, once all is read).</summary>
    private sealed class TailRecordingStream(Stream inner) : ReadOnlyStream
    {
        private readonly byte[] tail = new byte[TrailerLength];
        private int tailLength;

        public long BytesRead { get; private set; }

        public bool TryGetTail(out ReadOnlySpan<byte> trailer)
        {
            trailer = tail;
            return tailLength == TrailerLength;
        }

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            if (n <= 0) return n;
            BytesRead += n;
            if (n >= TrailerLength)
            {
                buffer.Slice(n - TrailerLength, TrailerLength).CopyTo(tail);
                tailLength = TrailerLength;
            }
            else
            {
                int keep = Math.Min(tailLength, TrailerLength - n);
                tail.AsSpan(tailLength - keep, keep).CopyTo(tail);
                buffer[..n].CopyTo(tail.AsSpan(keep));
                tailLength = keep + n;
            }
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// CRC-32 (IEEE, as gzip uses) arithmetic that System.IO.Hashing does not offer: the CRC-32 of the last part of some data
/// from the CRC-32 of the whole and of the part before it. CRC-32 is linear over GF(2): crc(A+B) = crc(A)·x^(8·|B|) xor
/// crc(B) (zlib's crc32_combine), so crc(B) = crc(A+B) xor crc(A)·x^(8·|B|) mod P. Polynomials are bit-reversed as in zlib.
/// </summary>
internal static class Crc32Math
{
    private const uint Polynomial = 0xEDB88320;
    private static readonly uint[] PowersOfX = BuildPowers(); // x^(2^k) mod P

    public static uint OfSuffix(uint crcOfWhole, uint crcOfPrefix, long suffixLength) =>
        crcOfWhole ^ Multiply(XPowerOfEightTimes(suffixLength), crcOfPrefix);

    /// <summary>crc(A+B) from crc(A), crc(B) and the length of B (used by the tests to check the arithmetic).</summary>
    public static uint Combine(uint crcOfPrefix, uint crcOfSuffix, long suffixLength) =>
        Multiply(XPowerOfEightTimes(suffixLength), crcOfPrefix) ^ crcOfSuffix;

    /// <summary>a·b modulo P.</summary>
    private static uint Multiply(uint a, uint b)
    {
        uint product = 0;
        for (uint m = 1u << 31; m != 0; m >>= 1)
        {
            if ((a & m) != 0) product ^= b;
            b = (b & 1) != 0 ? (b >> 1) ^ Polynomial : b >> 1;
        }
        return product;
    }

    /// <summary>x^(8·n) modulo P: the factor that moves a CRC past n bytes.</summary>
    private static uint XPowerOfEightTimes(long n)
    {
        uint p = 1u << 31; // x^0
        for (int k = 3; n != 0; n >>= 1, k++)
            if ((n & 1) != 0) p = Multiply(PowersOfX[k & 31], p);
        return p;
    }

    private static uint[] BuildPowers()
    {
        var powers = new uint[32];
        powers[0] = 1u << 30; // x^1
        for (int k = 1; k < 32; k++) powers[k] = Multiply(powers[k - 1], powers[k - 1]);
        return powers;
    }
}
