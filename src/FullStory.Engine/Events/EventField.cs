namespace FullStory.Engine.Events;

/// <summary>A standard FullStory event field: its name, type and position in <see cref="FullStoryEvent"/>.</summary>
public sealed class EventField
{
    public EventField(string name, FieldType type, int ordinal, params string[] aliases)
    {
        Name = name;
        Type = type;
        Ordinal = ordinal;
        Aliases = aliases;
    }

    /// <summary>The name used in output and as the column name (the Segment Export API's name).</summary>
    public string Name { get; }
    public FieldType Type { get; }
    public int Ordinal { get; }
    /// <summary>Other names the APIs use for this field, e.g. the legacy bundle API's PageAgent.</summary>
    public IReadOnlyList<string> Aliases { get; }

    public override string ToString() => $"{Name} ({Type})";
}

/// <summary>The standard fields of FullStory's event record. Anything else that arrives is a custom var.</summary>
public static partial class StandardFields
{
    // Both in this file, in this order: static initialisers run in textual order only within one file.
    private static readonly EventField[] all = CreateAll();
    private static readonly Dictionary<string, EventField> byName = BuildIndex();

    public static IReadOnlyList<EventField> All => all;
    public static int Count => all.Length;

    /// <summary>Finds a field by JSON key, case-insensitively and by alias (clients' fixtures differ in case).</summary>
    public static bool TryGet(string jsonKey, out EventField field) => byName.TryGetValue(jsonKey, out field!);

    public static EventField Get(string name) =>
        TryGet(name, out var f) ? f : throw new ArgumentException($"'{name}' is not a standard FullStory field.", nameof(name));

    private static Dictionary<string, EventField> BuildIndex()
    {
        var index = new Dictionary<string, EventField>(StringComparer.OrdinalIgnoreCase);
        foreach (var f in all)
        {
            index.Add(f.Name, f);
            foreach (var a in f.Aliases) index.Add(a, f);
        }
        return index;
    }
}
