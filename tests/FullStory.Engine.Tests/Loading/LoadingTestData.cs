using System.Globalization;
using System.Text.Json.Nodes;
using FullStory.Engine.Events;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Tests.Loading;

/// <summary>Events and expected rows for the store tests.</summary>
internal static class LoadingTestData
{
    /// <summary>Streams a sample file's events (the reader stays open while the store enumerates).</summary>
    public static IEnumerable<FullStoryEvent> Stream(string path, string source)
    {
        using var file = File.OpenRead(path);
        using var reader = new EventStreamReader(file, Path.GetFileName(path), source);
        foreach (var e in reader.ReadAll()) yield return e;
    }

    public static List<FullStoryEvent> Read(string path, string source) => Stream(path, source).ToList();

    /// <summary>A sample file's events as the reader delivers a whole source: Source, positions from 0, the count on the last.</summary>
    public static IEnumerable<FullStoryEvent> Indexed(string path, string source)
    {
        var events = Read(path, source);
        for (int i = 0; i < events.Count; i++)
        {
            events[i].SourceIndex = i;
            events[i].SourceCount = i == events.Count - 1 ? events.Count : null;
        }
        return events;
    }

    /// <summary>The row a raw JSON event must become, built from the JSON alone (not from the parser's output).</summary>
    public static Dictionary<string, object?> ExpectedRow(JsonObject o)
    {
        var row = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
        var custom = new JsonObject();
        foreach (var (k, v) in o)
        {
            if (StandardFields.TryGet(k, out var f))
            {
                row[f.Name] = f.Type switch
                {
                    FieldType.Int64 or FieldType.Int32 => v!.GetValue<long>(),
                    FieldType.Double => v!.GetValue<double>(),
                    FieldType.Timestamp => DateTimeOffset.Parse(v!.GetValue<string>(), CultureInfo.InvariantCulture).UtcDateTime,
                    _ => v!.GetValue<string>(),
                };
            }
            else custom[k] = v?.DeepClone();
        }
        row[EventTableModel.CustomVarsColumn] = custom.Count == 0 ? null : custom.ToJsonString();
        return row;
    }

    /// <summary>A row as one comparable string over the standard columns and CustomVars (JSON canonicalised).</summary>
    public static string Canonical(IReadOnlyDictionary<string, object?> row)
    {
        var parts = new List<string>();
        foreach (var c in EventTableModel.FixedColumns)
        {
            if (c.Role is ColumnRole.Batch or ColumnRole.LoadedAt or ColumnRole.SourceIndex) continue;
            row.TryGetValue(c.Name, out var v);
            string text = v switch
            {
                null => "null",
                DateTime d => d.ToString("yyyy-MM-ddTHH:mm:ss.fff", CultureInfo.InvariantCulture),
                double d => d.ToString("R", CultureInfo.InvariantCulture),
                string s when c.Role == ColumnRole.CustomVars => JsonNode.Parse(s)!.ToJsonString(),
                _ => Convert.ToString(v, CultureInfo.InvariantCulture)!,
            };
            parts.Add(c.Name + "=" + text);
        }
        return string.Join("|", parts);
    }

    public static FullStoryEvent Event(long userId, string type = "click", string? customVars = null, string source = "test")
    {
        var e = new FullStoryEvent
        {
            IndvId = userId,
            UserId = userId,
            SessionId = userId + 1,
            PageId = userId + 2,
            EventStart = new UtcTimestamp(new DateTimeOffset(2020, 8, 27, 6, 20, 26, 900, TimeSpan.Zero).AddMilliseconds(userId % 1000)),
            EventType = type,
            PageDuration = 51439,
            EventCumulativeLayoutShift = 0.125,
            PageUrl = "https://fruitshoppe.firebaseapp.com/#/",
            CustomVars = customVars,
            Source = source,
        };
        return e;
    }

    public static IEnumerable<FullStoryEvent> Synthetic(int count, string source = "test")
    {
        for (int i = 0; i < count; i++) yield return Event(1000 + i, source: source);
    }

    /// <summary>Yields <paramref name="before"/> events, then throws (a download that broke, bad JSON...).</summary>
    public static IEnumerable<FullStoryEvent> Failing(int before, Exception error)
    {
        for (int i = 0; i < before; i++) yield return Event(1000 + i);
        throw error;
    }
}
