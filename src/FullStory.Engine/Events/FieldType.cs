namespace FullStory.Engine.Events;

/// <summary>The JSON/.NET type of a standard FullStory event field; loaders map it to column types.</summary>
public enum FieldType
{
    Int64,
    Int32,
    Double,
    String,
    Timestamp,
}
