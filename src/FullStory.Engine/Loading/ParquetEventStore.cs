using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Schema;

namespace FullStory.Engine.Loading;

/// <summary>
/// A lake folder: events as Parquet files in Hive-style partitions, <c>&lt;folder&gt;/&lt;table&gt;/event_date=YYYY-MM-DD/</c>
/// (the UTC date of EventStart), readable as they are by DuckDB, Spark, Synapse, Fabric and external tables; the same
/// exactly-once rules as the databases (<see cref="EventStoreBase"/>), with the bookkeeping in <c>&lt;folder&gt;/_fullstory/</c>
/// (engines skip names that start with '_').
/// <para>
/// A batch is a transaction of files: the load holds the table's lock file; rows go to Parquet files in a staging folder
/// (one file per batch, partition and column set, in row groups); at commit the files are flushed to disk, then a
/// manifest naming every file to move and delete and every batch record to write is written and renamed into place (the
/// commit point), then applied: files renamed into their partitions (complete sources get a name derived from the batch
/// key, so loading a batch again overwrites its files), replaced files deleted, records written. A crash before the
/// manifest leaves only staging files, which the next load deletes; a crash after it is completed by the next load (the
/// manifest is applied again: every step can be repeated). Readers see a batch's files once they are renamed, a step of
/// milliseconds.
/// </para>
/// </summary>
internal sealed class ParquetEventStore : EventStoreBase
{
    /// <summary>
    /// A row group ends at this many rows or once its text reaches <see cref="RowGroupChars"/> characters, whichever comes
    /// first: large enough for readers' scans, small enough that a batch streams with flat memory (a row group is held
    /// whole until it is written, per open partition).
    /// </summary>
    internal const int RowGroupRows = 65_536;
    internal const long RowGroupChars = 8L * 1024 * 1024;
    private const string StateFolder = "_fullstory";
    private const int LockWaitSeconds = 120;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly string root, tableDir, stateDir, batchesDir, runsDir;

    public ParquetEventStore(string folder, EventStoreOptions options) : base(options)
    {
        if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException("The folder must not be empty.", nameof(folder));
        if (!IsSafeFolderName(Table))
            throw new ArgumentException($"The table name '{Table}' cannot be a folder name (it holds / \\ : * ? \" < > | or starts with '.' or '_'); choose another.", "Table");
        root = Path.GetFullPath(folder);
        if (File.Exists(root)) throw new ArgumentException($"'{root}' is a file; the Parquet destination is a folder.", nameof(folder));
        tableDir = Path.Combine(root, Table);
        stateDir = Path.Combine(root, StateFolder, "tables", Table);
        batchesDir = Path.Combine(stateDir, "batches");
        runsDir = Path.Combine(root, StateFolder, "runs");
    }

    /// <summary>A name every file system takes, and that engines do not skip (no leading '_' or '.').</summary>
    internal static bool IsSafeFolderName(string name) =>
        name.IndexOfAny(['/', '\\', ':', '*', '?', '"', '<', '>', '|']) < 0 && !name.StartsWith('.') && !name.StartsWith('_') && name.Trim() == name;

    public override string Destination => "parquet:" + root;
    protected override bool EnforcesMaxLength => false;
    protected override string DisplayTable => Table;

    /// <summary>Tests: called at each step of a commit ("staged", "committed", "moved"); throwing there is a crash at that point.</summary>
    internal Action<string>? FaultPoint { get; set; }

    /// <summary>The folder's lock files, one for the loads of each table.</summary>
    internal string LoadLockPath => LockPath(root, Table, "load");

    /// <summary>A lock file of the folder: "load" (one load of a table at a time) or "sync" (one sync run of a table at a time).</summary>
    internal static string LockPath(string root, string table, string kind) => Path.Combine(root, StateFolder, "locks", $"{table}.{kind}.lock");

    // ---- Records ----

    private sealed class RecordFile
    {
        public string Key { get; set; } = "";
        public bool Complete { get; set; }
        public long Rows { get; set; }
        public long Bytes { get; set; }
        public long? SourceEvents { get; set; }
        public DateTimeOffset? RangeStart { get; set; }
        public DateTimeOffset? RangeEnd { get; set; }
        public DateTimeOffset LoadedAt { get; set; }
        /// <summary>The batch's files, relative to the table folder.</summary>
        public List<string> Files { get; set; } = new();
    }

    private string RecordPath(string key) => Path.Combine(batchesDir, KeyHash(key) + ".json");

    internal static string KeyHash(string key) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..24].ToLowerInvariant();

    private RecordFile? ReadRecord(string key)
    {
        string path = RecordPath(key);
        if (!File.Exists(path)) return null;
        var record = JsonSerializer.Deserialize<RecordFile>(File.ReadAllBytes(path), Json);
        return record is not null && record.Key == key ? record : null;
    }

    private IEnumerable<RecordFile> ReadRecords()
    {
        if (!Directory.Exists(batchesDir)) yield break;
        foreach (var file in Directory.EnumerateFiles(batchesDir, "*.json"))
        {
            RecordFile? r;
            try { r = JsonSerializer.Deserialize<RecordFile>(File.ReadAllBytes(file), Json); }
            catch (FileNotFoundException) { continue; }
            if (r is not null) yield return r;
        }
    }

    private static BatchRecord ToBatchRecord(RecordFile r) => new(r.Key, r.Complete, r.Rows, r.RangeStart, r.RangeEnd, r.SourceEvents);

    public override bool IsLoaded(string batchKey)
    {
        ValidateKey(batchKey);
        return ReadRecord(batchKey) is { Complete: true };
    }

    public override IReadOnlyList<LoadedBatch> GetLoadedBatches() =>
        ReadRecords().Where(r => r.Complete).OrderBy(r => r.LoadedAt).ThenBy(r => r.Key, StringComparer.Ordinal)
            .Select(r => new LoadedBatch(r.Key, r.RangeStart, r.RangeEnd, r.Rows, r.LoadedAt)).ToList();

    // ---- Columns ----

    private sealed class SchemaFile
    {
        public List<ColumnEntry> Columns { get; set; } = new();
    }

    private sealed record ColumnEntry(string Name, ColumnKind Kind);

    private string SchemaPath => Path.Combine(stateDir, "schema.json");

    private List<ColumnEntry>? ReadSchema() =>
        File.Exists(SchemaPath) ? JsonSerializer.Deserialize<SchemaFile>(File.ReadAllBytes(SchemaPath), Json)?.Columns : null;

    /// <summary>Parquet's physical types: every integer is int64, so Int32 and Int64 columns are one type here.</summary>
    private static string Physical(ColumnKind kind) => kind switch
    {
        ColumnKind.Int64 or ColumnKind.Int32 => "int64",
        ColumnKind.Double => "double",
        ColumnKind.Boolean => "boolean",
        ColumnKind.Timestamp => "timestamp(ms, UTC)",
        _ => "string",
    };

    protected override string? RequiredTypeFor(ColumnDef column, ExistingColumn existing) =>
        existing.TypeName == Physical(column.Kind) ? null : Physical(column.Kind);

    internal static DataField FieldFor(ColumnDef column) => column.Kind switch
    {
        ColumnKind.Int64 or ColumnKind.Int32 => new DataField<long?>(column.Name),
        ColumnKind.Double => new DataField<double?>(column.Name),
        ColumnKind.Boolean => new DataField<bool?>(column.Name),
        ColumnKind.Timestamp => new DateTimeDataField(column.Name, DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Millis, isNullable: true),
        _ => new DataField<string>(column.Name),
    };

    // ---- Files ----

    private static void WriteAtomically(string path, byte[] content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            fs.Write(content);
            fs.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// What a commit does, written before any of it is done (the commit point) and applied again after a crash: every step
    /// can be repeated (a move whose source is gone was made; a delete of a missing file is done).
    /// </summary>
    private sealed class Manifest
    {
        public List<string[]> Moves { get; set; } = new(); // [staging path, table-relative path]
        public List<string> Deletes { get; set; } = new(); // table-relative paths
        public List<RecordFile> Records { get; set; } = new();
        public List<ColumnEntry>? Schema { get; set; }
        /// <summary>The sync run the batch counts in (its run file is updated as a step of the commit).</summary>
        public RunCount? Run { get; set; }
    }

    private sealed class RunCount
    {
        public long RunId { get; set; }
        public string Key { get; set; } = "";
        public long Rows { get; set; }
        public long Bytes { get; set; }
    }

    private void Apply(Manifest manifest)
    {
        foreach (var move in manifest.Moves)
        {
            string target = Path.Combine(tableDir, move[1]);
            if (!File.Exists(move[0])) continue; // moved before the crash
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Move(move[0], target, overwrite: true);
            FaultPoint?.Invoke("moved");
        }
        foreach (var delete in manifest.Deletes)
        {
            string path = Path.Combine(tableDir, delete);
            if (File.Exists(path)) File.Delete(path);
        }
        foreach (var record in manifest.Records)
            WriteAtomically(RecordPath(record.Key), JsonSerializer.SerializeToUtf8Bytes(record, Json));
        if (manifest.Schema is not null)
            WriteAtomically(SchemaPath, JsonSerializer.SerializeToUtf8Bytes(new SchemaFile { Columns = manifest.Schema }, Json));
        if (manifest.Run is not null)
        {
            CountInRunFile(manifest.Run);
            FaultPoint?.Invoke("counted");
        }
    }

    /// <summary>
    /// Adds a committed batch to its run's file. Repeatable like every step of a commit: the file lists the batches counted
    /// since it was last written by the run itself (<see cref="EndRun"/> writes the totals, which include them).
    /// </summary>
    private void CountInRunFile(RunCount count)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(RunPath(count.RunId)); }
        catch (FileNotFoundException) { return; }
        if (bytes.Length == 0 || System.Text.Json.Nodes.JsonNode.Parse(bytes) is not System.Text.Json.Nodes.JsonObject run) return;
        var counted = run[CountedBatchesProperty] as System.Text.Json.Nodes.JsonArray ?? new System.Text.Json.Nodes.JsonArray();
        if (counted.Any(k => k?.GetValue<string>() == count.Key)) return; // counted before a crash
        counted.Add(count.Key);
        run[CountedBatchesProperty] = counted;
        run[nameof(SyncRunRecord.Batches)] = (run[nameof(SyncRunRecord.Batches)]?.GetValue<int>() ?? 0) + 1;
        run[nameof(SyncRunRecord.Rows)] = (run[nameof(SyncRunRecord.Rows)]?.GetValue<long>() ?? 0) + count.Rows;
        run[nameof(SyncRunRecord.Bytes)] = (run[nameof(SyncRunRecord.Bytes)]?.GetValue<long>() ?? 0) + count.Bytes;
        WriteAtomically(RunPath(count.RunId), Encoding.UTF8.GetBytes(run.ToJsonString()));
    }

    private const string CountedBatchesProperty = "_CountedBatches";

    /// <summary>Under the table's load lock: completes commits a crash interrupted, and deletes what uncommitted loads left.</summary>
    private void Recover()
    {
        if (!Directory.Exists(stateDir)) return;
        foreach (var path in Directory.EnumerateFiles(stateDir, "manifest-*.json").Order(StringComparer.Ordinal))
        {
            var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllBytes(path), Json)!;
            Log($"Completing a commit into {Table} that was interrupted ({Path.GetFileName(path)}).");
            Apply(manifest);
            File.Delete(path);
        }
        string staging = Path.Combine(stateDir, "staging");
        if (Directory.Exists(staging))
        {
            foreach (var dir in Directory.EnumerateDirectories(staging))
            {
                Log($"Deleting the files of a load into {Table} that did not commit ({Path.GetFileName(dir)}).");
                Directory.Delete(dir, recursive: true);
            }
        }
        // Half-written state files (WriteAtomically's temporaries) are only ever beside the schema and manifests, or the records.
        foreach (var dir in new[] { stateDir, batchesDir }.Where(Directory.Exists))
            foreach (var temp in Directory.EnumerateFiles(dir, "*.tmp")) File.Delete(temp);
    }

    protected override BatchTransaction BeginBatch(CancellationToken cancellationToken)
    {
        var lockFile = FileLock.TryAcquire(LoadLockPath, TimeSpan.FromSeconds(LockWaitSeconds), cancellationToken)
            ?? throw new TimeoutException($"Another load into {LoadLockPath} has held its lock for more than {LockWaitSeconds} s; try again when it has finished.");
        try
        {
            Recover();
            return new Transaction(this, lockFile);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
    }

    private sealed class Transaction : BatchTransaction
    {
        private readonly ParquetEventStore store;
        private FileStream? lockFile;
        private readonly string txId = DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8];
        private readonly string staging;
        private List<ColumnEntry>? schema;
        private bool schemaChanged;
        private readonly Dictionary<(string Key, string Partition), PartitionWriter> writers = new();
        private readonly List<(string Key, string Partition, string StagedPath)> staged = new();
        private readonly Dictionary<string, int> partsPerBatchPartition = new(StringComparer.Ordinal);
        private readonly Manifest manifest = new();
        private readonly HashSet<string> replaced = new(StringComparer.Ordinal);
        private readonly Dictionary<string, RecordFile?> records = new(StringComparer.Ordinal);
        /// <summary>Past the commit point: from here on the manifest, not a rollback, decides, and staging files must stay for it.</summary>
        private bool committed;

        public Transaction(ParquetEventStore store, FileStream lockFile)
        {
            this.store = store;
            this.lockFile = lockFile;
            staging = Path.Combine(store.stateDir, "staging", txId);
            schema = store.ReadSchema();
        }

        private RecordFile? Record(string key)
        {
            if (!records.TryGetValue(key, out var r)) records[key] = r = store.ReadRecord(key);
            return r;
        }

        public override BatchRecord? GetRecord(string batchKey) => Record(batchKey) is { } r ? ToBatchRecord(r) : null;
        public override StateTableShape GetStateTableShape() => StateTableShape.Current;
        public override void CreateStateTable() { }
        public override void AddStateCompleteness() { }

        public override IReadOnlyList<ExistingColumn>? GetEventColumns() =>
            schema?.Select(c => new ExistingColumn(c.Name, Physical(c.Kind), Physical(c.Kind))).ToList();

        public override void CreateEventsTable(IReadOnlyList<ColumnDef> columns)
        {
            schema = columns.Select(c => new ColumnEntry(c.Name, c.Kind)).ToList();
            schemaChanged = true;
        }

        public override void AddColumn(ColumnDef column)
        {
            (schema ??= new()).Add(new ColumnEntry(column.Name, column.Kind));
            schemaChanged = true;
        }

        public override long DeleteRows(string batchKey)
        {
            replaced.Add(batchKey);
            return Record(batchKey)?.Rows ?? 0;
        }

        public override void ReadIndexes(string batchKey, IndexSet into)
        {
            var record = Record(batchKey);
            if (record is null) return;
            foreach (var file in record.Files)
            {
                string path = Path.Combine(store.tableDir, file);
                var reader = ParquetReader.CreateAsync(path).GetAwaiter().GetResult();
                try
                {
                    var field = reader.Schema.DataFields.FirstOrDefault(f => f.Name == EventTableModel.SourceIndexColumn);
                    if (field is null) continue;
                    for (int g = 0; g < reader.RowGroupCount; g++)
                    {
                        using var group = reader.OpenRowGroupReader(g);
                        var values = new long?[group.RowCount];
                        group.ReadAsync<long>(field, values.AsMemory(), null, default).AsTask().GetAwaiter().GetResult();
                        foreach (var v in values) if (v is long i) into.Add(i);
                    }
                }
                finally
                {
                    reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
                }
            }
        }

        public override void WriteRows(RowStream rows, CancellationToken cancellationToken)
        {
            var columns = rows.Columns;
            int batchOrdinal = -1, startOrdinal = -1;
            for (int i = 0; i < columns.Count; i++)
            {
                if (columns[i].Role == ColumnRole.Batch) batchOrdinal = i;
                else if (columns[i].Name == "EventStart") startOrdinal = i;
            }
            long n = 0;
            // Rows come in runs of one source and one day: the partition's name and writer are looked up when that changes.
            PartitionWriter? writer = null;
            string? writerKey = null;
            DateTime? writerDay = null;
            while (rows.Read())
            {
                if ((++n & 1023) == 0) cancellationToken.ThrowIfCancellationRequested();
                var values = rows.Current;
                string key = (string)values[batchOrdinal]!;
                DateTime? day = values[startOrdinal] is DateTime start ? start.Date : null;
                if (writer is null || key != writerKey || day != writerDay)
                {
                    string partition = day is { } d
                        ? "event_date=" + d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
                        : "event_date=__HIVE_DEFAULT_PARTITION__"; // Hive's name for a NULL partition value
                    if (!writers.TryGetValue((key, partition), out writer) || writer.Columns.Count != columns.Count)
                    {
                        // A new column set (a custom var column was added): the file so far keeps its schema, a new one starts.
                        writer?.Close();
                        writers[(key, partition)] = writer = NewWriter(key, partition, columns);
                    }
                    (writerKey, writerDay) = (key, day);
                }
                writer.Add(values);
            }
        }

        private PartitionWriter NewWriter(string key, string partition, IReadOnlyList<ColumnDef> columns)
        {
            Directory.CreateDirectory(staging);
            string name = KeyHash(key) + "-" + staged.Count.ToString(CultureInfo.InvariantCulture) + ".parquet";
            string path = Path.Combine(staging, name);
            staged.Add((key, partition, path));
            return new PartitionWriter(path, columns.ToArray());
        }

        public override void Record(BatchRecord record, long bytes, DateTimeOffset loadedAt, bool exists)
        {
            var previous = exists ? Record(record.Key) : null;
            var files = replaced.Contains(record.Key) || previous is null ? new List<string>() : new List<string>(previous.Files);
            if (replaced.Contains(record.Key) && previous is not null) manifest.Deletes.AddRange(previous.Files);
            // Complete sources get names from the batch key alone, so loading the batch again overwrites them; partial
            // loads add files named after this load as well.
            string stem = FileStem(record.Key) + (record.IsComplete && previous is null || replaced.Contains(record.Key) ? "" : "-" + txId);
            foreach (var (key, partition, path) in staged.Where(s => s.Key == record.Key))
            {
                string slot = stem + "|" + partition;
                partsPerBatchPartition.TryGetValue(slot, out int part);
                partsPerBatchPartition[slot] = part + 1;
                string relative = Path.Combine(partition, $"{stem}-{part:D3}.parquet");
                manifest.Moves.Add([path, relative]);
                manifest.Deletes.Remove(relative); // the replaced file of the same name is overwritten, not deleted after
                files.Add(relative);
            }
            manifest.Records.Add(new RecordFile
            {
                Key = record.Key, Complete = record.IsComplete, Rows = record.Rows, Bytes = bytes, SourceEvents = record.SourceEvents,
                RangeStart = record.RangeStart, RangeEnd = record.RangeEnd, LoadedAt = loadedAt, Files = files,
            });
        }

        public override void CountInRun(long runId, string batchKey, long rows, long bytes) =>
            manifest.Run = new RunCount { RunId = runId, Key = batchKey, Rows = rows, Bytes = bytes };

        /// <summary>"bundle-156314880048-&lt;hash&gt;": readable, and unique per batch key.</summary>
        private static string FileStem(string key)
        {
            var readable = new StringBuilder();
            foreach (char c in key)
            {
                if (readable.Length >= 40) break;
                readable.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
            }
            return readable.ToString().Trim('-') + "-" + KeyHash(key)[..16];
        }

        public override void Commit()
        {
            foreach (var w in writers.Values) w.Close();
            writers.Clear();
            if (schemaChanged) manifest.Schema = schema;
            store.FaultPoint?.Invoke("staged");
            string manifestPath = Path.Combine(store.stateDir, "manifest-" + txId + ".json");
            WriteAtomically(manifestPath, JsonSerializer.SerializeToUtf8Bytes(manifest, Json)); // the commit point
            committed = true;
            store.FaultPoint?.Invoke("committed");
            store.Apply(manifest);
            File.Delete(manifestPath);
            DeleteStaging();
            Release();
        }

        public override void Rollback()
        {
            foreach (var w in writers.Values) { try { w.Close(); } catch (Exception) { } }
            writers.Clear();
            // After the commit point the batch is committed even if applying it failed: the next load completes it from
            // the manifest and needs the staged files for that.
            if (!committed)
            {
                try { DeleteStaging(); } catch (Exception) { /* the next load deletes it */ }
            }
            Release();
        }

        private void DeleteStaging()
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }

        private void Release()
        {
            lockFile?.Dispose();
            lockFile = null;
        }

        public override void Dispose() => Rollback();
    }

    /// <summary>One Parquet file being written: column buffers for one row group, flushed every <see cref="RowGroupRows"/> rows.</summary>
    private sealed class PartitionWriter
    {
        private readonly FileStream stream;
        private readonly ParquetWriter writer;
        private readonly ParquetSchema schema;
        private readonly ColumnBuffer[] buffers;
        private int count;
        private bool closed;

        public PartitionWriter(string path, ColumnDef[] columns)
        {
            Columns = columns;
            schema = new ParquetSchema(columns.Select(FieldFor).ToArray());
            stream = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            writer = ParquetWriter.CreateAsync(schema, stream, new ParquetOptions { CompressionMethod = CompressionMethod.Snappy }).GetAwaiter().GetResult();
            buffers = columns.Select(c => ColumnBuffer.For(c.Kind)).ToArray();
        }

        public IReadOnlyList<ColumnDef> Columns { get; }

        private long chars;

        public void Add(object?[] values)
        {
            for (int i = 0; i < buffers.Length; i++)
            {
                var v = values[i];
                if (v is string s) chars += s.Length;
                buffers[i].Add(v);
            }
            if (++count == RowGroupRows || chars >= RowGroupChars) Flush();
        }

        private void Flush()
        {
            if (count == 0) return;
            using (var group = writer.CreateRowGroup())
                for (int i = 0; i < buffers.Length; i++) buffers[i].WriteTo(group, schema.DataFields[i]);
            count = 0;
            chars = 0;
        }

        public void Close()
        {
            if (closed) return;
            closed = true;
            try
            {
                Flush();
                writer.DisposeAsync().AsTask().GetAwaiter().GetResult(); // writes the footer
                stream.Flush(flushToDisk: true); // on disk before the commit can name it
            }
            finally
            {
                stream.Dispose();
            }
        }
    }

    /// <summary>One column's values for the row group being filled, typed as Parquet wants them.</summary>
    private abstract class ColumnBuffer
    {
        public abstract void Add(object? value);
        public abstract void WriteTo(ParquetRowGroupWriter group, DataField field);

        public static ColumnBuffer For(ColumnKind kind) => kind switch
        {
            ColumnKind.Int64 or ColumnKind.Int32 => new Values<long>(v => Convert.ToInt64(v, CultureInfo.InvariantCulture)),
            ColumnKind.Double => new Values<double>(v => Convert.ToDouble(v, CultureInfo.InvariantCulture)),
            ColumnKind.Boolean => new Values<bool>(v => (bool)v),
            ColumnKind.Timestamp => new Values<DateTime>(v => (DateTime)v),
            _ => new Texts(),
        };

        private sealed class Values<T>(Func<object, T> convert) : ColumnBuffer where T : struct
        {
            private readonly List<T?> values = new();
            public override void Add(object? value) => values.Add(value is null ? null : convert(value));

            public override void WriteTo(ParquetRowGroupWriter group, DataField field)
            {
                group.WriteAsync<T>(field, values.ToArray().AsMemory(), null, null, default).GetAwaiter().GetResult();
                values.Clear();
            }
        }

        private sealed class Texts : ColumnBuffer
        {
            private readonly List<string?> values = new();
            public override void Add(object? value) => values.Add((string?)value);

            public override void WriteTo(ParquetRowGroupWriter group, DataField field)
            {
                group.WriteAsync(field, values.ToArray(), null).GetAwaiter().GetResult();
                values.Clear();
            }
        }
    }

    // ---- Run history: one JSON file per run, written atomically ----

    private string RunPath(long id) => Path.Combine(runsDir, $"run-{id:D12}.json");

    public override long BeginRun(SyncRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        Directory.CreateDirectory(runsDir);
        long next = RunIds().DefaultIfEmpty(0).Max() + 1;
        while (true)
        {
            // CreateNew is the claim: two runs starting at once cannot get the same id.
            try
            {
                using (new FileStream(RunPath(next), FileMode.CreateNew, FileAccess.Write, FileShare.None)) { }
                break;
            }
            catch (IOException) when (File.Exists(RunPath(next))) { next++; }
        }
        run.RunId = next;
        WriteAtomically(RunPath(next), JsonSerializer.SerializeToUtf8Bytes(run, Json));
        return next;
    }

    public override void EndRun(SyncRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        WriteAtomically(RunPath(run.RunId), JsonSerializer.SerializeToUtf8Bytes(run, Json));
    }

    private IEnumerable<long> RunIds() => !Directory.Exists(runsDir) ? [] :
        Directory.EnumerateFiles(runsDir, "run-*.json").Select(f => long.TryParse(Path.GetFileNameWithoutExtension(f)[4..], out var id) ? id : 0);

    public override IReadOnlyList<SyncRunRecord> GetRuns(int last = 20)
    {
        var list = new List<SyncRunRecord>();
        foreach (long id in RunIds().OrderDescending())
        {
            if (list.Count >= last) break;
            SyncRunRecord? r;
            try
            {
                var bytes = File.ReadAllBytes(RunPath(id));
                if (bytes.Length == 0) continue; // claimed, not written yet
                r = JsonSerializer.Deserialize<SyncRunRecord>(bytes, Json);
            }
            catch (FileNotFoundException) { continue; }
            if (r is not null) list.Add(r);
        }
        return list;
    }

    public override void Dispose() { }
}
