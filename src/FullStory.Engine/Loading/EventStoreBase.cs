using System.Diagnostics;
using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>
/// The exactly-once load, shared by every dialect. A dialect supplies an exclusive <see cref="BatchTransaction"/>
/// (SQLite BEGIN IMMEDIATE; SQL Server a transaction holding sp_getapplock on the table) and renders SQL;
/// the order of operations, schema evolution and the column model live here.
/// </summary>
internal abstract class EventStoreBase : IEventStore
{
    protected EventStoreBase(EventStoreOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        Table = Identifiers.ValidateName(options.Table, "Table");
        if (Table.Equals(Identifiers.StateTable, StringComparison.OrdinalIgnoreCase) || Table.Equals(Identifiers.RunsTable, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"The table name '{Table}' is reserved for the module's own bookkeeping; choose another.", "Table");
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException("BatchSize", options.BatchSize, "BatchSize must be positive.");
        Model = new EventTableModel(options.CustomVarColumns);
    }

    protected EventStoreOptions Options { get; }
    protected string Table { get; }
    protected EventTableModel Model { get; }
    /// <summary>SQL Server limits short text columns; SQLite does not.</summary>
    protected abstract bool EnforcesMaxLength { get; }
    /// <summary>The table as shown in reports and messages (with its schema where there is one).</summary>
    protected abstract string DisplayTable { get; }

    public abstract string Destination { get; }
    public string TableName => DisplayTable;
    public abstract bool IsLoaded(string batchKey);
    public abstract IReadOnlyList<LoadedBatch> GetLoadedBatches();
    public abstract long BeginRun(SyncRunRecord run);
    public abstract void EndRun(SyncRunRecord run);
    public abstract IReadOnlyList<SyncRunRecord> GetRuns(int last = 20);
    public abstract void Dispose();

    /// <summary>Starts the batch's transaction and takes the table's load lock; returns once no other load of the table can run.</summary>
    protected abstract BatchTransaction BeginBatch(CancellationToken cancellationToken);

    protected void Log(string message) => Options.Log?.Invoke(message);

    /// <summary>Asks <see cref="EventStoreOptions.ConfirmSchemaChange"/>; true when there is nobody to ask.</summary>
    protected bool Confirm(string change) => Options.ConfirmSchemaChange?.Invoke(change) ?? true;

    protected void Require(string change)
    {
        if (!Confirm(change)) throw new SchemaChangeDeclinedException(change);
    }

    protected static void ValidateKey(string? key)
    {
        if (EventTableModel.IsValidBatchKey(key)) return;
        if (string.IsNullOrWhiteSpace(key)) throw new ArgumentException("The batch key must not be empty.", nameof(BatchInfo.Key));
        if (key.Length > EventTableModel.MaxBatchKeyLength)
            throw new ArgumentException($"The batch key is {key.Length} characters long; the limit is {EventTableModel.MaxBatchKeyLength}.", nameof(BatchInfo.Key));
    }

    /// <summary>
    /// A failure of the destination itself (a timeout, a lost connection, a lock not granted) as an error that names
    /// <paramref name="what"/> was being loaded and what to do; null for anything else (e.g. the event source's own
    /// failure), which propagates unchanged. Called after the rollback.
    /// </summary>
    protected virtual Exception? DescribeFailure(Exception failure, string what) => null;

    /// <summary>Null when an existing column of this type can hold the column's values; else the type the module needs, for the error.</summary>
    protected abstract string? RequiredTypeFor(ColumnDef column, ExistingColumn existing);

    private static DateTimeOffset NowToTheMillisecond()
    {
        var now = DateTimeOffset.UtcNow;
        return new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);
    }

    public LoadReport LoadBatch(BatchInfo batch, IEnumerable<FullStoryEvent> events, Func<long>? bytesRead = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(events);
        ValidateKey(batch.Key);
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var loadedAt = NowToTheMillisecond();

        string what = $"{batch.Key} (into {DisplayTable} of {Destination})";
        using var tx = Begin(what, cancellationToken);
        try
        {
            // Inside the lock: a load that committed while we waited is seen here, so it is never loaded twice.
            var record = tx.GetRecord(batch.Key);
            if (record is { IsComplete: true })
            {
                tx.Rollback();
                Log($"Batch {batch.Key} is already loaded into {DisplayTable}; skipped.");
                return new LoadReport(batch.Key, Destination, DisplayTable, 0, 0, clock.Elapsed, true, Array.Empty<string>(), loadedAt);
            }

            var added = new List<string>();
            EnsureTables(tx, added);
            long replaced = 0;
            if (record is not null)
            {
                // An earlier load held only part of this source (a filtered or interrupted pipeline): the whole source
                // replaces it in this transaction, so every event ends up there exactly once.
                replaced = tx.DeleteRows(batch.Key);
                Log($"Replacing the {replaced:N0} rows of an earlier partial load of {batch.Key} in {DisplayTable} with the whole source.");
            }

            using var rows = new RowStream(Model, events, batch.Key, loadedAt.UtcDateTime, EnforcesMaxLength, cancellationToken);
            WriteAll(tx, rows, added, cancellationToken);

            long bytes = bytesRead?.Invoke() ?? 0;
            cancellationToken.ThrowIfCancellationRequested();
            tx.Record(new BatchRecord(batch.Key, true, rows.Rows, batch.RangeStart ?? record?.RangeStart, batch.RangeEnd ?? record?.RangeEnd, rows.Rows),
                bytes, loadedAt, exists: record is not null);
            if (batch.RunId is { } runId) tx.CountInRun(runId, batch.Key, rows.Rows, bytes);
            tx.Commit();
            Log($"Loaded {rows.Rows} rows of {batch.Key} into {DisplayTable}.");
            return new LoadReport(batch.Key, Destination, DisplayTable, rows.Rows, bytes, clock.Elapsed, false, added, loadedAt, replacedRows: replaced);
        }
        catch (Exception ex)
        {
            tx.Rollback();
            if (DescribeFailure(ex, what) is { } described) throw described;
            throw;
        }
    }

    public IReadOnlyList<LoadReport> LoadEvents(IEnumerable<FullStoryEvent> events, string fallbackKey, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        ValidateKey(fallbackKey);
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var loadedAt = NowToTheMillisecond();

        var tracker = SourceTracker.ForPipeline(fallbackKey);
        using var tx = Begin($"The pipeline's events (into {DisplayTable} of {Destination})", cancellationToken);
        try
        {
            var added = new List<string>();
            // Tables are ensured only when a row is due: input whose sources are all loaded already changes nothing.
            using var rows = new RowStream(Model, events, tracker, loadedAt.UtcDateTime, EnforcesMaxLength, cancellationToken) { TablesReady = false };
            WriteAll(tx, rows, added, cancellationToken,
                resolve: source =>
                {
                    ValidateKey(source.Key);
                    tracker.Resolve(source, tx.GetRecord(source.Key), present => tx.ReadIndexes(source.Key, present));
                },
                ensureTables: () => EnsureTables(tx, added));
            cancellationToken.ThrowIfCancellationRequested();

            var reports = new List<LoadReport>();
            foreach (var s in tracker.Sources)
            {
                if (s.Skip)
                {
                    Log($"{s.Key} is already loaded into {DisplayTable}; its {s.Skipped:N0} events were skipped.");
                    reports.Add(new LoadReport(s.Key, Destination, DisplayTable, 0, 0, clock.Elapsed, true, Array.Empty<string>(), loadedAt, skippedEvents: s.Skipped));
                    continue;
                }
                bool complete = s.BecomesComplete;
                if (s.Written > 0 || (complete && s.Record is not null) || (s.Count is not null && s.Record is { SourceEvents: null }))
                    tx.Record(new BatchRecord(s.Key, complete, s.TotalRows, s.Record?.RangeStart, s.Record?.RangeEnd, s.Count), 0, loadedAt, exists: s.Record is not null);
                if (s.WithoutIndex > 0)
                    Log($"{s.WithoutIndex:N0} events of {s.Key} carry no position in their source (SourceIndex): they cannot be recognised if loaded again.");
                Log($"Loaded {s.Written:N0} rows of {s.Key} into {DisplayTable}" + (s.Skipped > 0 ? $", skipped {s.Skipped:N0} events it already held" : "") +
                    (complete ? "; the source is complete." : $"; it holds {s.TotalRows:N0} of the source's {(s.Count is long n ? n.ToString("N0") : "(unknown number of)")} events so far."));
                reports.Add(new LoadReport(s.Key, Destination, DisplayTable, s.Written, 0, clock.Elapsed, false, added, loadedAt, complete, 0, s.Skipped));
            }
            tx.Commit();
            return reports;
        }
        catch (Exception ex)
        {
            tx.Rollback();
            var keys = tracker.Sources.Select(s => s.Key).ToList();
            string what = keys.Count switch
            {
                0 => $"The pipeline's events (into {DisplayTable} of {Destination})",
                1 => $"The pipeline's events of {keys[0]} (into {DisplayTable} of {Destination})",
                _ => $"The pipeline's events of {keys[0]} and {keys.Count - 1} other source(s) (into {DisplayTable} of {Destination})",
            };
            if (DescribeFailure(ex, what) is { } described) throw described;
            throw;
        }
    }

    private BatchTransaction Begin(string what, CancellationToken cancellationToken)
    {
        try { return BeginBatch(cancellationToken); }
        catch (Exception ex) when (DescribeFailure(ex, what) is { } described) { throw described; }
    }

    /// <summary>Streams the rows into the transaction, doing between segments what the next row needs first.</summary>
    private void WriteAll(BatchTransaction tx, RowStream rows, List<string> added, CancellationToken cancellationToken,
        Action<SourceTracker.SourceState>? resolve = null, Action? ensureTables = null)
    {
        while (true)
        {
            switch (rows.Peek())
            {
                case RowStream.State.Finished:
                    return;
                case RowStream.State.Ready:
                    tx.WriteRows(rows, cancellationToken);
                    break;
                case RowStream.State.NeedsSource:
                    resolve!(rows.PendingSource!);
                    rows.Resume();
                    break;
                case RowStream.State.NeedsTables:
                    ensureTables!();
                    rows.TablesReady = true;
                    rows.Resume();
                    break;
                case RowStream.State.NeedsColumns:
                    foreach (var c in rows.NewColumns)
                    {
                        if (Model.Exists(c.Name)) continue;
                        string change = $"Add column {c.Name} ({c.Kind}) to table {DisplayTable} for custom var {c.CustomKey}";
                        if (!Confirm(change))
                        {
                            // The value is kept in CustomVars anyway: nothing is lost without the column.
                            Model.Decline(c.Name);
                            Log($"Declined: {change}. Its values stay in CustomVars.");
                            continue;
                        }
                        tx.AddColumn(c);
                        Model.AddExisting(c.Name);
                        added.Add(c.Name);
                        Log($"Added column {c.Name} to {DisplayTable}.");
                    }
                    rows.Resume();
                    break;
            }
        }
    }

    /// <summary>
    /// Checks an existing events table before anything is written (every column the module writes must hold its values),
    /// then creates what is missing: the state table (or its newer columns), the events table, missing standard columns.
    /// </summary>
    private void EnsureTables(BatchTransaction tx, List<string> added)
    {
        var existing = tx.GetEventColumns();
        if (existing is not null)
        {
            var byName = existing.ToDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);
            var misfits = new List<(string, string, string)>();
            foreach (var c in EventTableModel.FixedColumns)
                if (byName.TryGetValue(c.Name, out var have) && RequiredTypeFor(c, have) is { } required)
                    misfits.Add((have.Name, have.Display, required));
            if (misfits.Count > 0) throw new IncompatibleTableException(Destination, DisplayTable, misfits);
        }

        switch (tx.GetStateTableShape())
        {
            case StateTableShape.Missing:
                Require($"Create table {Identifiers.StateTable} (the record of loaded batches)");
                tx.CreateStateTable();
                break;
            case StateTableShape.WithoutCompleteness:
                Require($"Add columns is_complete and source_events to table {Identifiers.StateTable} (they tell whole sources from partial loads)");
                tx.AddStateCompleteness();
                break;
        }

        if (existing is null)
        {
            Require($"Create table {DisplayTable}");
            tx.CreateEventsTable(EventTableModel.FixedColumns);
            Log($"Created table {DisplayTable}.");
            Model.SetExisting(EventTableModel.FixedColumns.Select(c => c.Name));
            return;
        }

        Model.SetExisting(existing.Select(c => c.Name));
        foreach (var c in Model.MissingFixedColumns())
        {
            Require($"Add column {c.Name} ({c.Kind}) to table {DisplayTable}");
            tx.AddColumn(c);
            Model.AddExisting(c.Name);
            added.Add(c.Name);
            Log($"Added missing column {c.Name} to {DisplayTable}.");
        }
    }
}

/// <summary>
/// A column of an existing table as the database describes it: its type's name ("nvarchar", "INTEGER"), how it reads in
/// messages ("nvarchar(256)"), and for SQL Server its length in characters (-1 = max), precision and scale.
/// </summary>
internal sealed record ExistingColumn(string Name, string TypeName, string Display, int Length = 0, int Precision = 0, int Scale = 0);

/// <summary>The sync-state table: absent, made by an older version (every record is of a whole source), or current.</summary>
internal enum StateTableShape { Missing, WithoutCompleteness, Current }

/// <summary>One batch's transaction in one dialect. Dispose without Commit rolls back.</summary>
internal abstract class BatchTransaction : IDisposable
{
    /// <summary>The record of a source, or null (also when the state table does not exist yet).</summary>
    public abstract BatchRecord? GetRecord(string batchKey);
    public abstract StateTableShape GetStateTableShape();
    public abstract void CreateStateTable();
    /// <summary>Adds is_complete and source_events to an older state table; its records, all of whole sources, become complete.</summary>
    public abstract void AddStateCompleteness();
    /// <summary>The events table's columns, or null when the table does not exist.</summary>
    public abstract IReadOnlyList<ExistingColumn>? GetEventColumns();
    public abstract void CreateEventsTable(IReadOnlyList<ColumnDef> columns);
    public abstract void AddColumn(ColumnDef column);
    /// <summary>Writes the rows of the current segment (until <see cref="RowStream.Read"/> returns false).</summary>
    public abstract void WriteRows(RowStream rows, CancellationToken cancellationToken);
    /// <summary>Deletes the rows of a source (an earlier partial load being replaced); returns how many.</summary>
    public abstract long DeleteRows(string batchKey);
    /// <summary>Adds the positions (_fs_index) of the source's rows to <paramref name="into"/>.</summary>
    public abstract void ReadIndexes(string batchKey, IndexSet into);
    /// <summary>Inserts the source's record, or updates it when <paramref name="exists"/>.</summary>
    public abstract void Record(BatchRecord record, long bytes, DateTimeOffset loadedAt, bool exists);
    /// <summary>Adds the batch to its run's history record (batches, rows, bytes), committed with it.</summary>
    public abstract void CountInRun(long runId, string batchKey, long rows, long bytes);
    public abstract void Commit();
    /// <summary>Rolls back if still open; never throws.</summary>
    public abstract void Rollback();
    public abstract void Dispose();
}
