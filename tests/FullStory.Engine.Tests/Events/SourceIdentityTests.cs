using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using FullStory.Engine.Events;

namespace FullStory.Engine.Tests.Events;

/// <summary>
/// An event's identity within its source: SourceIndex on every event, and SourceCount only on the last event of a body
/// whose end was verified; never on a body that fails, is cut or is cancelled.
/// </summary>
public class SourceIdentityTests
{
    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    private static byte[] AsNdjson(byte[] array) =>
        Encoding.UTF8.GetBytes(string.Concat(JsonNode.Parse(array)!.AsArray().Select(n => n!.ToJsonString() + "\n")));

    public static TheoryData<string, string> Bodies => new()
    {
        { "bundle-legacy-fields.json", "array" }, { "bundle-legacy-fields.json", "array.gz" },
        { "segment-export-fields.json", "ndjson" }, { "segment-export-fields.json", "ndjson.gz" },
    };

    private static byte[] Body(string sample, string layout)
    {
        byte[] array = File.ReadAllBytes(Path.Combine(TestData.Directory, "samples", sample));
        byte[] text = layout.StartsWith("ndjson") ? AsNdjson(array) : array;
        return layout.EndsWith(".gz") ? Gzip(text) : text;
    }

    [Theory]
    [MemberData(nameof(Bodies))]
    public void Every_event_has_its_exact_position_and_only_the_last_the_count(string sample, string layout)
    {
        using var reader = new EventStreamReader(new MemoryStream(Body(sample, layout)), sample, "file:" + sample);
        var events = new List<FullStoryEvent>();
        while (reader.TryRead(out var e)) events.Add(e);
        Assert.Equal(144, events.Count);
        Assert.Equal(Enumerable.Range(0, 144).Select(i => (long?)i), events.Select(e => e.SourceIndex));
        Assert.Equal(144, events[^1].SourceCount);
        Assert.All(events.Take(143), e => Assert.Null(e.SourceCount));
        Assert.False(reader.TryRead(out _)); // and the end stays the end
        Assert.Equal(144, reader.EventsRead);
    }

    [Fact]
    public void Read_ahead_on_a_worker_thread_carries_positions_and_the_count()
    {
        using var reader = new EventStreamReader(new MemoryStream(Body("bundle-legacy-fields.json", "array.gz")), "ahead");
        var events = ReadAhead.Buffered(reader.ReadAll(), batchSize: 10).ToList();
        Assert.Equal(Enumerable.Range(0, 144).Select(i => (long?)i), events.Select(e => e.SourceIndex));
        Assert.Equal(events.Select((_, i) => i == 143 ? (long?)144 : null), events.Select(e => e.SourceCount));
    }

    [Fact]
    public void A_single_event_is_first_and_last()
    {
        using var reader = new EventStreamReader(new MemoryStream(Encoding.UTF8.GetBytes("[" + EventStreamReaderTests.Event + "]")), "one");
        var e = Assert.Single(reader.ReadAll());
        Assert.Equal(0, e.SourceIndex);
        Assert.Equal(1, e.SourceCount);
    }

    [Fact]
    public void SourceIndex_is_the_property_after_Source_and_SourceCount_is_not_public()
    {
        var names = typeof(FullStoryEvent).GetProperties().Select(p => p.Name).ToList();
        Assert.Equal(["CustomVars", "Source", "SourceIndex"], names.TakeLast(3));
        Assert.Equal(StandardFields.Count + 3, names.Count);
        Assert.DoesNotContain("SourceCount", names);
    }

    public static TheoryData<string> FailingBodies => new() { "array without ]", "ndjson cut in an object", "gzip without trailer", "foreign element last", "malformed last" };

    [Theory]
    [MemberData(nameof(FailingBodies))]
    public void A_body_that_fails_never_marks_an_event_as_the_last(string how)
    {
        byte[] array = File.ReadAllBytes(TestData.LegacySample);
        string text = Encoding.UTF8.GetString(array).TrimEnd();
        byte[] body = how switch
        {
            "array without ]" => Encoding.UTF8.GetBytes(text[..^1]),
            "ndjson cut in an object" => AsNdjson(array)[..^30],
            "gzip without trailer" => Gzip(array)[..^8],
            "foreign element last" => Encoding.UTF8.GetBytes(text[..^1] + """,{"foo":1}]"""),
            _ => Encoding.UTF8.GetBytes(text[..^1] + """,{"EventStart":"2020-08-27T06:20:26.900Z","EventType":}]"""),
        };
        using var reader = new EventStreamReader(new MemoryStream(body), "bad");
        var events = new List<FullStoryEvent>();
        var ex = Assert.Throws<EventDataException>(() => { while (reader.TryRead(out var e)) events.Add(e); });
        int expected = how == "ndjson cut in an object" ? 143 : 144;
        Assert.Equal(expected, events.Count); // every event before the problem is delivered, in order
        Assert.Equal(Enumerable.Range(0, expected).Select(i => (long?)i), events.Select(e => e.SourceIndex));
        Assert.All(events, e => Assert.Null(e.SourceCount));
        Assert.Same(ex, Assert.Throws<EventDataException>(() => reader.TryRead(out _))); // failed stays failed, never "the end"
    }

    [Fact]
    public void A_cancelled_read_never_marks_an_event_as_the_last()
    {
        using var cts = new CancellationTokenSource();
        using var reader = new EventStreamReader(new MemoryStream(Gzip(File.ReadAllBytes(TestData.LegacySample))), "cancelled") { CancellationToken = cts.Token };
        var events = new List<FullStoryEvent>();
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            while (reader.TryRead(out var e))
            {
                events.Add(e);
                if (events.Count == 10) cts.Cancel();
            }
        });
        Assert.InRange(events.Count, 10, 11);
        Assert.All(events, e => Assert.Null(e.SourceCount));
    }

    [Fact]
    public void Skipping_with_TryRead_as_a_resumed_download_does_keeps_positions_exact()
    {
        byte[] body = Gzip(AsNdjson(File.ReadAllBytes(TestData.SegmentSample)));
        using (var first = new EventStreamReader(new MemoryStream(body), "first"))
            for (int i = 0; i < 100; i++) Assert.True(first.TryRead(out _));
        using var again = new EventStreamReader(new MemoryStream(body), "again");
        for (int i = 0; i < 100; i++) Assert.True(again.TryRead(out _));
        var rest = again.ReadAll().ToList();
        Assert.Equal(Enumerable.Range(100, 44).Select(i => (long?)i), rest.Select(e => e.SourceIndex));
        Assert.Equal(144, rest[^1].SourceCount);
    }

    [Fact]
    public void The_verified_end_is_announced_once_before_the_last_event_is_returned()
    {
        int calls = 0;
        long? lastSeenAtEnd = null;
        var events = new List<FullStoryEvent>();
        using var reader = new EventStreamReader(new MemoryStream(File.ReadAllBytes(TestData.LegacySample)), "end")
        {
            EndVerified = () => { calls++; lastSeenAtEnd = events.Count; },
        };
        while (reader.TryRead(out var e)) events.Add(e);
        Assert.Equal(1, calls);
        Assert.Equal(143, lastSeenAtEnd);

        int failedCalls = 0;
        using var cut = new EventStreamReader(new MemoryStream(Gzip(File.ReadAllBytes(TestData.LegacySample))[..^3]), "cut") { EndVerified = () => failedCalls++ };
        Assert.Throws<EventDataException>(() => cut.ReadAll().ToList());
        Assert.Equal(0, failedCalls);
    }
}
