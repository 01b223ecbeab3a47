using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// The private load context for FullStory.Engine and its dependencies (SqlClient, SQLite, Polly), all kept in the
/// module's dependencies/ folder. Another module that loaded a different Microsoft.Data.SqlClient into the session
/// (dbatools, SqlServer) cannot collide with ours, and ours cannot break theirs.
/// </summary>
internal sealed class ModuleLoadContext : AssemblyLoadContext
{
    private readonly string dependencyDirectory;
    private readonly string runtimeLibDirectory;
    private readonly string[] nativeDirectories;

    public ModuleLoadContext(string dependencyDirectory) : base("FullStory", isCollectible: false)
    {
        this.dependencyDirectory = dependencyDirectory;
        // Microsoft.Data.SqlClient's lib/ assembly is a stub that throws "not supported on this platform";
        // the real implementations are per OS under runtimes/. Packaging deletes the stub so it is never found first.
        string os = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "win" : "unix";
        runtimeLibDirectory = Path.Combine(dependencyDirectory, "runtimes", os, "lib", "net8.0");
        nativeDirectories = NativeRuntimeIdentifiers().Select(rid => Path.Combine(dependencyDirectory, "runtimes", rid, "native")).ToArray();
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        string file = assemblyName.Name + ".dll";
        foreach (var directory in new[] { runtimeLibDirectory, dependencyDirectory })
        {
            string path = Path.Combine(directory, file);
            if (File.Exists(path)) return LoadFromAssemblyPath(path);
        }
        return null; // the framework's assemblies come from the default context
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        foreach (var directory in nativeDirectories)
            foreach (var candidate in NativeFileNames(unmanagedDllName))
            {
                string path = Path.Combine(directory, candidate);
                if (File.Exists(path)) return LoadUnmanagedDllFromPath(path);
            }
        return IntPtr.Zero;
    }

    private static IEnumerable<string> NativeFileNames(string name)
    {
        yield return name;
        if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows)) { yield return name + ".dll"; yield break; }
        string ext = RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? ".dylib" : ".so";
        yield return name + ext;
        yield return "lib" + name + ext;
    }

    private static IEnumerable<string> NativeRuntimeIdentifiers()
    {
        string arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows)) { yield return $"win-{arch}"; yield break; }
        if (RuntimeInformation.IsOSPlatform(OSPlatform.OSX)) { yield return $"osx-{arch}"; yield return "osx"; yield break; }
        bool musl = File.Exists("/etc/alpine-release");
        if (musl) yield return $"linux-musl-{arch}";
        yield return $"linux-{arch}";
    }
}
