namespace FullStory.Engine.Events;

/// <summary>
/// One FullStory event. Standard fields are typed properties (null when the event lacks them);
/// every other key (custom vars such as evt_order.total_real, keys FullStory adds later, and standard
/// keys whose value had an unexpected type) is kept verbatim in <see cref="CustomVars"/>, so nothing is lost
/// and every event has the same properties (Export-Csv takes its columns from the first object).
/// </summary>
public sealed partial class FullStoryEvent
{
    internal readonly object?[] values = new object?[StandardFields.Count];

    /// <summary>The non-standard keys of the event as a JSON object with the values exactly as received; null when none.</summary>
    public string? CustomVars { get; set; }

    /// <summary>Where the event came from: "bundle:&lt;id&gt;", "export:&lt;start&gt;/&lt;end&gt;" or "file:&lt;path&gt;".</summary>
    public string? Source { get; set; }

    /// <summary>The value of a standard field by descriptor, for loaders that walk <see cref="StandardFields.All"/>.</summary>
    public object? GetValue(EventField field) => values[field.Ordinal];

    public void SetValue(EventField field, object? value) => values[field.Ordinal] = value;

    public override string ToString() => $"{EventStart} {EventType} user {UserId} session {SessionId}";
}
