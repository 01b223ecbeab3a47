using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace FullStory.Emulator;

/// <summary>
/// Process mode. Prints one JSON line {"baseUri":…,"apiKey":…} to stdout once listening, then serves until stdin
/// reaches EOF (unless --no-stdin), SIGTERM or Ctrl+C. Nothing else goes to stdout; warnings go to stderr.
/// </summary>
internal static class Program
{
    private const string Usage = """
        Usage: dotnet FullStory.Emulator.dll [options]
          --port N                      port on 127.0.0.1 (0 = any free port; default 0)
          --key K                       the accepted API key
          --seed N                      data seed (default 1)
          --bundles N                   generated bundles (default 3)
          --events-per-bundle N         events per generated bundle (default 200)
          --period-hours H              bundle period in hours (default 24; fractions allowed)
          --first-bundle-start ISO      start of the first generated bundle (default: midnight UTC, today - bundles - 1 days)
          --sample-bundle FILE          a real JSON-array file served as a bundle before the generated ones (repeatable)
          --downloads-per-window N      legacy /get rate limit (0 = unlimited; real FullStory: 2)
          --download-window-seconds S   rate limit window (default 60)
          --pending-polls N             segment export polls answering PENDING (default 2; used without an export time)
          --export-seconds S            a segment export completes S seconds after it is created (fractions allowed)
          --export-ms-per-1000-events M and M ms more per 1,000 events in its window (exports that grow with their size)
          --max-running-exports N       exports running at once; one more is refused with 429 + Retry-After (0 = no limit)
          --location-lifetime-seconds S signed download lifetime (default 300)
          --plain-json                  serve legacy bundles as plain JSON (not gzip)
          --faults FILE                 JSON array of fault rules to start with
          --no-stdin                    do not stop at stdin EOF (stop with SIGTERM / Ctrl+C only)
        """;

    public static async Task<int> Main(string[] args)
    {
        var o = new EmulatorOptions();
        string? faultsFile = null;
        bool watchStdin = true;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
                int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
                switch (a)
                {
                    case "--port": o.Port = NextInt(); break;
                    case "--key": o.ApiKey = Next(); break;
                    case "--seed": o.Seed = NextInt(); break;
                    case "--bundles": o.BundleCount = NextInt(); break;
                    case "--events-per-bundle": o.EventsPerBundle = NextInt(); break;
                    case "--period-hours": o.BundlePeriod = TimeSpan.FromHours(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
                    case "--first-bundle-start": o.FirstBundleStart = DateTimeOffset.Parse(Next(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal); break;
                    case "--sample-bundle": o.SampleBundleFiles.Add(Next()); break;
                    case "--downloads-per-window": o.DownloadsPerWindow = NextInt(); break;
                    case "--download-window-seconds": o.DownloadWindow = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
                    case "--pending-polls": o.OperationPendingPolls = NextInt(); break;
                    case "--export-seconds": o.ExportDuration = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
                    case "--export-ms-per-1000-events": o.ExportDurationPer1000Events = TimeSpan.FromMilliseconds(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
                    case "--max-running-exports": o.MaxRunningExports = NextInt(); break;
                    case "--location-lifetime-seconds": o.DownloadLocationLifetime = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)); break;
                    case "--plain-json": o.GzipBundles = false; break;
                    case "--faults": faultsFile = Next(); break;
                    case "--no-stdin": watchStdin = false; break;
                    case "-h" or "--help" or "-?": Console.Error.WriteLine(Usage); return 0;
                    default: throw new ArgumentException($"Unknown option {a}");
                }
            }
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine("error: " + ex.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        FullStoryEmulator emulator;
        try
        {
            emulator = await FullStoryEmulator.StartAsync(o, logToStderr: true, CancellationToken.None);
            if (faultsFile is not null) emulator.Faults.AddRange(FaultPlan.Parse(File.ReadAllText(faultsFile)));
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine("error: " + ex.Message);
            return 1;
        }

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });

        var line = new JsonObject { ["baseUri"] = emulator.BaseUri.ToString(), ["apiKey"] = emulator.ApiKey }.ToJsonString();
        var stdout = Console.Out;
        stdout.WriteLine(line);
        stdout.Flush();

        if (watchStdin)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    var stdin = Console.OpenStandardInput();
                    var buf = new byte[256];
                    while (await stdin.ReadAsync(buf) > 0) { }
                }
                catch { }
                stop.TrySetResult();
            });
        }

        await stop.Task;
        await emulator.DisposeAsync();
        return 0;
    }
}
