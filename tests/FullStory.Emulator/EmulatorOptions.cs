namespace FullStory.Emulator;

/// <summary>What the emulator serves and how it behaves.</summary>
public sealed class EmulatorOptions
{
    /// <summary>The only accepted API key (sent verbatim as <c>Authorization: Basic &lt;key&gt;</c>).</summary>
    public string ApiKey { get; set; } = "na1.emulator0000000000000000key1";

    /// <summary>0 = pick a free port. The emulator always binds 127.0.0.1 only.</summary>
    public int Port { get; set; } = 0;

    /// <summary>Seed of the generated data: same seed, same bytes.</summary>
    public int Seed { get; set; } = 1;

    public int BundleCount { get; set; } = 3;

    public int EventsPerBundle { get; set; } = 200;

    public TimeSpan BundlePeriod { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Start of the first generated bundle. Default: UTC midnight of (today - BundleCount - 1 days).</summary>
    public DateTimeOffset? FirstBundleStart { get; set; }

    /// <summary>Real JSON-array files served (byte for byte) as extra bundles before the generated ones.</summary>
    public List<string> SampleBundleFiles { get; } = new();

    /// <summary>Legacy /get rate limit: downloads allowed per <see cref="DownloadWindow"/>; 0 = unlimited. Real FullStory: 2 per minute.</summary>
    public int DownloadsPerWindow { get; set; } = 0;

    public TimeSpan DownloadWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Segment export: how many polls of the operation answer PENDING before COMPLETED. Used only when no export time is
    /// set (<see cref="ExportDuration"/> and <see cref="ExportDurationPer1000Events"/> both zero).
    /// </summary>
    public int OperationPendingPolls { get; set; } = 2;

    /// <summary>
    /// Segment export: how long an export takes, from its creation to COMPLETED, as FullStory's do (on the
    /// <see cref="Clock"/>, whether or not anyone polls). Zero with <see cref="ExportDurationPer1000Events"/> zero = count polls instead.
    /// </summary>
    public TimeSpan ExportDuration { get; set; } = TimeSpan.Zero;

    /// <summary>Segment export: added to <see cref="ExportDuration"/> per 1,000 events in the window (exports that take longer as they grow).</summary>
    public TimeSpan ExportDurationPer1000Events { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// Segment export: exports running (created, not yet COMPLETED or FAILED) at once per API key (the emulator accepts one
    /// key). Creating one more answers 429 with Retry-After = seconds until the first running one completes. 0 = no limit.
    /// With poll-counted exports (no export time) an export runs until it is polled to COMPLETED.
    /// </summary>
    public int MaxRunningExports { get; set; }

    /// <summary>The clock that export times are measured on; tests move it by hand. Signed download expiry stays on real time.</summary>
    public Func<DateTimeOffset> Clock { get; set; } = () => DateTimeOffset.UtcNow;

    internal bool TimedExports => ExportDuration > TimeSpan.Zero || ExportDurationPer1000Events > TimeSpan.Zero;

    /// <summary>How long a signed download location stays valid.</summary>
    public TimeSpan DownloadLocationLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>false: legacy bundles are served as a plain JSON body.</summary>
    public bool GzipBundles { get; set; } = true;

    /// <summary>Extra: compression level for gzip bodies. Default Fastest (bundles can be GBs).</summary>
    public System.IO.Compression.CompressionLevel GzipLevel { get; set; } = System.IO.Compression.CompressionLevel.Fastest;
}
