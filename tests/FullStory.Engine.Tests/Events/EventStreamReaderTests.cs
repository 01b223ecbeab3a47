using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FullStory.Engine.Events;

namespace FullStory.Engine.Tests.Events;

public class EventStreamReaderTests
{
    private static List<FullStoryEvent> Read(byte[] body, string source = "test")
    {
        using var reader = new EventStreamReader(new MemoryStream(body), source, "file:" + source);
        return reader.ReadAll().ToList();
    }

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    [Theory]
    [InlineData("bundle-legacy-fields.json")]
    [InlineData("segment-export-fields.json")]
    public void Samples_round_trip_every_key_and_value(string file)
    {
        byte[] raw = File.ReadAllBytes(Path.Combine(TestData.Directory, "samples", file));
        var expected = JsonNode.Parse(raw)!.AsArray();

        foreach (var body in new[] { raw, Gzip(raw) })
        {
            var events = Read(body);
            Assert.Equal(144, events.Count);
            for (int i = 0; i < events.Count; i++)
                AssertSameEvent(expected[i]!.AsObject(), events[i]);
        }
    }

    /// <summary>Every key of the source object is either a typed standard field with the same value or a custom var with the same raw JSON.</summary>
    internal static void AssertSameEvent(JsonObject expected, FullStoryEvent actual)
    {
        var custom = actual.CustomVars is null ? new JsonObject() : JsonNode.Parse(actual.CustomVars)!.AsObject();
        int standardCount = 0;
        foreach (var (key, value) in expected)
        {
            if (StandardFields.TryGet(key, out var field) && actual.GetValue(field) is { } typed)
            {
                standardCount++;
                switch (field.Type)
                {
                    case FieldType.Timestamp:
                        Assert.Equal(DateTimeOffset.Parse(value!.GetValue<string>()), ((UtcTimestamp)typed).Value);
                        Assert.Equal(value!.GetValue<string>(), typed.ToString()); // the samples are already in the canonical form
                        break;
                    case FieldType.Int64: Assert.Equal(value!.GetValue<long>(), (long)typed); break;
                    case FieldType.Int32: Assert.Equal(value!.GetValue<int>(), (int)typed); break;
                    case FieldType.Double: Assert.Equal(value!.GetValue<double>(), ((InvariantDouble)typed).Value); break;
                    default: Assert.Equal(value!.GetValue<string>(), (string)typed); break;
                }
            }
            else
            {
                Assert.True(custom.ContainsKey(key), $"key {key} was lost");
                Assert.Equal(value!.ToJsonString(), custom[key]!.ToJsonString());
            }
        }
        // Nothing invented: every typed value and custom var came from the source.
        Assert.Equal(standardCount, StandardFields.All.Count(f => actual.GetValue(f) is not null));
        Assert.Equal(expected.Count - standardCount, custom.Count);
    }

    [Fact]
    public void Legacy_PageAgent_is_PageUserAgent_and_ids_keep_64_bits()
    {
        var e = Read(Encoding.UTF8.GetBytes("""[{"PageAgent":"Mozilla/5.0","UserId":5189870820212736,"id":1,"EventStart":"2020-08-27T06:20:26.900Z","EventType":"click"}]""")).Single();
        Assert.Equal("Mozilla/5.0", e.PageUserAgent);
        Assert.Equal(5189870820212736L, e.UserId);
        Assert.Equal("""{"id":1}""", e.CustomVars);
        Assert.Equal(900, e.EventStart!.Value.Value.Millisecond);
        Assert.Equal("2020-08-27T06:20:26.900Z", e.EventStart.ToString());
    }

    [Fact]
    public void Ndjson_and_array_give_the_same_events()
    {
        var array = File.ReadAllBytes(TestData.SegmentSample);
        var lines = string.Join("\n", JsonNode.Parse(array)!.AsArray().Select(n => n!.ToJsonString())) + "\n";
        var fromArray = Read(array);
        var fromLines = Read(Gzip(Encoding.UTF8.GetBytes(lines)));
        Assert.Equal(fromArray.Count, fromLines.Count);
        Assert.Equal(fromArray.Select(e => e.CustomVars), fromLines.Select(e => e.CustomVars));
        Assert.Equal(fromArray.Select(e => e.EventStart), fromLines.Select(e => e.EventStart));
    }

    [Fact]
    public void Hostile_values_and_mismatched_types_are_kept_verbatim()
    {
        string longText = new string('x', 5000);
        string json = $$"""
            [{"EventStart":"2020-08-27T06:20:26.900Z","evt_x]; DROP TABLE events;--_str":"a\u0000b\r\n\"q\"","evt_order.total_real":4,"user_big_int":4611686018427387904,
              "EventModDead":true,"PageScreenWidth":99999999999,"EventType":"click","EventType":"dup","evt_emoji_str":"😀 日本",
              "evt_long_str":"{{longText}}","evt_arr_strs":["a",{"b":[1,2]}],"PageUrl":null}]
            """;
        var e = Read(Encoding.UTF8.GetBytes(json)).Single();
        var custom = JsonNode.Parse(e.CustomVars!)!.AsObject();
        Assert.Equal("a\0b\r\n\"q\"", custom["evt_x]; DROP TABLE events;--_str"]!.GetValue<string>());
        Assert.Equal("4", custom["evt_order.total_real"]!.ToJsonString());
        Assert.Equal(4611686018427387904L, custom["user_big_int"]!.GetValue<long>());
        Assert.Equal("true", custom["EventModDead"]!.ToJsonString());       // wrong type: kept, not coerced
        Assert.Equal("99999999999", custom["PageScreenWidth"]!.ToJsonString()); // out of int range: kept
        Assert.Equal("click", e.EventType);
        Assert.Equal("\"dup\"", custom["EventType"]!.ToJsonString());         // repeated key: kept
        Assert.Equal("😀 日本", custom["evt_emoji_str"]!.GetValue<string>());
        Assert.Equal(longText, custom["evt_long_str"]!.GetValue<string>());
        Assert.Equal("""["a",{"b":[1,2]}]""", custom["evt_arr_strs"]!.ToJsonString());
        Assert.Null(e.PageUrl);
        Assert.Null(e.EventModDead);
    }

    [Fact]
    public void Events_larger_than_the_buffer_and_split_across_reads_parse()
    {
        // 2,000 events of ~2 KB and one of 1 MB, read through a stream that returns 7 bytes at a time.
        var sb = new StringBuilder("[");
        for (int i = 0; i < 2000; i++)
        {
            if (i > 0) sb.Append(',');
            string text = i == 1000 ? new string('y', 1_000_000) : new string('z', 2000);
            sb.Append($$"""{"EventStart":"2020-08-27T06:20:26.900Z","EventType":"change","UserId":{{i}},"EventTargetText":"{{text}}","evt_n_int":{{i}}}""");
        }
        sb.Append(']');
        using var reader = new EventStreamReader(new TrickleStream(Encoding.UTF8.GetBytes(sb.ToString()), 7), "trickle");
        var events = reader.ReadAll().ToList();
        Assert.Equal(2000, events.Count);
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => (long?)i), events.Select(e => e.UserId));
        Assert.Equal(1_000_000, events[1000].EventTargetText!.Length);
        Assert.Equal("""{"evt_n_int":1999}""", events[1999].CustomVars);
    }

    [Theory]
    [InlineData("[{\"UserId\":1},{\"UserId\":2}", true)]          // no closing bracket
    [InlineData("[{\"UserId\":1},{\"UserId\":", true)]           // cut inside an object
    [InlineData("[{\"UserId\":1},{\"UserId\":2}}]", false)]      // stray brace
    [InlineData("[{\"UserId\":1} {\"UserId\":2}]", false)]       // missing comma
    [InlineData("[{\"UserId\":1},]", false)]                     // trailing comma
    [InlineData("[{\"UserId\":1}] x", false)]                    // garbage after the array
    [InlineData("<html>502 Bad Gateway</html>", false)]          // not JSON at all
    public void Bad_bodies_fail_with_the_source_and_position(string body, bool truncated)
    {
        body = body.Replace("{\"UserId\":", Event.TrimEnd('}') + ",\"UserId\":"); // real FullStory events, else the first is refused as foreign
        using var reader = new EventStreamReader(new MemoryStream(Encoding.UTF8.GetBytes(body)), "bundle 42");
        var ex = Assert.Throws<EventDataException>(() => reader.ReadAll().ToList());
        Assert.Equal(truncated, ex.IsTruncated);
        Assert.Contains("bundle 42", ex.Message);
        Assert.True(ex.ByteOffset > 0 || body.StartsWith('<'));
    }

    /// <summary>The smallest FullStory event: the two fields every event has.</summary>
    internal const string Event = """{"EventStart":"2020-08-27T06:20:26.900Z","EventType":"click"}""";

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData(" \n[ ]\n")]
    public void Empty_bodies_have_no_events(string body) => Assert.Empty(Read(Encoding.UTF8.GetBytes(body)));

    [Fact]
    public void Events_are_counted_and_bytes_tracked()
    {
        var raw = File.ReadAllBytes(TestData.LegacySample);
        using var reader = new EventStreamReader(new MemoryStream(Gzip(raw)), "sample", "bundle:1");
        var events = reader.ReadAll().ToList();
        Assert.Equal(144, reader.EventsRead);
        Assert.Equal(raw.Length, reader.BytesRead + (raw.Length - reader.BytesRead)); // sanity: position is within the body
        Assert.True(reader.BytesRead >= raw.Length - 2);
        Assert.All(events, e => Assert.Equal("bundle:1", e.Source));
    }

    [Fact]
    public void UtcTimestamp_prints_milliseconds_in_every_culture()
    {
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            var t = UtcTimestamp.Parse("2020-08-27T08:20:26.007+02:00");
            Assert.Equal("2020-08-27T06:20:26.007Z", t.ToString());
            Assert.True(t < (UtcTimestamp)new DateTime(2020, 8, 27, 6, 20, 27, DateTimeKind.Utc));
        }
        finally { System.Globalization.CultureInfo.CurrentCulture = saved; }
    }

    /// <summary>Returns at most a few bytes per read, as a slow network does.</summary>
    private sealed class TrickleStream(byte[] data, int step) : MemoryStream(data)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, step));
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, step)]);
    }
}
