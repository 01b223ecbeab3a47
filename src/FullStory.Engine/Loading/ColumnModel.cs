using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FullStory.Engine.Events;

namespace FullStory.Engine.Loading;

/// <summary>The logical type of a column; each dialect renders it (SQL Server bigint, SQLite INTEGER, ...).</summary>
public enum ColumnKind
{
    Int64,
    Int32,
    Double,
    Boolean,
    /// <summary>A UTC instant with milliseconds: SQL Server datetime2(3), SQLite ISO 8601 text.</summary>
    Timestamp,
    Text,
    /// <summary>Raw JSON text.</summary>
    Json,
}

public enum ColumnRole
{
    Standard,
    CustomVars,
    Batch,
    /// <summary>The event's position in its source (<see cref="Events.FullStoryEvent.SourceIndex"/>).</summary>
    SourceIndex,
    LoadedAt,
    CustomVar,
}

/// <summary>One column of the events table, dialect-neutral.</summary>
public sealed class ColumnDef
{
    public ColumnDef(string name, ColumnKind kind, ColumnRole role, int? maxLength = null, EventField? field = null, string? customKey = null)
    {
        Name = name;
        Kind = kind;
        Role = role;
        MaxLength = maxLength;
        Field = field;
        CustomKey = customKey;
    }

    /// <summary>The exact column name (SqlBulkCopy mappings are case-sensitive: always use this).</summary>
    public string Name { get; }
    public ColumnKind Kind { get; }
    public ColumnRole Role { get; }
    /// <summary>Maximum text length where the dialect enforces one (SQL Server nvarchar(n)); null = unlimited.</summary>
    public int? MaxLength { get; }
    public EventField? Field { get; }
    /// <summary>For custom var columns: the custom var key the column holds.</summary>
    public string? CustomKey { get; }

    public override string ToString() => $"{Name} {Kind}";
}

/// <summary>Identifier rules shared by both dialects: validation of user-given names and deterministic shortening.</summary>
public static class Identifiers
{
    /// <summary>SQL Server's sysname limit; applied to SQLite too so a table moves between them unchanged.</summary>
    public const int MaxLength = 128;

    public const string StateTable = "fullstory_sync_state";
    public const string RunsTable = "fullstory_sync_runs";

    /// <summary>Checks a table or schema name from the user; returns it unchanged or throws ArgumentException naming the parameter.</summary>
    public static string ValidateName(string? name, string parameterName, string what = "table")
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException($"The {what} name must not be empty or only whitespace.", parameterName);
        if (name.Length > MaxLength)
            throw new ArgumentException($"The {what} name is {name.Length} characters long; the limit is {MaxLength}.", parameterName);
        if (name.Any(char.IsControl))
            throw new ArgumentException($"The {what} name must not contain control characters (NUL, CR, LF, tab...).", parameterName);
        if (name != name.Trim())
            throw new ArgumentException($"The {what} name must not start or end with whitespace.", parameterName);
        return name;
    }

    /// <summary>True when a name can be used as a column name verbatim (otherwise <see cref="Shorten"/> it).</summary>
    public static bool IsUsableVerbatim(string name) =>
        name.Length > 0 && name.Length <= MaxLength && !name.Any(char.IsControl) && name == name.Trim()
        && !(char.IsLowSurrogate(name[0]) || char.IsHighSurrogate(name[^1])) && IsWellFormedUtf16(name);

    /// <summary>
    /// A deterministic stand-in for a name that cannot be used verbatim: its first characters (control characters
    /// replaced), "~", and 16 hex digits of the SHA-256 of the whole name. The same name always gives the same result.
    /// </summary>
    public static string Shorten(string name, int prefixLength = 100)
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(name)))[..16].ToLowerInvariant();
        var prefix = new StringBuilder();
        foreach (var c in name.Trim())
        {
            if (prefix.Length >= prefixLength) break;
            prefix.Append(char.IsControl(c) || char.IsSurrogate(c) ? '_' : c);
        }
        return prefix + "~" + hash;
    }

    private static bool IsWellFormedUtf16(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])) return false;
                i++;
            }
            else if (char.IsLowSurrogate(s[i])) return false;
        }
        return true;
    }
}

/// <summary>
/// The events table's columns and how event values become column values, shared by every dialect:
/// the standard fields (in <see cref="StandardFields.All"/> order), CustomVars, _fs_batch, _fs_index, _fs_loaded_at,
/// then, with CustomVarColumns, one typed column per custom var key.
/// </summary>
public sealed class EventTableModel
{
    public const string CustomVarsColumn = "CustomVars";
    public const string BatchColumn = "_fs_batch";
    /// <summary>The event's position in its source: with <see cref="BatchColumn"/>, what identifies an event.</summary>
    public const string SourceIndexColumn = "_fs_index";
    public const string LoadedAtColumn = "_fs_loaded_at";
    /// <summary>Length of short text columns (SQL Server nvarchar(n)); longer values go to CustomVars instead.</summary>
    public const int ShortTextLength = 256;
    /// <summary>Longest batch key (fits SQL Server's 900-byte unique index with the table name).</summary>
    public const int MaxBatchKeyLength = 320;

    /// <summary>A batch key (a source) is stored in the _fs_batch column and the state table: not blank, at most <see cref="MaxBatchKeyLength"/>.</summary>
    public static bool IsValidBatchKey(string? key) => !string.IsNullOrWhiteSpace(key) && key.Length <= MaxBatchKeyLength;

    // Standard text fields that are short enumerations; everything else (URLs, text, agents, selectors, names) is unlimited.
    private static readonly HashSet<string> ShortTextFields = new(StringComparer.Ordinal)
    {
        "EventType", "EventSubType", "ReqMethod", "PageIp", "PageLatLong", "PageBrowser", "PageBrowserVersion",
        "PageDevice", "PagePlatform", "PageOperatingSystem",
    };

    private static readonly ColumnDef[] fixedColumns = BuildFixed();
    private static readonly HashSet<string> reservedNames = new(fixedColumns.Select(c => c.Name), StringComparer.OrdinalIgnoreCase);

    private readonly Dictionary<string, string> existing = new(StringComparer.OrdinalIgnoreCase); // name -> exact name in the database
    private readonly HashSet<string> declined = new(StringComparer.OrdinalIgnoreCase);

    public EventTableModel(bool customVarColumns) => CustomVarColumns = customVarColumns;

    public bool CustomVarColumns { get; }

    /// <summary>Every column a table must have, in creation order.</summary>
    public static IReadOnlyList<ColumnDef> FixedColumns => fixedColumns;

    private static ColumnDef[] BuildFixed()
    {
        var list = new List<ColumnDef>();
        foreach (var f in StandardFields.All)
        {
            var kind = f.Type switch
            {
                FieldType.Int64 => ColumnKind.Int64,
                FieldType.Int32 => ColumnKind.Int32,
                FieldType.Double => ColumnKind.Double,
                FieldType.Timestamp => ColumnKind.Timestamp,
                _ => ColumnKind.Text,
            };
            int? max = kind == ColumnKind.Text && ShortTextFields.Contains(f.Name) ? ShortTextLength : null;
            list.Add(new ColumnDef(f.Name, kind, ColumnRole.Standard, max, f));
        }
        list.Add(new ColumnDef(CustomVarsColumn, ColumnKind.Json, ColumnRole.CustomVars));
        list.Add(new ColumnDef(BatchColumn, ColumnKind.Text, ColumnRole.Batch, MaxBatchKeyLength));
        list.Add(new ColumnDef(SourceIndexColumn, ColumnKind.Int64, ColumnRole.SourceIndex));
        list.Add(new ColumnDef(LoadedAtColumn, ColumnKind.Timestamp, ColumnRole.LoadedAt));
        return list.ToArray();
    }

    /// <summary>Replaces the known columns of the table with what the database reports.</summary>
    public void SetExisting(IEnumerable<string> columnNames)
    {
        existing.Clear();
        foreach (var n in columnNames) existing[n] = n;
    }

    public void AddExisting(string name) => existing[name] = name;

    public void Decline(string name) => declined.Add(name);

    public bool IsDeclined(string name) => declined.Contains(name);

    public bool Exists(string name) => existing.ContainsKey(name);

    /// <summary>Fixed columns the existing table lacks (e.g. made by an older version), in order.</summary>
    public IReadOnlyList<ColumnDef> MissingFixedColumns() => fixedColumns.Where(c => !existing.ContainsKey(c.Name)).ToList();

    /// <summary>
    /// The column for a custom var key: the key itself when usable, not a reserved name, and not taken by a different
    /// key that differs only in case; otherwise <see cref="Identifiers.Shorten"/>(key). Deterministic for a given table.
    /// </summary>
    public ColumnDef CustomColumn(string key)
    {
        string name = key;
        if (!Identifiers.IsUsableVerbatim(key) || reservedNames.Contains(key)
            || (existing.TryGetValue(key, out var exact) && !string.Equals(exact, key, StringComparison.Ordinal)))
            name = Identifiers.Shorten(key);
        return new ColumnDef(name, CustomKindOf(key), ColumnRole.CustomVar, customKey: key);
    }

    /// <summary>The column type for a custom var, from its suffix: _str text, _int bigint, _real float, _bool bit, _date timestamp; plurals and others JSON.</summary>
    public static ColumnKind CustomKindOf(string key)
    {
        int us = key.LastIndexOf('_');
        var suffix = us < 0 ? "" : key[(us + 1)..];
        return suffix.ToLowerInvariant() switch
        {
            "str" => ColumnKind.Text,
            "int" => ColumnKind.Int64,
            "real" => ColumnKind.Double,
            "bool" => ColumnKind.Boolean,
            "date" => ColumnKind.Timestamp,
            _ => ColumnKind.Json,
        };
    }

    /// <summary>A custom var's JSON value as a value of the column's kind, or null when it does not fit (it stays in CustomVars).</summary>
    public static object? ConvertCustom(JsonElement value, ColumnKind kind)
    {
        switch (kind)
        {
            case ColumnKind.Text when value.ValueKind == JsonValueKind.String: return value.GetString();
            case ColumnKind.Int64 when value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var l): return l;
            case ColumnKind.Double when value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var d) && double.IsFinite(d): return d;
            case ColumnKind.Boolean when value.ValueKind is JsonValueKind.True or JsonValueKind.False: return value.GetBoolean();
            case ColumnKind.Timestamp when value.ValueKind == JsonValueKind.String && value.TryGetDateTimeOffset(out var t): return t.UtcDateTime;
            case ColumnKind.Json when value.ValueKind != JsonValueKind.Null: return value.GetRawText();
            default: return null;
        }
    }

    /// <summary>A standard field's value as a column value: UtcTimestamp becomes a UTC DateTime, InvariantDouble a double; others pass through.</summary>
    public static object? ConvertStandard(object? value) => value switch
    {
        UtcTimestamp t => t.UtcDateTime,
        InvariantDouble d => d.Value,
        _ => value,
    };

    /// <summary>A timestamp as stored in text form: ISO 8601 UTC with milliseconds, e.g. 2020-08-27T06:20:26.900Z (sorts correctly).</summary>
    public static string FormatTimestamp(DateTime utc) =>
        utc.ToString(UtcTimestamp.IsoFormat, System.Globalization.CultureInfo.InvariantCulture);
}
