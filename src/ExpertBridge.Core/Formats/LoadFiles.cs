using Newtonsoft.Json;

namespace ExpertBridge.Core.Formats;

/// <summary>Containers for load files.</summary>
public enum LoadFileFormat
{
    /// <summary>NumPy .npy: int32, int64, float32 or float64, shape [layers, experts] or [steps, layers, experts].</summary>
    Npy,

    /// <summary>JSON <c>{"load": ...}</c>, or SGLang's expert-distribution dump <c>{"logical_count": ...}</c>, same shapes.</summary>
    Json,
}

/// <summary>
/// Reads and writes expert loads: a summed [layers, experts] matrix (read as a one-step trace) or a per-step
/// [steps, layers, experts] trace, in NumPy .npy or JSON. JSON is <c>{"load": [...]}</c>, or SGLang's
/// <c>{"logical_count": [...]}</c> (its <c>/dump_expert_distribution_record</c> and <c>--init-expert-location</c> shape);
/// other keys are ignored. Counts must be finite and non-negative; a bad one is reported with its step, layer and expert.
/// </summary>
public static class LoadFiles
{
    public const string RuleShape = "load shape is [layers, experts] or [steps, layers, experts]";
    public const string RuleKeys = "a JSON load file is an object with \"load\" or \"logical_count\"";
    public const string RuleFormat = "a load file is .npy or JSON";

    private static readonly string[] s_keys = ["load", "logical_count"];

    /// <summary>Reads the load file at <paramref name="path"/> (.npy or JSON, told apart by content, then extension).</summary>
    public static LoadTrace Read(string path)
    {
        using var stream = FileIo.OpenRead(path);
        var extension = FileIo.Extension(path);
        LoadFileFormat? hint = extension == ".npy" ? LoadFileFormat.Npy : extension == ".json" ? LoadFileFormat.Json : null;
        return Read(stream, path, hint);
    }

    /// <summary>
    /// Reads a load file from <paramref name="stream"/>; <paramref name="subject"/> names it in errors. The format is
    /// <paramref name="format"/> when given, else detected: the .npy magic string, or JSON.
    /// </summary>
    public static LoadTrace Read(Stream stream, string subject, LoadFileFormat? format = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(subject);
        format ??= Sniff(ref stream, subject);
        return format == LoadFileFormat.Npy ? ReadNpy(stream, subject) : ReadJson(stream, subject);
    }

    /// <summary>Writes <paramref name="trace"/> to <paramref name="path"/>; the extension (.npy or .json) picks the format.</summary>
    public static void Write(string path, LoadTrace trace)
    {
        ArgumentNullException.ThrowIfNull(path);
        var format = FileIo.Extension(path) switch
        {
            ".npy" => LoadFileFormat.Npy,
            ".json" => LoadFileFormat.Json,
            _ => throw new InputException(path, RuleFormat, "the output name must end in .npy or .json"),
        };
        FileIo.WriteAtomically(path, stream => Write(stream, trace, format));
    }

    /// <summary>
    /// Writes <paramref name="trace"/>: a one-step trace as a [layers, experts] matrix, longer ones as
    /// [steps, layers, experts]. .npy holds float32 (the trace's own type); JSON holds <c>{"load": ...}</c> with one
    /// innermost row per line and integral counts written without a fraction.
    /// </summary>
    public static void Write(Stream stream, LoadTrace trace, LoadFileFormat format)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(trace);
        int[] shape = trace.Steps == 1 ? [trace.Layers, trace.Experts] : [trace.Steps, trace.Layers, trace.Experts];
        if (format == LoadFileFormat.Npy)
        {
            Npy.Write(stream, new NpyArray(trace.Values.ToArray(), shape));
            return;
        }

        // Plain text out (numbers only, nothing to escape); one innermost row per line keeps big traces diff-able.
        using var text = new StreamWriter(stream, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
        text.Write(shape.Length == 3 ? "{\"load\":[[" : "{\"load\":[");
        var values = trace.Values;
        var rows = values.Length / trace.Experts;
        for (var row = 0; row < rows; row++)
        {
            if (row > 0)
            {
                text.Write(row % trace.Layers == 0 ? "],\n[" : ",");
            }

            text.Write("\n[");
            var items = values.Slice(row * trace.Experts, trace.Experts);
            for (var e = 0; e < items.Length; e++)
            {
                if (e > 0)
                {
                    text.Write(',');
                }

                text.Write(JsonNumbers.FormatNumber(items[e]));
            }

            text.Write(']');
        }

        text.Write(shape.Length == 3 ? "]]}\n" : "]}\n");
    }

    private static LoadFileFormat Sniff(ref Stream stream, string subject)
    {
        if (!stream.CanSeek)
        {
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }

        var start = stream.Position;
        Span<byte> prefix = stackalloc byte[6];
        var got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        stream.Position = start;
        if (Npy.HasMagic(prefix[..got]))
        {
            return LoadFileFormat.Npy;
        }

        foreach (var b in prefix[..got])
        {
            if (b is (byte)'{' or 0xEF)
            {
                return LoadFileFormat.Json; // JSON object, possibly after a UTF-8 byte-order mark
            }

            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                break;
            }
        }

        throw new InputException(subject, RuleFormat, got == 0 ? "the file is empty" : "neither a .npy file (magic \\x93NUMPY) nor a JSON object");
    }

    private static LoadTrace ReadNpy(Stream stream, string subject)
    {
        var array = Npy.Read(stream, subject);
        if (array.Shape.Count is not (2 or 3))
        {
            throw new InputException(subject, RuleShape, $"the array has shape {array.ShapeText}");
        }

        var values = new float[array.Length];
        switch (array.Data)
        {
            case float[] f:
                f.CopyTo(values, 0);
                break;
            default:
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = (float)array.GetDouble(i);
                }

                break;
        }

        return Build(array.Shape.ToArray(), values, subject);
    }

    private static LoadTrace ReadJson(Stream stream, string subject) => JsonNumbers.Parse(stream, subject, reader =>
    {
        JsonNumbers.Next(reader, subject);
        if (reader.TokenType != JsonToken.StartObject)
        {
            throw new InputException(subject, RuleKeys, $"the top level is {JsonNumbers.Describe(reader)} (at {JsonNumbers.Where(reader)})");
        }

        int[]? shape = null;
        float[]? values = null;
        string? found = null;
        while (true)
        {
            JsonNumbers.Next(reader, subject);
            if (reader.TokenType == JsonToken.EndObject)
            {
                break;
            }

            var key = (string)reader.Value!;
            JsonNumbers.Next(reader, subject);
            if (Array.IndexOf(s_keys, key) < 0)
            {
                reader.Skip();
                continue;
            }

            if (found is not null)
            {
                throw new InputException(subject, RuleKeys, $"both \"{found}\" and \"{key}\" are present; keep one");
            }

            found = key;
            var buffer = new FloatBuffer();
            shape = JsonNumbers.ReadArray(reader, subject, key, 3, buffer);
            values = buffer.ToArray();
        }

        JsonNumbers.ExpectEnd(reader, subject);
        if (shape is null || values is null)
        {
            throw new InputException(subject, RuleKeys, "the object has neither \"load\" nor \"logical_count\"");
        }

        if (shape.Length != 2 && shape.Length != 3)
        {
            throw new InputException(subject, RuleShape, $"\"{found}\" has shape {NpyArray.FormatShape(shape)}");
        }

        return Build(shape, values, subject);
    });

    private static LoadTrace Build(int[] shape, float[] values, string subject)
    {
        var (steps, layers, experts) = shape.Length == 2 ? (1, shape[0], shape[1]) : (shape[0], shape[1], shape[2]);
        if (steps < 1 || layers < 1 || experts < 1)
        {
            throw new InputException(subject, RuleShape, $"shape {NpyArray.FormatShape(shape)} has an empty axis");
        }

        return new LoadTrace(steps, layers, experts, values, subject);
    }
}
