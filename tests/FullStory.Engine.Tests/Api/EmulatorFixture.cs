using FullStory.Emulator;
using FullStory.Engine.Api;

namespace FullStory.Engine.Tests.Api;

/// <summary>Starts an emulator on loopback for one test and a session pointed at it with fast retries.</summary>
internal sealed class EmulatedFullStory : IAsyncDisposable
{
    public static readonly DateTimeOffset Day0 = new(2025, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private EmulatedFullStory(FullStoryEmulator emulator, FullStorySession session)
    {
        Emulator = emulator;
        Session = session;
    }

    public FullStoryEmulator Emulator { get; }
    public FullStorySession Session { get; }
    public FullStoryClient Client => Session.GetClient();
    public List<string> Log { get; } = new();
    public OperationObserver Observer => observer ??= new OperationObserver { Verbose = m => { lock (Log) Log.Add(m); } };
    private OperationObserver? observer;

    public static async Task<EmulatedFullStory> StartAsync(Action<EmulatorOptions>? configure = null, int maxAttempts = 4, string? key = null)
    {
        var options = new EmulatorOptions { BundleCount = 3, EventsPerBundle = 200, FirstBundleStart = Day0 };
        configure?.Invoke(options);
        var emulator = await FullStoryEmulator.StartAsync(options);
        var retry = new RetrySettings { MaxAttempts = maxAttempts, BaseDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200), PollInterval = TimeSpan.FromMilliseconds(20) };
        var session = new FullStorySession(new ApiKeyCredential(key ?? emulator.ApiKey), baseUri: emulator.BaseUri, retry: retry);
        return new EmulatedFullStory(emulator, session);
    }

    public async ValueTask DisposeAsync()
    {
        Session.Dispose();
        await Emulator.DisposeAsync();
    }
}
