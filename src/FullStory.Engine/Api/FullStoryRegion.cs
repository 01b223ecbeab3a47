namespace FullStory.Engine.Api;

/// <summary>FullStory's data centres. Keys start with theirs: "na1." or "eu1.".</summary>
public enum FullStoryRegion
{
    Na1,
    Eu1,
}
