using System.Reflection;
using System.Runtime.Loader;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>
/// Routes FullStory.Engine (and through it every dependency) into the private <see cref="ModuleLoadContext"/>.
/// Only the engine is resolved here; the default context never sees SqlClient, SQLite or Polly.
/// Called by FullStory.psm1 before the cmdlets are imported, because PowerShell resolves the engine types in
/// cmdlet parameters while importing, before any IModuleAssemblyInitializer would run.
/// </summary>
public static class ModuleInitializer
{
    private const string EngineAssemblyName = "FullStory.Engine";
    private static readonly string DependencyDirectory =
        Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!, "dependencies");
    private static readonly Lazy<ModuleLoadContext> LoadContext = new(() => new ModuleLoadContext(DependencyDirectory));
    private static int registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref registered, 1) == 0) AssemblyLoadContext.Default.Resolving += ResolveEngine;
    }

    public static void Unregister()
    {
        if (Interlocked.Exchange(ref registered, 0) == 1) AssemblyLoadContext.Default.Resolving -= ResolveEngine;
    }

    private static Assembly? ResolveEngine(AssemblyLoadContext context, AssemblyName name) =>
        name.Name == EngineAssemblyName ? LoadContext.Value.LoadFromAssemblyName(name) : null;
}
