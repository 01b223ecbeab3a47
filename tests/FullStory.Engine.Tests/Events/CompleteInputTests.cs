using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using System.Text.Json.Nodes;
using FullStory.Engine.Events;

namespace FullStory.Engine.Tests.Events;

/// <summary>
/// Complete input or an error: gzip to its verified trailer, NDJSON to a complete last object, arrays to their ']';
/// only FullStory events; a byte-order mark and empty bodies are fine.
/// </summary>
public class CompleteInputTests
{
    private static readonly byte[] SampleArray = File.ReadAllBytes(TestData.SegmentSample);
    private static readonly string[] SampleLines = JsonNode.Parse(SampleArray)!.AsArray().Select(n => n!.ToJsonString() + "\n").ToArray();

    /// <summary>NDJSON of <paramref name="count"/> real events (the sample's 144, repeated).</summary>
    private static byte[] Ndjson(int count, int from = 0) =>
        Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(from, count).Select(i => SampleLines[i % SampleLines.Length])));

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>
    /// What a copy killed mid-way leaves: the compressor flushed to a deflate block boundary (Flush) and the bytes written
    /// so far copied before Dispose writes the final block and the CRC-32/length trailer.
    /// </summary>
    private static byte[] GzipCutAfter(byte[] data, int keep)
    {
        var ms = new MemoryStream();
        var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true);
        gz.Write(data, 0, keep);
        gz.Flush();
        byte[] cut = ms.ToArray();
        gz.Write(data, keep, data.Length - keep);
        gz.Dispose();
        return cut;
    }

    private static (List<FullStoryEvent> Events, EventDataException? Error) ReadUntilError(byte[] body, string source = "test.json.gz", int? step = null)
    {
        Stream stream = step is int s ? new TrickleStream(body, s) : new MemoryStream(body);
        using var reader = new EventStreamReader(stream, source, "file:" + source);
        var events = new List<FullStoryEvent>();
        try
        {
            while (reader.TryRead(out var e)) events.Add(e);
            return (events, null);
        }
        catch (EventDataException ex) { return (events, ex); }
    }

    // ------------------------------------------------------------------ gzip: to the verified trailer

    [Fact]
    public void A_gzip_cut_at_a_block_boundary_is_an_error_naming_the_file_and_byte()
    {
        byte[] data = Ndjson(500);
        int keep = Ndjson(200).Length; // 200 whole lines: the text itself looks complete
        byte[] cut = GzipCutAfter(data, keep);

        // The framework alone reads this as a complete, shorter stream: the gap this reader closes.
        using (var plain = new GZipStream(new MemoryStream(cut), CompressionMode.Decompress))
        {
            var text = new MemoryStream();
            plain.CopyTo(text);
            Assert.Equal(keep, text.Length);
        }

        var (events, error) = ReadUntilError(cut, "/data/raw/cut.ndjson.gz");
        Assert.NotNull(error);
        Assert.True(error.IsTruncated); // so an HTTP body is downloaded again
        Assert.Equal("/data/raw/cut.ndjson.gz", error.Source);
        Assert.Equal(keep, error.ByteOffset);
        Assert.Contains("/data/raw/cut.ndjson.gz", error.Message);
        Assert.Contains($"byte {keep:N0}", error.Message);
        Assert.Contains($"after {cut.Length:N0} compressed bytes", error.Message);
        Assert.Equal(200, events.Count); // what came before is delivered (as before), but...
        Assert.All(events, e => Assert.Null(e.SourceCount)); // ...nothing marks the file complete
    }

    [Theory]
    [InlineData("crc")]
    [InlineData("length")]
    public void A_wrong_trailer_is_an_error(string field)
    {
        byte[] gz = Gzip(Ndjson(144));
        gz[field == "crc" ? gz.Length - 8 : gz.Length - 1] ^= 0x01;
        var (events, error) = ReadUntilError(gz);
        Assert.NotNull(error);
        Assert.True(error.IsTruncated);
        Assert.Contains("gzip data is corrupt", error.Message);
        Assert.Contains("a CRC-32 or length check failed", error.Message); // not the framework's "unsupported compression method"
        Assert.Contains("compressed bytes", error.Message);
        Assert.DoesNotContain(events, e => e.SourceCount is not null);
    }

    public static TheoryData<string> CutPoints => new() { "inside the trailer", "before the trailer", "inside a block", "header only", "magic only" };

    [Theory]
    [MemberData(nameof(CutPoints))]
    public void A_gzip_cut_anywhere_is_an_error(string where)
    {
        byte[] gz = Gzip(Ndjson(300));
        byte[] cut = where switch
        {
            "inside the trailer" => gz[..^4],
            "before the trailer" => gz[..^8],
            "inside a block" => gz[..(gz.Length / 2)],
            "header only" => gz[..10],
            _ => gz[..2],
        };
        var (events, error) = ReadUntilError(cut);
        Assert.NotNull(error);
        Assert.True(error.IsTruncated);
        Assert.Contains("test.json.gz", error.Message);
        Assert.DoesNotContain(events, e => e.SourceCount is not null);
    }

    [Theory]
    [InlineData("text")]
    [InlineData("newline")]
    [InlineData("gzip magic")]
    public void Bytes_after_the_end_of_the_gzip_data_are_an_error(string garbage)
    {
        byte[] extra = garbage switch { "text" => "xyz"u8.ToArray(), "newline" => "\n"u8.ToArray(), _ => [0x1F, 0x8B, 0x08, 0x00] };
        var (events, error) = ReadUntilError([.. Gzip(Ndjson(144)), .. extra]);
        Assert.NotNull(error);
        Assert.True(error.IsTruncated);
        Assert.DoesNotContain(events, e => e.SourceCount is not null);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(7)] // reads of a few bytes, as a slow network gives them: the trailer arrives in pieces
    public void Concatenated_gzip_members_are_read_whole_and_each_is_verified(int? step)
    {
        // Members of different sizes, one of them empty and one large enough to take many reads.
        byte[] body = [.. Gzip(Ndjson(100)), .. Gzip([]), .. Gzip(Ndjson(3, 100)), .. Gzip(Ndjson(2000, 103)), .. Gzip(Ndjson(1, 2103))];
        var (events, error) = ReadUntilError(body, step: step);
        Assert.Null(error);
        Assert.Equal(2104, events.Count);
        Assert.Equal(Enumerable.Range(0, 2104).Select(i => (long?)i), events.Select(e => e.SourceIndex));
        Assert.Equal(2104, events[^1].SourceCount);
    }

    [Fact]
    public void Concatenated_gzip_with_a_cut_or_corrupt_member_is_an_error()
    {
        byte[] first = Gzip(Ndjson(100)), second = Gzip(Ndjson(100, 100));
        var (_, lastCut) = ReadUntilError([.. first, .. GzipCutAfter(Ndjson(100, 100), Ndjson(50, 100).Length)]);
        Assert.NotNull(lastCut);
        Assert.True(lastCut.IsTruncated);

        byte[] corruptFirst = (byte[])first.Clone();
        corruptFirst[^6] ^= 0x10; // the first member's CRC-32
        var (_, middleCorrupt) = ReadUntilError([.. corruptFirst, .. second]);
        Assert.NotNull(middleCorrupt);
        Assert.Contains("gzip data is corrupt", middleCorrupt.Message);
    }

    [Fact]
    public void A_complete_gzip_read_in_tiny_pieces_verifies()
    {
        var (events, error) = ReadUntilError(Gzip(SampleArray), step: 3);
        Assert.Null(error);
        Assert.Equal(144, events.Count);
        Assert.Equal(144, events[^1].SourceCount);
    }

    [Fact]
    public void Crc32_arithmetic_matches_System_IO_Hashing()
    {
        var random = new Random(12);
        for (int i = 0; i < 200; i++)
        {
            var data = new byte[random.Next(0, 5000)];
            random.NextBytes(data);
            int split = random.Next(0, data.Length + 1);
            uint whole = Crc32.HashToUInt32(data), prefix = Crc32.HashToUInt32(data.AsSpan(0, split)), suffix = Crc32.HashToUInt32(data.AsSpan(split));
            Assert.Equal(suffix, Crc32Math.OfSuffix(whole, prefix, data.Length - split));
            Assert.Equal(whole, Crc32Math.Combine(prefix, suffix, data.Length - split));
        }
        // Past 2^29 bytes the table of x^(2^k) is reused modulo 32 (as zlib does, since x^(2^32) = x modulo the CRC-32
        // polynomial): check it on a real suffix of 512 MB and a bit, fed to Crc32 in pieces.
        long length = (1L << 29) + 12_345;
        var zeros = new byte[1 << 20];
        var ofSuffix = new Crc32();
        var ofWhole = new Crc32();
        ofWhole.Append("FullStory"u8);
        for (long left = length; left > 0; left -= zeros.Length)
        {
            var piece = zeros.AsSpan(0, (int)Math.Min(left, zeros.Length));
            ofSuffix.Append(piece);
            ofWhole.Append(piece);
        }
        uint head = Crc32.HashToUInt32("FullStory"u8);
        Assert.Equal(ofWhole.GetCurrentHashAsUInt32(), Crc32Math.Combine(head, ofSuffix.GetCurrentHashAsUInt32(), length));
        Assert.Equal(ofSuffix.GetCurrentHashAsUInt32(), Crc32Math.OfSuffix(ofWhole.GetCurrentHashAsUInt32(), head, length));
    }

    // ------------------------------------------------------------------ JSON and NDJSON: to a complete end

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Ndjson_cut_inside_an_object_is_an_error(bool gzip)
    {
        byte[] data = Ndjson(10);
        byte[] cut = data[..(Ndjson(7).Length + 40)];
        var (events, error) = ReadUntilError(gzip ? Gzip(cut) : cut, "export.ndjson");
        Assert.NotNull(error);
        Assert.True(error.IsTruncated);
        Assert.Equal(Ndjson(7).Length, error.ByteOffset);
        Assert.Contains("export.ndjson", error.Message);
        Assert.Equal(7, events.Count);
        Assert.All(events, e => Assert.Null(e.SourceCount));
    }

    [Fact]
    public void An_array_without_its_closing_bracket_is_an_error()
    {
        byte[] cut = SampleArray.AsSpan(0, Array.LastIndexOf(SampleArray, (byte)']')).ToArray();
        var (events, error) = ReadUntilError(cut, "bundle.json");
        Assert.NotNull(error);
        Assert.True(error.IsTruncated);
        Assert.Contains("no closing ']'", error.Message);
        Assert.Equal(144, events.Count);
        Assert.All(events, e => Assert.Null(e.SourceCount));
    }

    // ------------------------------------------------------------------ only FullStory events

    [Theory]
    [InlineData("""{"hello":"world","items":[1,2,3]}""", 0, "hello")]
    [InlineData("""[{"foo":1},{"bar":2}]""", 1, "foo")]
    [InlineData("""  [ {"EventType":"click","UserId":1} ]""", 4, "EventType")]
    public void Json_that_is_not_FullStory_data_is_an_error_naming_file_element_and_byte(string json, long offset, string key)
    {
        var (events, error) = ReadUntilError(Encoding.UTF8.GetBytes(json), "/tmp/other.json");
        Assert.Empty(events);
        Assert.NotNull(error);
        Assert.False(error.IsTruncated);
        Assert.Equal(0, error.EventIndex);
        Assert.Equal(offset, error.ByteOffset);
        Assert.Contains("/tmp/other.json", error.Message);
        Assert.Contains($"at byte {offset}", error.Message);
        Assert.Contains("(element 1)", error.Message);
        Assert.Contains("not a FullStory event", error.Message);
        Assert.Contains("no EventStart", error.Message);
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void A_foreign_element_after_real_events_is_an_error_at_its_own_position()
    {
        string body = "[" + string.Join(",", SampleLines.Take(5).Select(l => l.TrimEnd('\n'))) + ",";
        int at = Encoding.UTF8.GetByteCount(body);
        body += """{"EventStart":1598509226900,"EventType":"click"}]""";
        var (events, error) = ReadUntilError(Encoding.UTF8.GetBytes(body));
        Assert.Equal(5, events.Count);
        Assert.NotNull(error);
        Assert.Equal(5, error.EventIndex);
        Assert.Equal(at, error.ByteOffset);
        Assert.Contains("(element 6)", error.Message);
        Assert.Contains("an EventStart that is not an ISO 8601 timestamp", error.Message);
    }

    [Fact]
    public void Unknown_keys_are_still_kept_verbatim()
    {
        var e = ReadUntilError(Encoding.UTF8.GetBytes("""{"EventStart":"2020-08-27T06:20:26.900Z","EventType":"x","brand_new_Field":{"a":[1,2.50]},"evt_n_real":4}""")).Events.Single();
        Assert.Equal("""{"brand_new_Field":{"a":[1,2.50]},"evt_n_real":4}""", e.CustomVars);
        Assert.Equal("x", e.EventType);
    }

    // ------------------------------------------------------------------ byte-order mark and empty bodies

    [Theory]
    [InlineData("json", null)]
    [InlineData("ndjson", null)]
    [InlineData("json.gz", null)]
    [InlineData("json", 1)]
    [InlineData("ndjson", 2)]
    [InlineData("json.gz", 1)]
    public void A_utf8_byte_order_mark_is_accepted(string format, int? step)
    {
        byte[] text = format == "ndjson" ? Ndjson(144) : SampleArray;
        byte[] withBom = [0xEF, 0xBB, 0xBF, .. text];
        var (events, error) = ReadUntilError(format == "json.gz" ? Gzip(withBom) : withBom, "bom." + format, step);
        Assert.Null(error);
        Assert.Equal(144, events.Count);
        Assert.Equal(144, events[^1].SourceCount);
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("  \r\n\t", false)]
    [InlineData("[]", false)]
    [InlineData("\uFEFF[ ]\n", false)]
    [InlineData("", true)]
    [InlineData("[]", true)]
    public void Empty_bodies_read_as_no_events_without_an_error(string text, bool gzip)
    {
        byte[] body = Encoding.UTF8.GetBytes(text);
        var (events, error) = ReadUntilError(gzip ? Gzip(body) : body);
        Assert.Null(error);
        Assert.Empty(events);
    }

    /// <summary>Returns at most a few bytes per read, as a slow network does.</summary>
    private sealed class TrickleStream(byte[] data, int step) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, step));
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, step)]);
    }
}
