namespace FullStory.Engine.Tests;

/// <summary>Paths to the data shipped with the tests (tests/data, copied beside the test assembly).</summary>
internal static class TestData
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "data");
    public static string LegacySample => Path.Combine(Directory, "samples", "bundle-legacy-fields.json");
    public static string SegmentSample => Path.Combine(Directory, "samples", "segment-export-fields.json");

    /// <summary>A fresh temporary directory, deleted when disposed.</summary>
    public sealed class TempDirectory : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fullstory-tests-" + Guid.NewGuid().ToString("N")[..12]);
        public TempDirectory() => System.IO.Directory.CreateDirectory(Path);
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose()
        {
            try { System.IO.Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
