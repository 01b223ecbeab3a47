using System.Diagnostics;
using System.Net;

namespace FullStory.Engine.Api;

/// <summary>A window whose export FullStory has prepared: ready to download.</summary>
public sealed record ReadyExport(SegmentExportRequest Request, string OperationId, string SearchExportId);

/// <summary>How a <see cref="SegmentExportScheduler"/> spreads its work.</summary>
public sealed class SegmentExportSchedule
{
    /// <summary>The default number of exports kept in flight.</summary>
    public const int DefaultThrottleLimit = 4;
    public static readonly TimeSpan DefaultMinimumWindow = TimeSpan.FromHours(1);

    /// <summary>Exports kept in flight at most: started and not yet handed to the consumer (running on FullStory's side, or ready and waiting).</summary>
    public int ThrottleLimit { get; init; } = DefaultThrottleLimit;

    /// <summary>
    /// A window that FullStory refuses, or whose export FAILS, is split in halves and each half exported, down to windows of
    /// this length; a window that cannot be split any more fails the run. Default one hour.
    /// </summary>
    public TimeSpan MinimumWindow { get; init; } = DefaultMinimumWindow;
}

/// <summary>Where the scheduler is: windows handed over, exports running and ready, and how far the running ones are.</summary>
public sealed record SegmentExportStatus(int Delivered, int Running, int Ready, int Splits, int Limit, IReadOnlyList<(SegmentExportRequest Window, int Percent)> InFlight);

/// <summary>A window FullStory could not export (refused or FAILED, even after splitting it as far as allowed).</summary>
public sealed class SegmentExportWindowFailedException(SegmentExportRequest window, Exception inner)
    : FullStoryApiException(inner.Message, (inner as FullStoryApiException)?.StatusCode, (inner as FullStoryApiException)?.ErrorCode, inner)
{
    public SegmentExportRequest Window { get; } = window;
}

/// <summary>
/// Keeps several Segment Exports in flight and hands them over strictly in time order.
/// <para>
/// One coordinator thread makes every create and status request (each takes milliseconds; no thread sits blocked per export).
/// At most <see cref="SegmentExportSchedule.ThrottleLimit"/> windows are started and not yet handed over, so what waits is
/// bounded, and the window the consumer needs next is always the first to start. The windows come from a lazy sequence: only
/// those about to start exist (a minute-sized window over a year is half a million windows, never a list).
/// </para>
/// <para>
/// Limits: a 429 on create or poll is not a failure. The scheduler waits what Retry-After says and lowers how many exports it
/// keeps running: to the number that were running when FullStory refused one more (create), or by half (poll); after as many
/// exports completed as the current limit, it tries one more again, up to the throttle limit (additive increase,
/// multiplicative decrease, as TCP does). 5xx and network errors are retried by the request pipeline as everywhere else.
/// </para>
/// <para>
/// Failures: a window that FullStory refuses (400, 413, 422) or whose export ends FAILED is split in halves that take its place
/// in the order, down to <see cref="SegmentExportSchedule.MinimumWindow"/>. A window that still fails ends the sequence there:
/// windows before it are still handed over (the consumer loads them), nothing after it is started, and exports already started
/// after it are abandoned (no more polls, no download). The consumer gets a <see cref="SegmentExportWindowFailedException"/>
/// when it reaches that window. Dispose abandons whatever is still in flight (a consumer that stops early, Ctrl+C).
/// </para>
/// </summary>
public sealed class SegmentExportScheduler : IDisposable
{
    private enum SlotState { Planned, Creating, Running, Ready, Failed }

    private sealed class Slot(SegmentExportRequest request)
    {
        public SegmentExportRequest Request = request;
        public SlotState State;
        public string? OperationId;
        public string? SearchExportId;
        public PollBackoff Backoff;
        public long NextPollAt; // Stopwatch ticks
        public long RunningSince; // Stopwatch ticks: when FullStory accepted it
        public int Percent;
        public string LastState = "";
        public Exception? Error;
    }

    private static readonly TimeSpan DefaultRetryAfter = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ConsumerHeartbeat = TimeSpan.FromMilliseconds(250);

    private readonly FullStoryClient client;
    private readonly RetrySettings retry;
    private readonly OperationObserver observer;
    private readonly SegmentExportSchedule schedule;
    private readonly IEnumerator<SegmentExportRequest> plan;
    private readonly CancellationTokenSource stop;
    private readonly CancellationTokenRegistration wakeOnCancel;
    private readonly Thread coordinator;
    private readonly object gate = new();
    private readonly LinkedList<Slot> slots = new(); // not yet handed over, in time order
    private bool planDone, disposed;
    private Exception? crash; // the coordinator itself broke (a bug, or the plan threw)
    private int limit, completedSinceChange, idleRefusals, delivered, splits;
    private long createsBlockedUntil; // Stopwatch ticks

    internal SegmentExportScheduler(FullStoryClient client, RetrySettings retry, IEnumerable<SegmentExportRequest> windows, SegmentExportSchedule schedule,
        OperationObserver observer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(windows);
        this.schedule = schedule ?? new SegmentExportSchedule();
        if (this.schedule.ThrottleLimit < 1) throw new ArgumentOutOfRangeException(nameof(schedule), this.schedule.ThrottleLimit, "The throttle limit must be at least 1.");
        this.client = client;
        this.retry = retry;
        this.observer = observer ?? OperationObserver.None;
        limit = this.schedule.ThrottleLimit;
        plan = windows.GetEnumerator();
        stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wakeOnCancel = stop.Token.Register(Wake);
        coordinator = new Thread(Coordinate) { IsBackground = true, Name = "FullStory segment exports" };
        coordinator.Start();
    }

    /// <summary>The exports' current state, for progress.</summary>
    public SegmentExportStatus Status
    {
        get
        {
            lock (gate)
            {
                var inFlight = slots.Where(s => s.State is SlotState.Running or SlotState.Ready).Select(s => (s.Request, s.State == SlotState.Ready ? 100 : s.Percent)).ToList();
                return new SegmentExportStatus(delivered, slots.Count(s => s.State == SlotState.Running), slots.Count(s => s.State == SlotState.Ready), splits, limit, inFlight);
            }
        }
    }

    /// <summary>
    /// The ready exports, strictly in time order, each as soon as it and every window before it are ready. Blocks while the
    /// next one is being prepared, calling <paramref name="whileWaiting"/> on this thread every quarter second (progress,
    /// messages). Throws <see cref="SegmentExportWindowFailedException"/> at a window that failed, after every window before it.
    /// </summary>
    public IEnumerable<ReadyExport> InOrder(Action? whileWaiting = null)
    {
        while (true)
        {
            ReadyExport? next = null;
            bool finished = false;
            lock (gate)
            {
                ObjectDisposedException.ThrowIf(disposed, this);
                if (crash is not null) throw new InvalidOperationException("The segment export scheduler stopped: " + crash.Message, crash);
                var head = slots.First?.Value;
                if (head is { State: SlotState.Ready })
                {
                    slots.RemoveFirst();
                    delivered++;
                    next = new ReadyExport(head.Request, head.OperationId!, head.SearchExportId!);
                    Monitor.PulseAll(gate); // a place is free: the coordinator may start the next window
                }
                else if (head is { State: SlotState.Failed }) throw new SegmentExportWindowFailedException(head.Request, head.Error!);
                else if (head is null && planDone) finished = true;
                else
                {
                    stop.Token.ThrowIfCancellationRequested();
                    Monitor.Wait(gate, ConsumerHeartbeat);
                }
            }
            if (finished) yield break;
            if (next is not null) yield return next;
            else whileWaiting?.Invoke();
        }
    }

    // ------------------------------------------------------------------ the coordinator thread

    private void Coordinate()
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                Fill();
                if (TryStartNext()) continue;
                if (TryPollDue()) continue;
                lock (gate)
                {
                    if (stop.IsCancellationRequested) break;
                    Monitor.Wait(gate, UntilNextDue());
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        catch (Exception ex)
        {
            lock (gate)
            {
                crash = ex;
                Monitor.PulseAll(gate);
            }
        }
    }

    private void Wake()
    {
        lock (gate) Monitor.PulseAll(gate);
    }

    /// <summary>Takes windows from the plan while fewer than the throttle limit are waiting to be handed over.</summary>
    private void Fill()
    {
        while (true)
        {
            lock (gate)
            {
                if (planDone || slots.Count >= schedule.ThrottleLimit) return;
            }
            // The plan is lazy and may compute: outside the lock.
            bool more = plan.MoveNext();
            lock (gate)
            {
                if (!more) { planDone = true; Monitor.PulseAll(gate); return; }
                slots.AddLast(new Slot(plan.Current));
            }
        }
    }

    private TimeSpan UntilNextDue()
    {
        long now = Stopwatch.GetTimestamp();
        long due = long.MaxValue;
        foreach (var s in slots)
            if (s.State == SlotState.Running) due = Math.Min(due, s.NextPollAt);
        if (slots.Any(s => s.State == SlotState.Planned) && createsBlockedUntil > now) due = Math.Min(due, createsBlockedUntil);
        if (due == long.MaxValue) return TimeSpan.FromSeconds(1);
        var wait = Stopwatch.GetElapsedTime(now, due);
        return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait;
    }

    /// <summary>Starts the earliest planned window if a place is free; true when it made a request.</summary>
    private bool TryStartNext()
    {
        Slot? slot;
        int running;
        lock (gate)
        {
            // Planned windows are all before any failure (Fail removes the windows after it): they still run.
            if (Stopwatch.GetTimestamp() < createsBlockedUntil) return false;
            running = slots.Count(s => s.State is SlotState.Running or SlotState.Creating);
            if (running >= limit) return false;
            slot = slots.FirstOrDefault(s => s.State == SlotState.Planned);
            if (slot is null) return false;
            slot.State = SlotState.Creating;
        }

        string operationId;
        try
        {
            operationId = client.StartSegmentExport(slot.Request, observer, stop.Token, retryRateLimits: false);
        }
        catch (FullStoryRateLimitedException ex)
        {
            lock (gate)
            {
                if (!slots.Contains(slot)) return true; // a window before it failed meanwhile: abandoned
                slot.State = SlotState.Planned;
                int wasRunning = slots.Count(s => s.State == SlotState.Running);
                var wait = ex.RetryAfter ?? DefaultRetryAfter;
                if (wait > retry.MaxRetryAfter || (wasRunning == 0 && ++idleRefusals >= retry.MaxAttempts))
                {
                    // Nothing of ours is running and FullStory still says no (or asks for a very long wait): another client
                    // holds the limit. Give up as a request that kept failing would.
                    Fail(slot, new FullStoryApiException(
                        $"FullStory kept refusing to start the export of {slot.Request} with 429 Too Many Requests ({(wasRunning == 0 ? "none of this run's exports was running" : $"Retry-After {wait}")}). Try again later.",
                        HttpStatusCode.TooManyRequests, ex.ErrorCode, ex));
                    return true;
                }
                limit = Math.Max(1, Math.Min(limit, wasRunning));
                completedSinceChange = 0;
                createsBlockedUntil = Stopwatch.GetTimestamp() + Ticks(wait);
                observer.Log($"FullStory refused to start one more export (429) with {wasRunning} running: keeping at most {limit} in flight; next start in {wait.TotalSeconds:0.##} s.");
            }
            return true;
        }
        catch (FullStoryApiException ex) when (IsRefusal(ex))
        {
            lock (gate) if (slots.Contains(slot)) SplitOrFail(slot, ex, "FullStory refused it");
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            lock (gate) if (slots.Contains(slot)) Fail(slot, ex);
            return true;
        }

        lock (gate)
        {
            idleRefusals = 0;
            slot.OperationId = operationId;
            if (!slots.Contains(slot))
            {
                Abandon(slot); // a window before it failed while FullStory was starting this one
                return true;
            }
            slot.State = SlotState.Running;
            slot.RunningSince = Stopwatch.GetTimestamp();
            slot.LastState = "PENDING";
            slot.Backoff = new PollBackoff(retry.PollInterval);
            slot.NextPollAt = Stopwatch.GetTimestamp() + Ticks(slot.Backoff.Next());
            int running2 = slots.Count(s => s.State == SlotState.Running);
            observer.Log($"Started the export of {slot.Request} as operation {operationId} ({running2} running, at most {limit}).");
        }
        return true;
    }

    /// <summary>Asks about the running export whose turn has come; true when it made a request.</summary>
    private bool TryPollDue()
    {
        Slot? slot = null;
        lock (gate)
        {
            long now = Stopwatch.GetTimestamp();
            foreach (var s in slots)
                if (s.State == SlotState.Running && s.NextPollAt <= now && (slot is null || s.NextPollAt < slot.NextPollAt)) slot = s;
            if (slot is null) return false;
        }

        ExportOperation op;
        try
        {
            op = client.GetOperation(slot.OperationId!, observer, stop.Token, retryRateLimits: false);
        }
        catch (FullStoryRateLimitedException ex)
        {
            lock (gate)
            {
                var wait = ex.RetryAfter ?? DefaultRetryAfter;
                slot.NextPollAt = Stopwatch.GetTimestamp() + Ticks(wait);
                limit = Math.Max(1, limit / 2);
                completedSinceChange = 0;
                observer.Log($"FullStory asked to slow down (429) on the status of operation {slot.OperationId}: keeping at most {limit} exports in flight; asking again in {wait.TotalSeconds:0.##} s.");
            }
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            lock (gate) if (slot.State == SlotState.Running && slots.Contains(slot)) Fail(slot, ex);
            return true;
        }

        lock (gate)
        {
            if (slot.State != SlotState.Running || !slots.Contains(slot)) return true; // abandoned meanwhile
            switch (op.State.ToUpperInvariant())
            {
                case "COMPLETED":
                    if (op.SearchExportId is null)
                    {
                        Fail(slot, new FullStoryApiException($"FullStory completed export operation {op.Id} without a searchExportId."));
                        break;
                    }
                    slot.State = SlotState.Ready;
                    slot.SearchExportId = op.SearchExportId;
                    slot.Percent = 100;
                    observer.Log($"Export of {slot.Request} (operation {op.Id}) is COMPLETED: ready to download as export {op.SearchExportId}.");
                    if (++completedSinceChange >= limit && limit < schedule.ThrottleLimit)
                    {
                        limit++;
                        completedSinceChange = 0;
                        observer.Log($"Keeping up to {limit} exports in flight again.");
                    }
                    Monitor.PulseAll(gate);
                    break;
                case "FAILED":
                    SplitOrFail(slot, new FullStoryExportFailedException(op.Id, client.Redact(op.ErrorDetails ?? "no details given")), "its export FAILED");
                    break;
                default:
                    if (Stopwatch.GetElapsedTime(slot.RunningSince) >= retry.ExportTimeout)
                    {
                        // Not split: a window FullStory never finishes is not known to be too large, and halves would wait as long.
                        Fail(slot, new FullStoryExportTimedOutException(op.Id, op.State, retry.ExportTimeout));
                        break;
                    }
                    var wait = slot.Backoff.Next();
                    slot.NextPollAt = Stopwatch.GetTimestamp() + Ticks(wait);
                    if (op.PercentComplete != slot.Percent || op.State != slot.LastState)
                        observer.Log($"Export of {slot.Request} (operation {op.Id}) is {op.State}, {op.PercentComplete}% done; asking again in {wait.TotalSeconds:0.##} s.");
                    slot.Percent = op.PercentComplete;
                    slot.LastState = op.State;
                    break;
            }
        }
        return true;
    }

    /// <summary>FullStory refuses a window it will not export as asked (e.g. too large): worth trying in smaller pieces.</summary>
    private static bool IsRefusal(FullStoryApiException ex) => ex.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnprocessableEntity;

    /// <summary>Replaces the window by its two halves, in its place in the order; or fails it when it is as small as allowed. Under the lock.</summary>
    private void SplitOrFail(Slot slot, Exception reason, string what)
    {
        var w = slot.Request;
        var half = SegmentExportRequest.WholeSeconds(w.Start + TimeSpan.FromTicks(w.Span.Ticks / 2)) - w.Start;
        if (half < schedule.MinimumWindow || w.Span - half < schedule.MinimumWindow)
        {
            string note = $"window {w}; windows are not split below {schedule.MinimumWindow}";
            Fail(slot, reason is FullStoryExportFailedException f
                ? new FullStoryExportFailedException(f.OperationId, $"{f.Details} ({note})")
                : new FullStoryApiException($"{reason.Message} ({note})", (reason as FullStoryApiException)?.StatusCode, (reason as FullStoryApiException)?.ErrorCode, reason));
            return;
        }
        var node = slots.Find(slot)!;
        var first = new Slot(w with { End = w.Start + half });
        var second = new Slot(w with { Start = w.Start + half });
        slots.AddBefore(node, first);
        slots.AddBefore(node, second);
        slots.Remove(node);
        splits++;
        observer.Log($"The window {w} cannot be exported in one piece ({what}: {reason.Message}); splitting it into {first.Request.Start:u} to {first.Request.End:u} and {second.Request.Start:u} to {second.Request.End:u}.");
        Monitor.PulseAll(gate);
    }

    /// <summary>
    /// The window failed for good: it ends the sequence; every window after it is abandoned (so a window that fails later is
    /// always before the ones that failed earlier, and the earliest failure is the one handed over). Under the lock.
    /// </summary>
    private void Fail(Slot slot, Exception error)
    {
        slot.State = SlotState.Failed;
        slot.Error = error;
        observer.Log($"The export of {slot.Request} failed: {error.Message} Windows after it are not exported in this run.");
        var node = slots.Find(slot)!.Next;
        while (node is not null)
        {
            var next = node.Next;
            Abandon(node.Value);
            slots.Remove(node);
            node = next;
        }
        planDone = true;
        Monitor.PulseAll(gate);
    }

    private void Abandon(Slot slot)
    {
        if (slot.OperationId is not null)
            observer.Log($"Abandoned the export of {slot.Request} (operation {slot.OperationId}, {slot.State.ToString().ToUpperInvariant()}): it is not loaded in this run; no more polls, no download.");
        slot.State = SlotState.Failed;
        slot.Error ??= new OperationCanceledException("abandoned");
    }

    private static long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Stops the coordinator (cancelling any request it is making) and abandons every export still in flight.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
        }
        stop.Cancel();
        coordinator.Join();
        lock (gate)
        {
            foreach (var s in slots)
                if (s.State is SlotState.Running or SlotState.Ready or SlotState.Creating) Abandon(s);
            slots.Clear();
        }
        wakeOnCancel.Dispose();
        stop.Dispose();
        plan.Dispose();
    }
}
