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

    /// <summary>The value of a standard field by descriptor, for loaders that walk <see cref="StandardFields.All"/>.</summary>
    public object? GetValue(EventField field) => values[field.Ordinal];

    public void SetValue(EventField field, object? value) => values[field.Ordinal] = value;

    public override string ToString() => $"{EventStart} {EventType} user {UserId} session {SessionId}";
}
