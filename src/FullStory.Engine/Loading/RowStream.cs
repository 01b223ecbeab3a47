using System.Text;
using System.Text.Json;
using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>
/// Turns events into rows for the events table, dialect-neutral. Rows come in segments that share one column set and
/// need no database work in between; a segment ends (<see cref="Peek"/> says why) when the next event needs something first:
/// <see cref="State.NeedsSource"/> — its source's record must be read (<see cref="PendingSource"/>, pipeline loads);
/// <see cref="State.NeedsTables"/> — the first row is due and the tables are not ensured yet;
/// <see cref="State.NeedsColumns"/> — a custom var needs a column not yet in the set (<see cref="NewColumns"/>).
/// The store does that and calls <see cref="Resume"/>; the held event then goes on. Nothing is buffered beyond one event.
/// Which events become rows (and their source key and position) is the <see cref="SourceTracker"/>'s decision.
/// </summary>
public sealed class RowStream : IDisposable
{
    public enum State { Ready, NeedsSource, NeedsTables, NeedsColumns, Finished }

    private readonly EventTableModel model;
    private readonly IEnumerator<FullStoryEvent> source;
    private readonly SourceTracker tracker;
    private readonly DateTime loadedAtUtc;
    private readonly bool enforceMaxLength;
    private readonly CancellationToken cancellationToken;
    private readonly List<ColumnDef> columns = new();
    private readonly Dictionary<string, int> ordinals = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<ColumnDef> newColumns = new();
    private readonly int fixedCount;
    private FullStoryEvent? held;
    private bool heldAdmitted, ready;
    private string heldKey = "";
    private long? heldIndex;
    private object?[] current;

    /// <summary>Rows of one complete source, keyed <paramref name="batchKey"/>.</summary>
    public RowStream(EventTableModel model, IEnumerable<FullStoryEvent> events, string batchKey, DateTime loadedAtUtc,
        bool enforceMaxLength, CancellationToken cancellationToken = default)
        : this(model, events, SourceTracker.ForCompleteSource(batchKey), loadedAtUtc, enforceMaxLength, cancellationToken)
    {
    }

    internal RowStream(EventTableModel model, IEnumerable<FullStoryEvent> events, SourceTracker tracker, DateTime loadedAtUtc,
        bool enforceMaxLength, CancellationToken cancellationToken = default)
    {
        this.model = model;
        source = events.GetEnumerator();
        this.tracker = tracker;
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

    /// <summary>False until the store has ensured the tables (pipeline loads ensure them only when a row is due).</summary>
    public bool TablesReady { get; set; } = true;

    /// <summary>Columns the held event needs before the stream can go on (segment ended and not finished).</summary>
    public IReadOnlyList<ColumnDef> NewColumns => newColumns;

    /// <summary>The source whose record the store must read before the held event can be decided.</summary>
    internal SourceTracker.SourceState? PendingSource { get; private set; }

    /// <summary>Advances to the next row of this segment; false at the end of the segment or of the events.</summary>
    public bool Read()
    {
        if (Peek() != State.Ready) return false;
        ready = false;
        return true;
    }

    /// <summary>What comes next: a row (ready in <see cref="Current"/> once <see cref="Read"/> is called), the end, or what the store must do first.</summary>
    public State Peek()
    {
        if (ready) return State.Ready;
        if (Finished) return State.Finished;
        if (PendingSource is not null) return State.NeedsSource;
        if (newColumns.Count > 0) return State.NeedsColumns;
        while (true)
        {
            FullStoryEvent ev;
            if (held is not null) { ev = held; held = null; }
            else
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!source.MoveNext()) { Finished = true; return State.Finished; }
                ev = source.Current ?? throw new InvalidDataException("A null event was passed to the loader.");
            }
            if (!heldAdmitted)
            {
                switch (tracker.Admit(ev, out var state, out var index))
                {
                    case SourceTracker.Decision.Lookup:
                        held = ev;
                        PendingSource = state;
                        return State.NeedsSource;
                    case SourceTracker.Decision.Skip:
                        continue;
                }
                heldKey = state.Key;
                heldIndex = index;
                heldAdmitted = true;
            }
            if (!TablesReady) { held = ev; return State.NeedsTables; }
            if (!Project(ev)) { held = ev; return State.NeedsColumns; }
            heldAdmitted = false;
            ready = true;
            Rows++;
            return State.Ready;
        }
    }

    /// <summary>Continues after the store resolved the <see cref="PendingSource"/>, ensured the tables, or added the <see cref="NewColumns"/> (or declined them: <see cref="EventTableModel.Decline"/>).</summary>
    public void Resume()
    {
        PendingSource = null;
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
                case ColumnRole.Batch: current[i] = heldKey; break;
                case ColumnRole.SourceIndex: current[i] = heldIndex; break;
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
