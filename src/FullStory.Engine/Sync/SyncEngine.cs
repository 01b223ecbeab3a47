using System.Diagnostics;
using FullStory.Engine.Api;
using FullStory.Engine.Loading;

namespace FullStory.Engine.Sync;

/// <summary>
/// One scheduled replication run (Stitch's job): take the destination's run lock, find where the destination's own
/// sync-state table says the data ends, load every newer bundle (or every newly completed Segment Export window) exactly
/// once, oldest first, and record the run in the destination's run history.
/// <para>
/// Resume: the database is the bookmark. Bundles: list from the Stop of the newest loaded bundle (FullStory lists the
/// bundles that end after the given time), skipping any key already loaded; the first run lists from
/// <see cref="SyncOptions.Start"/>. Windows: continue from the end of the newest loaded window of the segment (see
/// <see cref="SyncWindowPlan"/> for their sizes), while a window ends at or before now - Lag; the first run starts at
/// <see cref="SyncOptions.Start"/> (default: midnight UTC a year ago).
/// </para>
/// <para>
/// Segment Export keeps several exports in flight (<see cref="SegmentExportScheduler"/>), but windows are LOADED strictly
/// oldest first, one transaction each: a run stops at the first batch that fails (after its retries and, for a window,
/// after splitting it), so what is loaded stays a contiguous stretch and "resume after the newest" can never skip a hole.
/// Exports started for later windows are abandoned. The next run retries the failed batch.
/// </para>
/// <para>
/// History tells the truth: every run that starts is recorded, also one skipped for the lock or failing before it could
/// take it (where the destination can be written at all), and its batches and rows are what the destination's sync state
/// says this run committed, read back at the end, not what the run believed: a batch that committed just before Ctrl+C
/// counts, and the error names the batch that was rolled back.
/// </para>
/// </summary>
public sealed class SyncEngine
{
    private const int MaxErrorLength = 4000;
    private readonly FullStorySession session;
    private readonly SyncDestination destination;
    private readonly SyncOptions options;
    private readonly OperationObserver observer;

    public SyncEngine(FullStorySession session, SyncDestination destination, SyncOptions? options = null, OperationObserver? observer = null)
    {
        this.session = session ?? throw new ArgumentNullException(nameof(session));
        this.destination = destination ?? throw new ArgumentNullException(nameof(destination));
        this.options = options ?? new SyncOptions();
        this.observer = observer ?? OperationObserver.None;
        if (this.options.WindowSize is { } size) SegmentExportPlan.ValidateWindowSize(size);
        if (this.options.ThrottleLimit < 1) throw new ArgumentException("ThrottleLimit must be at least 1.", nameof(options));
        if (this.options.MinimumWindow < SegmentExportPlan.MinimumWindowSize) throw new ArgumentException("MinimumWindow must be at least one minute.", nameof(options));
        if (this.options.Lag < TimeSpan.Zero) throw new ArgumentException("Lag must not be negative.", nameof(options));
        if (string.IsNullOrWhiteSpace(this.options.SegmentId)) throw new ArgumentException("SegmentId must not be empty.", nameof(options));
    }

    private DateTimeOffset Now() => options.Clock().ToUniversalTime();

    private void Log(string message) => observer.Log(message);

    /// <summary>What this run did, as it goes; read back from the destination at the end.</summary>
    private sealed class RunState(IEventStore store, SyncSummary summary, SyncRunRecord? run)
    {
        public readonly IEventStore Store = store;
        public readonly SyncSummary Summary = summary;
        public readonly SyncRunRecord? Run = run;
        public HashSet<string> LoadedBefore = new(StringComparer.Ordinal);
        /// <summary>Keys this run handed to the store, in order.</summary>
        public readonly List<string> Attempted = new();
        /// <summary>Keys the store skipped because another writer had loaded them meanwhile.</summary>
        public readonly HashSet<string> LoadedByOthers = new(StringComparer.Ordinal);
        /// <summary>The batch being loaded right now (its transaction is open).</summary>
        public string? InProgress;
        public HashSet<string> Committed = new(StringComparer.Ordinal);
    }

    /// <summary>Runs one sync. Never throws for a failed run: the summary says Failed (or Cancelled, Skipped) and why.</summary>
    public SyncSummary Run(CancellationToken cancellationToken = default)
    {
        var summary = new SyncSummary { Api = options.Api, Table = destination.TableName, StartedAt = Now() };
        int retriesBefore = observer.Retries;
        IEventStore store;
        try
        {
            store = destination.OpenStore();
        }
        catch (Exception ex)
        {
            return Unrecorded(summary, ex, cancellationToken, "the destination could not be opened");
        }

        using (store)
        {
            summary.Destination = store.Destination;
            IDisposable? runLock;
            try
            {
                Log($"Taking the sync lock ({destination.LockDescription}){(options.LockWait > TimeSpan.Zero ? $", waiting up to {options.LockWait}" : "")}.");
                runLock = destination.TryAcquireRunLock(options.LockWait, cancellationToken);
            }
            catch (Exception ex)
            {
                return WithoutLock(summary, store, ex, cancellationToken, retriesBefore);
            }

            if (runLock is null) return Skipped(summary, store);

            using (runLock)
            {
                var run = new SyncRunRecord
                {
                    StartedAt = summary.StartedAt, Api = options.Api.ToString(), Table = destination.TableName, Outcome = "Running",
                    Host = Environment.MachineName,
                };
                // Runs skipped while another run held the lock go first, so that the history stays in the order things happened.
                ImportPendingRuns(store);
                try
                {
                    summary.RunId = store.BeginRun(run);
                }
                catch (Exception ex)
                {
                    return Unrecorded(summary, ex, cancellationToken, "the run history could not be written");
                }
                Log($"Run {run.RunId} started: {options.Api} into {store.Destination} table {destination.TableName}.");
                MarkAbandonedRuns(store, run);

                var state = new RunState(store, summary, run);
                Exception? failure = null;
                try
                {
                    var loader = new BatchLoader(session, store, observer)
                    {
                        ArchiveDirectory = options.ArchiveDirectory,
                        RunId = run.RunId,
                        RowProgress = options.Progress is null ? null : (key, rows) => Report(key, rows),
                    };
                    var loaded = store.GetLoadedBatches();
                    state.LoadedBefore = loaded.Select(b => b.Key).ToHashSet(StringComparer.Ordinal);
                    if (options.Api == SyncApi.Bundles) SyncBundles(loader, state, loaded, cancellationToken);
                    else SyncWindows(loader, state, loaded, cancellationToken);
                }
                catch (Exception ex)
                {
                    failure = ex;
                }
                return Finish(state, failure, cancellationToken, retriesBefore);
            }
        }
    }

    // ------------------------------------------------------------------ progress

    private int batchNumber, batchCount, loadedCount, inFlight;
    private long rowsLoaded;
    private TimeSpan? remaining;
    private string? waiting;

    private void Report(string? key, long rows) =>
        options.Progress?.Invoke(new SyncProgress($"Syncing FullStory ({options.Api})", key, batchNumber, batchCount, rows)
        {
            Loaded = loadedCount, InFlight = inFlight, RowsLoaded = rowsLoaded, Remaining = remaining, Waiting = waiting,
        });

    // ------------------------------------------------------------------ bundles

    private void SyncBundles(BatchLoader loader, RunState state, IReadOnlyList<LoadedBatch> loaded, CancellationToken cancellationToken)
    {
        var start = options.Start ?? Now() - SyncOptions.DefaultHistory;
        var newest = loaded.Where(b => IsBundleKey(b.Key) && b.RangeEnd is { } e && e > start).Select(b => b.RangeEnd!.Value).DefaultIfEmpty().Max();
        DateTimeOffset cursor = newest == default ? start : newest;
        Log(newest == default
            ? $"First run into {destination.TableName}: listing the bundles that end after {Iso(start)}."
            : $"Resuming: the newest loaded bundle ends at {Iso(newest)}; listing the bundles that end after it.");

        var todo = session.GetClient().ListBundles(cursor, null, observer, cancellationToken)
            .Where(b => !state.LoadedBefore.Contains(b.BatchKey))
            .ToList();
        Log(todo.Count == 0 ? "No new bundle: the destination is up to date with FullStory." : $"{todo.Count} new bundle(s) to load: {todo[0]} to {todo[^1]}.");
        batchCount = todo.Count;
        for (int i = 0; i < todo.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batchNumber = i + 1;
            Report(todo[i].BatchKey, 0);
            Load(state, todo[i].BatchKey, todo[i].ToString(), () => loader.LoadBundle(todo[i], cancellationToken));
        }
    }

    // ------------------------------------------------------------------ windows

    private void SyncWindows(BatchLoader loader, RunState state, IReadOnlyList<LoadedBatch> loaded, CancellationToken cancellationToken)
    {
        var now = Now();
        // A first run without -Start begins at midnight UTC a year ago: whole days, the same windows whatever the hour.
        var start = SegmentExportRequest.WholeSeconds(options.Start ?? new DateTimeOffset((now - SyncOptions.DefaultHistory).UtcDateTime.Date, TimeSpan.Zero));
        string prefix = WindowPrefix;
        var newest = loaded.Where(b => b.Key.StartsWith(prefix, StringComparison.Ordinal) && b.RangeEnd is { } e && e > start)
            .Select(b => b.RangeEnd!.Value).DefaultIfEmpty().Max();
        var horizon = now - options.Lag;
        var backfill = options.WindowSize ?? SyncOptions.DefaultBackfillWindow;
        var schedule = options.WindowSize is { } size && size < SyncOptions.ScheduleWindow ? size : SyncOptions.ScheduleWindow;
        var plan = new SyncWindowPlan(newest == default ? start : newest, horizon, backfill, schedule, options.SegmentId);
        Log((newest == default
                ? $"First run into {destination.TableName}: windows from {Iso(plan.Cursor)}"
                : $"Resuming after the newest loaded window, which ends at {Iso(newest)}")
            + $" that end by {Iso(horizon)} (now - {options.Lag}: FullStory publishes data about a day later): "
            + (plan.Count == 0 ? "none yet." : $"{plan.Count} window(s) to {Iso(plan.End)}, {Describe(plan)}, {options.ThrottleLimit} export(s) in flight at most."));
        if (plan.Count == 0) return;

        // A window recorded already (e.g. by an overlapping writer) is not asked for again.
        var windows = plan.Windows().Where(w =>
        {
            if (!state.LoadedBefore.Contains(w.BatchKey)) return true;
            Log($"{w.BatchKey} is already loaded; not exported again.");
            return false;
        });
        var schedulePolicy = new SegmentExportSchedule { ThrottleLimit = options.ThrottleLimit, MinimumWindow = options.MinimumWindow };
        using var scheduler = session.GetClient().ScheduleSegmentExports(windows, schedulePolicy, observer, cancellationToken);
        var clock = Stopwatch.StartNew();
        TimeSpan totalSpan = plan.End - plan.Cursor, loadedSpan = TimeSpan.Zero;

        void Progress(string? key)
        {
            var status = scheduler.Status;
            batchCount = (int)Math.Min(int.MaxValue, plan.Count + status.Splits);
            inFlight = status.Running + status.Ready;
            var next = status.InFlight.Count > 0 ? status.InFlight[0] : default;
            waiting = key is not null ? null
                : next.Window is null ? "Starting the next export"
                : next.Percent >= 100 ? $"Export of {next.Window} ready" : $"Waiting for the export of {next.Window} ({next.Percent}% done)";
            remaining = loadedSpan > TimeSpan.Zero ? clock.Elapsed * ((totalSpan - loadedSpan) / loadedSpan) : null;
            Report(key ?? next.Window?.BatchKey, 0);
        }

        using var ready = scheduler.InOrder(() => Progress(null)).GetEnumerator();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batchNumber = loadedCount + 1;
            try
            {
                if (!ready.MoveNext()) break;
            }
            catch (SegmentExportWindowFailedException ex)
            {
                throw new BatchFailedException(ex.Window.ToString(), ex.InnerException!);
            }
            var window = ready.Current;
            Progress(window.Request.BatchKey);
            Load(state, window.Request.BatchKey, window.Request.ToString(), () => loader.LoadReadyExport(window, cancellationToken));
            loadedSpan += window.Request.Span;
        }
    }

    private static string Describe(SyncWindowPlan plan) => plan.Backfill == plan.Schedule
        ? $"each {plan.Schedule}"
        : $"{plan.Backfill} each while a whole one fits, then {plan.Schedule}";

    // ------------------------------------------------------------------ one batch

    /// <summary>Loads one batch; a failure names it. Its key is tracked so that the end of the run can read back what committed.</summary>
    private void Load(RunState state, string key, string what, Func<LoadReport> load)
    {
        state.Attempted.Add(key);
        state.InProgress = key;
        LoadReport report;
        try { report = load(); }
        catch (Exception ex) when (ex is not OperationCanceledException) { throw new BatchFailedException(what, ex); }
        state.InProgress = null;
        Loaded(report, state);
    }

    private string WindowPrefix => $"export:{options.SegmentId}:";

    private static bool IsBundleKey(string key) => key.StartsWith("bundle:", StringComparison.Ordinal);

    private void Loaded(LoadReport report, RunState state)
    {
        if (report.AlreadyLoaded)
        {
            state.LoadedByOthers.Add(report.BatchKey); // another writer loaded it meanwhile: nothing done here
            return;
        }
        var summary = state.Summary;
        summary.loaded.Add(report);
        summary.Batches++;
        summary.Rows += report.Rows;
        summary.Bytes += report.Bytes;
        loadedCount = summary.Batches;
        rowsLoaded = summary.Rows;
        Log($"Loaded {report.BatchKey}: {report.Rows:N0} rows, {report.Bytes:N0} bytes in {report.Duration.TotalSeconds:0.0} s.");
        options.BatchLoaded?.Invoke(report);
        // The batch was counted in the run's history row by its own commit (BatchLoader.RunId), so a process that dies still
        // shows what it loaded; runs skipped meanwhile join the history now.
        if (state.Run is not null) ImportPendingRuns(state.Store);
    }

    // ------------------------------------------------------------------ history

    /// <summary>SQLite: runs skipped while this one held the lock wait beside it; move them into the history now.</summary>
    private void ImportPendingRuns(IEventStore store)
    {
        try
        {
            foreach (var r in destination.ImportPendingRuns(store))
                Log($"Recorded run {r.RunId} ({r.Outcome}, started {Iso(r.StartedAt)}), which ran while this one held the lock.");
        }
        catch (Exception ex)
        {
            Log($"Could not record the runs skipped meanwhile: {session.Redact(ex.Message)}");
        }
    }

    /// <summary>Runs of this table still "Running" while we hold the lock belong to processes that died: say so.</summary>
    private void MarkAbandonedRuns(IEventStore store, SyncRunRecord current)
    {
        try
        {
            foreach (var stale in store.GetRuns(50).Where(r => r.RunId != current.RunId && r.Outcome == "Running" && r.Table == current.Table))
            {
                stale.Outcome = "Failed";
                stale.Error = "The run did not finish: its process ended (killed, crashed or the machine restarted) before it recorded an outcome.";
                store.EndRun(stale);
                Log($"Run {stale.RunId} (started {Iso(stale.StartedAt)}) never finished; recorded it as Failed.");
            }
        }
        catch (Exception ex)
        {
            Log($"Could not check for unfinished runs: {session.Redact(ex.Message)}");
        }
    }

    /// <summary>Another run holds the lock: nothing was done, and the run is recorded without waiting for that one.</summary>
    private SyncSummary Skipped(SyncSummary summary, IEventStore store)
    {
        summary.Outcome = "Skipped";
        summary.EndedAt = Now();
        string reason = $"Another sync into {store.Destination} table {destination.TableName} is running (it holds {destination.LockDescription}); " +
                        (options.LockWait > TimeSpan.Zero ? $"waited {options.LockWait} for it; " : "") + "this run did nothing.";
        summary.Message = reason + Record(summary, store, reason);
        Log(summary.Message);
        TrySetFreshness(summary, store);
        return summary;
    }

    /// <summary>Taking the lock failed (or was cancelled): recorded as such where the destination can take it.</summary>
    private SyncSummary WithoutLock(SyncSummary summary, IEventStore store, Exception failure, CancellationToken cancellationToken, int retriesBefore)
    {
        summary.Retries = observer.Retries - retriesBefore;
        SetOutcome(summary, failure, cancellationToken, "taking the sync lock");
        summary.EndedAt = Now();
        string note = Record(summary, store, summary.Error);
        summary.Message = summary.Error + note;
        Log($"Run {summary.RunId?.ToString() ?? "(not numbered)"}: {summary}.");
        return summary;
    }

    /// <summary>Writes a run that did not hold the lock; returns a note for the message when it could not be numbered now.</summary>
    private string Record(SyncSummary summary, IEventStore store, string? error)
    {
        var record = new SyncRunRecord
        {
            StartedAt = summary.StartedAt, EndedAt = summary.EndedAt, Api = options.Api.ToString(), Table = destination.TableName,
            Outcome = summary.Outcome, Retries = summary.Retries, Error = Truncate(error), Host = Environment.MachineName,
        };
        try
        {
            summary.RunId = destination.RecordWithoutLock(store, record);
            return summary.RunId is null ? " It enters the run history (Get-FullStorySyncHistory) when the run holding the lock next records its progress." : "";
        }
        catch (Exception ex)
        {
            return " It could not be recorded in the run history: " + session.Redact(ex.Message);
        }
    }

    /// <summary>The destination could not be written at all, so the run cannot be recorded in it: the summary says so.</summary>
    private SyncSummary Unrecorded(SyncSummary summary, Exception failure, CancellationToken cancellationToken, string why)
    {
        SetOutcome(summary, failure, cancellationToken, why);
        summary.EndedAt = Now();
        summary.Message = $"{summary.Error} This run is not in the run history: {why}.";
        Log(summary.Message);
        return summary;
    }

    private void SetOutcome(SyncSummary summary, Exception failure, CancellationToken cancellationToken, string during)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            summary.Outcome = "Cancelled";
            summary.Error = $"The run was stopped (Ctrl+C or a stop request) while {during}; nothing was loaded.";
        }
        else
        {
            summary.Outcome = "Failed";
            summary.Error = Truncate(session.Redact(Flatten(failure)));
            summary.failure = failure;
        }
    }

    private SyncSummary Finish(RunState state, Exception? failure, CancellationToken cancellationToken, int retriesBefore)
    {
        var summary = state.Summary;
        var store = state.Store;
        summary.Retries = observer.Retries - retriesBefore;
        ReadBackWhatCommitted(state);

        string? rolledBack = state.InProgress is { } k && !state.Committed.Contains(k) ? k : null;
        if (failure is null) summary.Outcome = "Succeeded";
        else if (cancellationToken.IsCancellationRequested)
        {
            // Whatever the exception (PowerShell throws its own once stopping), the user stopped the run.
            summary.Outcome = "Cancelled";
            summary.Error = $"The run was stopped (Ctrl+C or a stop request) after loading {Count(summary.Batches, "batch", "batches")}"
                + (rolledBack is null ? "" : $"; {rolledBack} was being loaded and was rolled back")
                + "; the next run continues from there.";
        }
        else
        {
            summary.Outcome = "Failed";
            summary.Error = Describe(failure, state);
            summary.failure = failure is BatchFailedException b ? b.InnerException : failure;
        }
        TrySetFreshness(summary, store);
        summary.EndedAt = Now();
        summary.Message ??= summary.Outcome switch
        {
            "Succeeded" when summary.Batches == 0 => "Nothing new to load.",
            "Succeeded" => $"Loaded {Count(summary.Batches, "batch", "batches")}, {Count(summary.Rows, "row", "rows")}.",
            _ => summary.Error,
        };

        if (state.Run is { } run)
        {
            run.EndedAt = summary.EndedAt;
            run.Outcome = summary.Outcome;
            run.Batches = summary.Batches;
            run.Rows = summary.Rows;
            run.Bytes = summary.Bytes;
            run.Retries = summary.Retries;
            run.Error = summary.Error;
            run.DataThrough = summary.DataThrough;
            try
            {
                store.EndRun(run);
            }
            catch (Exception ex)
            {
                string note = "The run history could not be updated: " + session.Redact(ex.Message);
                Log(note);
                summary.Error = summary.Error is null ? note : summary.Error + " " + note;
                if (summary.Outcome == "Succeeded") summary.Outcome = "Failed";
            }
            ImportPendingRuns(store);
        }
        Log($"Run {summary.RunId}: {summary}.");
        return summary;
    }

    /// <summary>
    /// The run's batches and rows as the destination has them: the keys this run handed to the store that are recorded
    /// now and were not before. A batch that committed while the run was being stopped (its report never came back) counts;
    /// one that was rolled back does not.
    /// </summary>
    private void ReadBackWhatCommitted(RunState state)
    {
        if (state.Attempted.Count == 0) return;
        try
        {
            var recorded = new Dictionary<string, LoadedBatch>(StringComparer.Ordinal);
            foreach (var b in state.Store.GetLoadedBatches()) recorded[b.Key] = b;
            var reports = state.Summary.loaded.ToDictionary(r => r.BatchKey, StringComparer.Ordinal);
            var mine = state.Attempted.Distinct(StringComparer.Ordinal)
                .Where(k => !state.LoadedBefore.Contains(k) && !state.LoadedByOthers.Contains(k) && recorded.ContainsKey(k)).ToList();
            state.Committed = mine.ToHashSet(StringComparer.Ordinal);
            var summary = state.Summary;
            summary.loaded.Clear();
            foreach (var key in mine)
            {
                var b = recorded[key];
                summary.loaded.Add(reports.TryGetValue(key, out var r) ? r
                    : new LoadReport(key, state.Store.Destination, destination.TableName, b.Rows, 0, TimeSpan.Zero, false, Array.Empty<string>(), b.LoadedAt));
                if (r is null) Log($"{key} committed as the run was being stopped: it counts as loaded ({b.Rows:N0} rows).");
            }
            summary.Batches = mine.Count;
            summary.Rows = mine.Sum(k => recorded[k].Rows);
            summary.Bytes = summary.loaded.Sum(r => r.Bytes);
        }
        catch (Exception ex)
        {
            Log($"Could not read back what the run loaded: {session.Redact(ex.Message)}");
        }
    }

    private string Describe(Exception ex, RunState state)
    {
        string text = ex switch
        {
            BatchFailedException b when state.InProgress is { } k && state.Committed.Contains(k)
                => $"after {b.Batch} was loaded: {Flatten(b.InnerException!)}",
            BatchFailedException b => $"{b.Batch}: {Flatten(b.InnerException!)}",
            _ => Flatten(ex),
        };
        return Truncate(session.Redact(text))!;
    }

    private static string? Truncate(string? text) => text is null || text.Length <= MaxErrorLength ? text : text[..MaxErrorLength] + "…";

    private static string Flatten(Exception ex) => Diagnostics.FailureAdvisor.Unwrap(ex).Message;

    /// <summary>DataThrough, Lag and IsUpToDate from what the destination holds now.</summary>
    private void TrySetFreshness(SyncSummary summary, IEventStore store)
    {
        try
        {
            var batches = store.GetLoadedBatches()
                .Where(b => b.RangeEnd is not null && (options.Api == SyncApi.Bundles ? IsBundleKey(b.Key) : b.Key.StartsWith(WindowPrefix, StringComparison.Ordinal)))
                .ToList();
            if (batches.Count == 0) return;
            var newest = batches.MaxBy(b => b.RangeEnd!.Value)!;
            TimeSpan period = newest.RangeStart is { } s ? newest.RangeEnd!.Value - s : options.WindowSize ?? SyncOptions.ScheduleWindow;
            summary.DataThrough = newest.RangeEnd;
            summary.Lag = Now() - newest.RangeEnd!.Value;
            // FullStory publishes a period's data about a day after it ends; an hour of slack for "about".
            summary.IsUpToDate = summary.Lag <= options.Lag + period + TimeSpan.FromHours(1);
        }
        catch (Exception ex)
        {
            Log($"Could not read how far the data goes: {session.Redact(ex.Message)}");
        }
    }

    private static string Count(long n, string one, string many) =>
        n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + " " + (n == 1 ? one : many);

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Names the batch that failed in the run's error.</summary>
    private sealed class BatchFailedException(string batch, Exception inner) : Exception(inner.Message, inner)
    {
        public string Batch { get; } = batch;
    }
}
