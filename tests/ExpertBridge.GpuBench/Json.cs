using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ExpertBridge.GpuBench;

/// <summary>One result row: ordered name/value pairs (strings, booleans, numbers).</summary>
internal sealed class Row : IEnumerable<KeyValuePair<string, object>>
{
    private readonly List<KeyValuePair<string, object>> _items = [];

    public object this[string key]
    {
        get => _items.First(kv => kv.Key == key).Value;
        set
        {
            var i = _items.FindIndex(kv => kv.Key == key);
            if (i >= 0)
            {
                _items[i] = new(key, value);
            }
            else
            {
                _items.Add(new(key, value));
            }
        }
    }

    public IEnumerator<KeyValuePair<string, object>> GetEnumerator() => _items.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => string.Join(", ", _items.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value}")));
}

/// <summary>A hand-written JSON writer (keeps the trimmed build free of reflection-based serialization).</summary>
internal static class Json
{
    public static string Write(IEnumerable<Row> rows, bool indented = true)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartArray();
            foreach (var row in rows)
            {
                WriteRow(w, row);
            }

            w.WriteEndArray();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static string Write(Row row)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            WriteRow(w, row);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>A row written by <see cref="Write(Row)"/>, read back (numbers as double).</summary>
    public static Row Read(string text)
    {
        using var doc = JsonDocument.Parse(text);
        var row = new Row();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            row[p.Name] = p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString()!,
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => p.Value.GetDouble(),
            };
        }

        return row;
    }

    private static void WriteRow(Utf8JsonWriter w, Row row)
    {
        w.WriteStartObject();
        foreach (var (key, value) in row)
        {
            switch (value)
            {
                case string s: w.WriteString(key, s); break;
                case bool b: w.WriteBoolean(key, b); break;
                case double d: w.WriteNumber(key, Math.Round(d, 4)); break;
                case float f: w.WriteNumber(key, Math.Round(f, 4)); break;
                default: w.WriteNumber(key, Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
            }
        }

        w.WriteEndObject();
    }
}
