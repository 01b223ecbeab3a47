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
        if (string.IsNullOrWhiteSpace(key)) throw new ArgumentException("The batch key must not be empty.", nameof(BatchInfo.Key));
        if (key.Length > EventTableModel.MaxBatchKeyLength)
            throw new ArgumentException($"The batch key is {key.Length} characters long; the limit is {EventTableModel.MaxBatchKeyLength}.", nameof(BatchInfo.Key));
    }

    public LoadReport LoadBatch(BatchInfo batch, IEnumerable<FullStoryEvent> events, Func<long>? bytesRead = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(events);
        ValidateKey(batch.Key);
        cancellationToken.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var now = DateTimeOffset.UtcNow;
        var loadedAt = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);

        using var tx = BeginBatch(cancellationToken);
        try
        {
            // Inside the lock: a load that committed while we waited is seen here, so it is never loaded twice.
            if (tx.IsRecorded(batch.Key))
            {
                tx.Rollback();
                Log($"Batch {batch.Key} is already loaded into {DisplayTable}; skipped.");
                return new LoadReport(batch.Key, Destination, DisplayTable, 0, 0, clock.Elapsed, true, Array.Empty<string>(), loadedAt);
            }

            var added = new List<string>();
            EnsureEventsTable(tx, added);

            using var rows = new RowStream(Model, events, batch.Key, loadedAt.UtcDateTime, EnforcesMaxLength, cancellationToken);
            while (true)
            {
                tx.WriteRows(rows, cancellationToken);
                if (rows.Finished) break;
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
            }

            long bytes = bytesRead?.Invoke() ?? 0;
            cancellationToken.ThrowIfCancellationRequested();
            tx.Record(batch, rows.Rows, bytes, loadedAt);
            tx.Commit();
            Log($"Loaded {rows.Rows} rows of {batch.Key} into {DisplayTable}.");
            return new LoadReport(batch.Key, Destination, DisplayTable, rows.Rows, bytes, clock.Elapsed, false, added, loadedAt);
        }
        catch
        {
            tx.Rollback();
            throw;
        }
    }

    private void EnsureEventsTable(BatchTransaction tx, List<string> added)
    {
        if (!tx.StateTableExists())
        {
            Require($"Create table {Identifiers.StateTable} (the record of loaded batches)");
            tx.CreateStateTable();
        }

        var existing = tx.GetEventColumns();
        if (existing is null)
        {
            Require($"Create table {DisplayTable}");
            tx.CreateEventsTable(EventTableModel.FixedColumns);
            Log($"Created table {DisplayTable}.");
            Model.SetExisting(EventTableModel.FixedColumns.Select(c => c.Name));
            return;
        }

        Model.SetExisting(existing);
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

/// <summary>One batch's transaction in one dialect. Dispose without Commit rolls back.</summary>
internal abstract class BatchTransaction : IDisposable
{
    public abstract bool IsRecorded(string batchKey);
    public abstract bool StateTableExists();
    public abstract void CreateStateTable();
    /// <summary>The events table's column names, or null when the table does not exist.</summary>
    public abstract IReadOnlyList<string>? GetEventColumns();
    public abstract void CreateEventsTable(IReadOnlyList<ColumnDef> columns);
    public abstract void AddColumn(ColumnDef column);
    /// <summary>Writes the rows of the current segment (until <see cref="RowStream.Read"/> returns false).</summary>
    public abstract void WriteRows(RowStream rows, CancellationToken cancellationToken);
    public abstract void Record(BatchInfo batch, long rows, long bytes, DateTimeOffset loadedAt);
    public abstract void Commit();
    /// <summary>Rolls back if still open; never throws.</summary>
    public abstract void Rollback();
    public abstract void Dispose();
}
