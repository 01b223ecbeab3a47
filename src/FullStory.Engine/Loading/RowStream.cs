using System.Text;
using System.Text.Json;
using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>
/// Turns events into rows for the events table, dialect-neutral. Rows come in segments that share one column set:
/// when an event carries a custom var that needs a column not yet in the set (CustomVarColumns), the segment ends
/// before that event, <see cref="NewColumns"/> lists what it needs, the store adds (or declines) them and calls
/// <see cref="Resume"/>; the held event is then the first row of the next segment. Nothing is buffered beyond one event.
/// </summary>
public sealed class RowStream : IDisposable
{
    private readonly EventTableModel model;
    private readonly IEnumerator<FullStoryEvent> source;
    private readonly string batchKey;
    private readonly DateTime loadedAtUtc;
    private readonly bool enforceMaxLength;
    private readonly CancellationToken cancellationToken;
    private readonly List<ColumnDef> columns = new();
    private readonly Dictionary<string, int> ordinals = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<ColumnDef> newColumns = new();
    private readonly int fixedCount;
    private FullStoryEvent? held;
    private object?[] current;

    public RowStream(EventTableModel model, IEnumerable<FullStoryEvent> events, string batchKey, DateTime loadedAtUtc,
        bool enforceMaxLength, CancellationToken cancellationToken = default)
    {
        this.model = model;
        source = events.GetEnumerator();
        this.batchKey = batchKey;
        this.loadedAtUtc = loadedAtUtc;
        this.enforceMaxLength = enforceMaxLength;
        this.cancellationToken = cancellationToken;
        foreach (var c in EventTableModel.FixedColumns) Add(c);
        fixedCount = columns.Count;
        current = new object?[columns.Count];
    }

    /// <summary>The columns of the current segment, in row order.</summary>
    public IReadOnlyList<ColumnDef> Columns => columns;

    /// <summary>The current row's values, aligned with <see cref="Columns"/>; null = SQL NULL.</summary>
    public object?[] Current => current;

    /// <summary>Rows produced so far.</summary>
    public long Rows { get; private set; }

    /// <summary>True once the events are exhausted.</summary>
    public bool Finished { get; private set; }

    /// <summary>Columns the held event needs before the stream can go on (segment ended and not finished).</summary>
    public IReadOnlyList<ColumnDef> NewColumns => newColumns;

    /// <summary>Advances to the next row of this segment; false at the end of the segment or of the events.</summary>
    public bool Read()
    {
        if (newColumns.Count > 0 || Finished) return false;
        FullStoryEvent ev;
        if (held is not null) { ev = held; held = null; }
        else
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!source.MoveNext()) { Finished = true; return false; }
            ev = source.Current ?? throw new InvalidDataException("A null event was passed to the loader.");
        }
        if (!Project(ev)) { held = ev; return false; }
        Rows++;
        return true;
    }

    /// <summary>Continues after the store added the <see cref="NewColumns"/> (or declined them: <see cref="EventTableModel.Decline"/>).</summary>
    public void Resume()
    {
        foreach (var c in newColumns)
            if (!model.IsDeclined(c.Name)) Add(c);
        newColumns.Clear();
        if (current.Length != columns.Count) current = new object?[columns.Count];
    }

    private void Add(ColumnDef c)
    {
        if (ordinals.ContainsKey(c.Name)) return;
        ordinals[c.Name] = columns.Count;
        columns.Add(c);
    }

    private bool Project(FullStoryEvent ev)
    {
        Array.Clear(current);
        List<KeyValuePair<string, string>>? overflow = null;
        for (int i = 0; i < fixedCount; i++)
        {
            var c = columns[i];
            switch (c.Role)
            {
                case ColumnRole.Standard:
                    var v = EventTableModel.ConvertStandard(ev.GetValue(c.Field!));
                    if (enforceMaxLength && v is string s && c.MaxLength is int max && s.Length > max)
                    {
                        // Does not fit the column: keep it, in CustomVars, as the parser does for values of an unexpected type.
                        (overflow ??= new()).Add(new(c.Name, s));
                        v = null;
                    }
                    current[i] = v;
                    break;
                case ColumnRole.Batch: current[i] = batchKey; break;
                case ColumnRole.LoadedAt: current[i] = loadedAtUtc; break;
            }
        }
        int customVarsOrdinal = ordinals[EventTableModel.CustomVarsColumn];
        current[customVarsOrdinal] = overflow is null ? ev.CustomVars : AppendToJsonObject(ev.CustomVars, overflow);

        if (model.CustomVarColumns && ev.CustomVars is { Length: > 2 } json)
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    var col = model.CustomColumn(p.Name);
                    if (model.IsDeclined(col.Name)) continue;
                    if (ordinals.TryGetValue(col.Name, out int ordinal))
                    {
                        var value = EventTableModel.ConvertCustom(p.Value, col.Kind);
                        if (value is not null) current[ordinal] = value;
                    }
                    else if (!newColumns.Any(n => string.Equals(n.Name, col.Name, StringComparison.OrdinalIgnoreCase)))
                    {
                        newColumns.Add(col);
                    }
                }
            }
        }
        return newColumns.Count == 0;
    }

    private static string AppendToJsonObject(string? json, List<KeyValuePair<string, string>> extra)
    {
        var sb = new StringBuilder();
        string body = json?.Trim() ?? "";
        if (body.Length >= 2 && body[0] == '{' && body[^1] == '}')
        {
            sb.Append(body, 0, body.Length - 1);
            if (body[1..^1].Trim().Length > 0) sb.Append(',');
        }
        else sb.Append('{');
        for (int i = 0; i < extra.Count; i++)
        {
            if (i > 0) sb.Append(',');
            sb.Append(JsonSerializer.Serialize(extra[i].Key)).Append(':').Append(JsonSerializer.Serialize(extra[i].Value));
        }
        return sb.Append('}').ToString();
    }

    public void Dispose() => source.Dispose();
}
