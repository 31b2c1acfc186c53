using System.Globalization;
using Newtonsoft.Json;

namespace ExpertBridge.Core.Formats;

/// <summary>
/// Streaming helpers over <see cref="JsonTextReader"/>: a rectangular nested array of numbers read straight into a flat
/// buffer (no JToken tree, so a 58 x 256 x 1000 trace costs its floats and nothing else), and one-line error messages
/// that name the file, line and position.
/// </summary>
internal static class JsonNumbers
{
    public const string RuleJson = "valid JSON";
    public const string RuleRectangular = "nested arrays are rectangular and hold only numbers";

    /// <summary>A reader with the settings every format uses (numbers as double, no date parsing, bounded depth).</summary>
    public static JsonTextReader CreateReader(Stream stream)
    {
        var text = new StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16, leaveOpen: true);
        return new JsonTextReader(text)
        {
            FloatParseHandling = FloatParseHandling.Double,
            DateParseHandling = DateParseHandling.None,
            MaxDepth = 64,
            CloseInput = true,
        };
    }

    /// <summary>Runs <paramref name="parse"/>, turning Newtonsoft's syntax errors into one-line <see cref="InputException"/>s.</summary>
    public static T Parse<T>(Stream stream, string subject, Func<JsonTextReader, T> parse)
    {
        using var reader = CreateReader(stream);
        try
        {
            return parse(reader);
        }
        catch (JsonReaderException ex)
        {
            throw new InputException(subject, RuleJson, $"malformed JSON at line {ex.LineNumber}, position {ex.LinePosition}: {FirstSentence(ex.Message)}");
        }
    }

    /// <summary>"line L, position P" of the reader's current token.</summary>
    public static string Where(JsonReader reader) =>
        reader is IJsonLineInfo info && info.HasLineInfo() ? $"line {info.LineNumber}, position {info.LinePosition}" : "unknown position";

    /// <summary>Advances to the next token; throws when the input ends.</summary>
    public static void Next(JsonReader reader, string subject)
    {
        if (!reader.Read())
        {
            throw new InputException(subject, RuleJson, "malformed JSON: the input ends early");
        }
    }

    /// <summary>Throws unless the input has nothing but whitespace after the top-level value.</summary>
    public static void ExpectEnd(JsonReader reader, string subject)
    {
        if (reader.Read())
        {
            throw new InputException(subject, RuleJson, $"malformed JSON at {Where(reader)}: more content after the top-level value");
        }
    }

    /// <summary>
    /// Reads the nested array at the reader's current token (a StartArray) into <paramref name="values"/>, C order, and
    /// returns its shape. Every number is accepted, NaN and infinities included (the caller decides what is valid);
    /// anything else, ragged rows and nesting deeper than <paramref name="maxRank"/> are errors naming the index path.
    /// </summary>
    public static int[] ReadArray(JsonReader reader, string subject, string name, int maxRank, FloatBuffer values)
    {
        if (reader.TokenType != JsonToken.StartArray)
        {
            throw new InputException(subject, RuleRectangular, $"\"{name}\" is {Describe(reader)}, expected an array (at {Where(reader)})");
        }

        var extents = new int[maxRank];
        Array.Fill(extents, -1);
        var index = new int[maxRank];
        var leafDepth = -1;
        ReadLevel(0);
        if (leafDepth < 0)
        {
            throw new InputException(subject, RuleRectangular, $"\"{name}\" holds no numbers");
        }

        return extents[..(leafDepth + 1)];

        void ReadLevel(int depth)
        {
            var count = 0;
            while (true)
            {
                Next(reader, subject);
                var token = reader.TokenType;
                if (token == JsonToken.EndArray)
                {
                    break;
                }

                index[depth] = count;
                if (token is JsonToken.Integer or JsonToken.Float)
                {
                    if (leafDepth >= 0 && leafDepth != depth)
                    {
                        throw Ragged($"{Path(depth)} is a number where an array was expected");
                    }

                    leafDepth = depth;
                    values.Add(ToFloat(reader.Value));
                }
                else if (token == JsonToken.StartArray)
                {
                    if (depth + 1 >= maxRank)
                    {
                        throw new InputException(subject, RuleRectangular, $"\"{name}\" nests deeper than {maxRank} levels (at {Where(reader)})");
                    }

                    if (leafDepth >= 0 && leafDepth <= depth)
                    {
                        throw Ragged($"{Path(depth)} is an array where a number was expected");
                    }

                    ReadLevel(depth + 1);
                }
                else
                {
                    throw Ragged($"{Path(depth)} is {Describe(reader)}, expected a number");
                }

                count++;
            }

            if (extents[depth] < 0)
            {
                extents[depth] = count;
            }
            else if (extents[depth] != count)
            {
                throw Ragged($"{Path(depth - 1)} has {count} entries, the first array at that level has {extents[depth]}");
            }
        }

        string Path(int depth)
        {
            var path = new System.Text.StringBuilder($"\"{name}\"");
            for (var d = 0; d <= depth; d++)
            {
                path.Append('[').Append(index[d]).Append(']');
            }

            return path.ToString();
        }

        InputException Ragged(string detail) => new(subject, RuleRectangular, $"{detail} (at {Where(reader)})");
    }

    /// <summary>What the current token is, for messages.</summary>
    public static string Describe(JsonReader reader) => reader.TokenType switch
    {
        JsonToken.String => $"the string \"{reader.Value}\"",
        JsonToken.Null => "null",
        JsonToken.Boolean => $"the boolean {reader.Value}",
        JsonToken.StartObject => "an object",
        JsonToken.StartArray => "an array",
        JsonToken.Integer or JsonToken.Float => $"the number {Convert.ToString(reader.Value, CultureInfo.InvariantCulture)}",
        _ => reader.TokenType.ToString(),
    };

    /// <summary>Formats a count: integers without a fraction, others in the shortest round-trip form.</summary>
    public static string FormatNumber(float value) =>
        value == MathF.Floor(value) && MathF.Abs(value) < 1e15f
            ? ((long)value).ToString(CultureInfo.InvariantCulture)
            : value.ToString("R", CultureInfo.InvariantCulture);

    private static float ToFloat(object? value) => value switch
    {
        double d => (float)d,
        long l => l,
        System.Numerics.BigInteger b => (float)b,
        _ => Convert.ToSingle(value, CultureInfo.InvariantCulture),
    };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". Path", StringComparison.Ordinal);
        var first = cut > 0 ? message[..cut] : message;
        return first.ReplaceLineEndings(" ").TrimEnd('.');
    }
}

/// <summary>A growable float array (avoids List&lt;float&gt;'s copy at the end when the size is right).</summary>
internal sealed class FloatBuffer
{
    private float[] _items = new float[1024];

    public int Count { get; private set; }

    public void Add(float value)
    {
        if (Count == _items.Length)
        {
            if (_items.Length >= Array.MaxLength)
            {
                throw new InvalidOperationException("array too large");
            }

            Array.Resize(ref _items, (int)Math.Min((long)_items.Length * 2, Array.MaxLength));
        }

        _items[Count++] = value;
    }

    /// <summary>The values, trimmed to <see cref="Count"/>.</summary>
    public float[] ToArray()
    {
        if (_items.Length != Count)
        {
            Array.Resize(ref _items, Count);
        }

        return _items;
    }
}
