using System.Collections;
using System.Data.Common;
using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>
/// A forward-only DbDataReader over events, for SqlBulkCopy: one row per event, pulled from the enumeration as the
/// server asks for it, so nothing is buffered (never a DataTable of the whole input). It ends where its
/// <see cref="RowStream"/> segment ends (a new custom var column is needed, or the events are exhausted).
/// </summary>
public sealed class EventDataReader : DbDataReader
{
    private readonly RowStream rows;
    private readonly IReadOnlyList<ColumnDef> columns;
    private bool closed;

    public EventDataReader(RowStream rows)
    {
        this.rows = rows;
        columns = rows.Columns.ToArray(); // fixed for the life of this reader (one segment)
    }

    /// <summary>A reader over a whole enumeration with the standard columns only (no custom var columns).</summary>
    public static EventDataReader Create(IEnumerable<FullStoryEvent> events, string batchKey, DateTime loadedAtUtc) =>
        new(new RowStream(new EventTableModel(false), events, batchKey, loadedAtUtc, enforceMaxLength: true));

    public IReadOnlyList<ColumnDef> Columns => columns;

    /// <summary>
    /// When set, an exception from the events ends the reader (Read returns false) instead of escaping, and is kept in
    /// <see cref="SourceFailure"/> for the caller to rethrow after the consumer (SqlBulkCopy) has finished cleanly.
    /// </summary>
    public bool CaptureSourceFailure { get; init; }

    /// <summary>What the events threw, when <see cref="CaptureSourceFailure"/> caught it.</summary>
    public Exception? SourceFailure { get; private set; }

    public override bool Read()
    {
        if (closed) return false;
        if (!CaptureSourceFailure) return rows.Read();
        try
        {
            return rows.Read();
        }
        catch (Exception ex)
        {
            SourceFailure = ex;
            closed = true;
            return false;
        }
    }

    public override int FieldCount => columns.Count;
    public override object this[int ordinal] => GetValue(ordinal);
    public override object this[string name] => GetValue(GetOrdinal(name));
    public override int Depth => 0;
    public override bool HasRows => true;
    public override bool IsClosed => closed;
    public override int RecordsAffected => -1;
    public override bool NextResult() => false;
    public override void Close() => closed = true;

    public override string GetName(int ordinal) => columns[ordinal].Name;

    public override int GetOrdinal(string name)
    {
        for (int i = 0; i < columns.Count; i++)
            if (string.Equals(columns[i].Name, name, StringComparison.Ordinal)) return i;
        for (int i = 0; i < columns.Count; i++)
            if (string.Equals(columns[i].Name, name, StringComparison.OrdinalIgnoreCase)) return i;
        throw new IndexOutOfRangeException($"No column named '{name}'.");
    }

    public override Type GetFieldType(int ordinal) => columns[ordinal].Kind switch
    {
        ColumnKind.Int64 => typeof(long),
        ColumnKind.Int32 => typeof(int),
        ColumnKind.Double => typeof(double),
        ColumnKind.Boolean => typeof(bool),
        ColumnKind.Timestamp => typeof(DateTime),
        _ => typeof(string),
    };

    public override string GetDataTypeName(int ordinal) => GetFieldType(ordinal).Name;

    public override object GetValue(int ordinal) => rows.Current[ordinal] ?? DBNull.Value;

    public override int GetValues(object[] values)
    {
        int n = Math.Min(values.Length, columns.Count);
        for (int i = 0; i < n; i++) values[i] = GetValue(i);
        return n;
    }

    public override bool IsDBNull(int ordinal) => rows.Current[ordinal] is null;

    public override bool GetBoolean(int ordinal) => (bool)rows.Current[ordinal]!;
    public override long GetInt64(int ordinal) => Convert.ToInt64(rows.Current[ordinal]);
    public override int GetInt32(int ordinal) => Convert.ToInt32(rows.Current[ordinal]);
    public override short GetInt16(int ordinal) => Convert.ToInt16(rows.Current[ordinal]);
    public override double GetDouble(int ordinal) => Convert.ToDouble(rows.Current[ordinal]);
    public override float GetFloat(int ordinal) => Convert.ToSingle(rows.Current[ordinal]);
    public override decimal GetDecimal(int ordinal) => Convert.ToDecimal(rows.Current[ordinal]);
    public override DateTime GetDateTime(int ordinal) => (DateTime)rows.Current[ordinal]!;
    public override string GetString(int ordinal) => (string)rows.Current[ordinal]!;
    public override char GetChar(int ordinal) => GetString(ordinal)[0];
    public override byte GetByte(int ordinal) => Convert.ToByte(rows.Current[ordinal]);
    public override Guid GetGuid(int ordinal) => throw new InvalidCastException("Event columns hold no GUIDs.");

    public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length) =>
        throw new InvalidCastException("Event columns hold no binary data.");

    public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length)
    {
        var s = GetString(ordinal);
        if (buffer is null) return s.Length;
        int n = (int)Math.Max(0, Math.Min(length, s.Length - dataOffset));
        s.CopyTo((int)dataOffset, buffer, bufferOffset, n);
        return n;
    }

    public override System.Data.DataTable GetSchemaTable()
    {
        var schema = new System.Data.DataTable("SchemaTable");
        schema.Columns.Add("ColumnName", typeof(string));
        schema.Columns.Add("ColumnOrdinal", typeof(int));
        schema.Columns.Add("ColumnSize", typeof(int));
        schema.Columns.Add("DataType", typeof(Type));
        schema.Columns.Add("AllowDBNull", typeof(bool));
        for (int i = 0; i < columns.Count; i++)
            schema.Rows.Add(columns[i].Name, i, columns[i].MaxLength ?? -1, GetFieldType(i), true);
        return schema;
    }

    public override IEnumerator GetEnumerator() => new DbEnumerator(this, closeReader: false);
}
