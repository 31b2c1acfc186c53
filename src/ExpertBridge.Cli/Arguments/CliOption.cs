using System.Globalization;
using System.Numerics;
using ExpertBridge.Core;

namespace ExpertBridge.Cli.Arguments;

/// <summary>
/// One command-line option: <c>--name VALUE</c> (or <c>--name=VALUE</c>), or a flag without a value.
/// Values are converted and range-checked when parsed, so a verb only ever sees typed, valid values.
/// </summary>
internal abstract class CliOption
{
    protected CliOption(string name, string? valueName, string help)
    {
        Name = name;
        ValueName = valueName;
        Help = help;
    }

    /// <summary>The option as typed, with its dashes: <c>--devices</c>.</summary>
    public string Name { get; }

    /// <summary>The value's placeholder in help (<c>P</c>, <c>F</c>), or null for a flag.</summary>
    public string? ValueName { get; }

    public string Help { get; }

    /// <summary>Must be given.</summary>
    public bool Required { get; init; }

    /// <summary>May be given more than once (values are kept in order).</summary>
    public bool Repeatable { get; init; }

    /// <summary>The default shown in help, or null.</summary>
    public string? DefaultText { get; init; }

    /// <summary>
    /// Also takes bare arguments: <c>policy check a.csx b.csx</c> as well as <c>--script a.csx</c>. At most one option
    /// of a verb is positional.
    /// </summary>
    public bool Positional { get; init; }

    public bool IsFlag => ValueName is null;

    /// <summary>Whether the value is a file the verb reads or writes; the parser keeps outputs off inputs.</summary>
    public FileRole Role { get; init; }

    /// <summary>Converts and checks <paramref name="raw"/>; throws <see cref="InputException"/> naming this option.</summary>
    internal abstract object Convert(string raw);
}

/// <summary>An option whose value is a <typeparamref name="T"/>.</summary>
internal sealed class CliOption<T> : CliOption
    where T : notnull
{
    private readonly Func<string, string, T> _convert;

    public CliOption(string name, string? valueName, string help, Func<string, string, T> convert)
        : base(name, valueName, help)
    {
        _convert = convert;
    }

    internal override object Convert(string raw) => _convert(Name, raw);

    /// <summary>The same option, required (for verbs that cannot run without it).</summary>
    public CliOption<T> AsRequired() => Copy(required: true, Repeatable, DefaultText, Positional);

    /// <summary>The same option, allowed more than once.</summary>
    public CliOption<T> AsRepeatable() => Copy(Required, repeatable: true, DefaultText, Positional);

    /// <summary>The same option with a default shown in help.</summary>
    public CliOption<T> WithDefault(string text) => Copy(Required, Repeatable, text, Positional);

    /// <summary>The same option, also taking bare arguments.</summary>
    public CliOption<T> AsPositional() => Copy(Required, Repeatable, DefaultText, positional: true);

    private CliOption<T> Copy(bool required, bool repeatable, string? defaultText, bool positional) =>
        new(Name, ValueName, Help, _convert) { Required = required, Repeatable = repeatable, DefaultText = defaultText, Positional = positional, Role = Role };
}

/// <summary>Whether an option names a file the verb reads or writes.</summary>
internal enum FileRole
{
    None,
    Input,
    Output,
}

/// <summary>Factories for the option kinds the verbs use; every conversion error names the option and the rule.</summary>
internal static class Option
{
    public static CliOption<int> Int(string name, string valueName, string help, int min = int.MinValue, int max = int.MaxValue) =>
        new(name, valueName, help, (option, raw) =>
        {
            if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            {
                throw new InputException(option, "a whole number", $"'{raw}' is not a whole number");
            }

            return CheckRange(option, v, min, max);
        });

    public static CliOption<long> Long(string name, string valueName, string help, long min = long.MinValue, long max = long.MaxValue) =>
        new(name, valueName, help, (option, raw) =>
        {
            if (!long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            {
                throw new InputException(option, "a whole number", $"'{raw}' is not a whole number");
            }

            return CheckRange(option, v, min, max);
        });

    public static CliOption<double> Double(string name, string valueName, string help, double min = double.MinValue, double max = double.MaxValue) =>
        new(name, valueName, help, (option, raw) =>
        {
            if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            {
                throw new InputException(option, "a finite number", $"'{raw}' is not a finite number");
            }

            return CheckRange(option, v, min, max);
        });

    public static CliOption<string> Text(string name, string valueName, string help) =>
        new(name, valueName, help, (option, raw) => raw.Length > 0 ? raw : throw new InputException(option, "a non-empty value", "the value is empty"));

    /// <summary>A file that must exist when parsed.</summary>
    public static CliOption<string> InputFile(string name, string help) =>
        new(name, "F", help, (option, raw) =>
        {
            if (raw.Length == 0)
            {
                throw new InputException(option, "a file path", "the path is empty");
            }

            return File.Exists(raw) ? raw : throw new InputException(option, "input files exist", Directory.Exists(raw) ? $"'{raw}' is a directory, not a file" : $"no such file '{raw}'");
        })
        { Role = FileRole.Input };

    /// <summary>
    /// A file to write; its directory must exist and take new files (probed when parsed), and the parser keeps it off the
    /// command's inputs and other outputs. <c>-</c> means standard output when <paramref name="allowStdout"/>.
    /// </summary>
    public static CliOption<string> OutputFile(string name, string help, bool allowStdout = false) =>
        new(name, "F", help, (option, raw) =>
        {
            if (allowStdout && raw == "-")
            {
                return raw;
            }

            if (raw.Length == 0 || Directory.Exists(raw))
            {
                throw new InputException(option, "a file path to write", raw.Length == 0 ? "the path is empty" : $"'{raw}' is a directory");
            }

            var dir = Path.GetDirectoryName(Path.GetFullPath(raw));
            if (dir is not null && !Directory.Exists(dir))
            {
                throw new InputException(option, "the output's directory exists", $"no directory '{dir}' for '{raw}'");
            }

            ProbeWritable(option, dir ?? ".", "the output's directory is writable");
            return raw;
        })
        { Role = FileRole.Output };

    /// <summary>
    /// Creates and deletes a file in <paramref name="dir"/>, so that an output the verb could not write fails when the
    /// arguments are read, not after a long run.
    /// </summary>
    internal static void ProbeWritable(string option, string dir, string rule)
    {
        var probe = Path.Combine(dir, $".expertbridge-write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (UnauthorizedAccessException)
        {
            throw new InputException(option, rule, $"cannot create files in '{dir}': permission denied");
        }
        catch (IOException ex)
        {
            var why = ex is FileNotFoundException or DirectoryNotFoundException ? "it takes no new files" : ex.Message;
            throw new InputException(option, rule, $"cannot create files in '{dir}': {why}");
        }
    }

    /// <summary>One of a fixed set of words (case-insensitive), mapped to values.</summary>
    public static CliOption<T> Choice<T>(string name, string help, IReadOnlyDictionary<string, T> choices)
        where T : notnull
    {
        var words = string.Join('|', choices.Keys);
        return new(name, words, help, (option, raw) =>
        {
            foreach (var (word, value) in choices)
            {
                if (string.Equals(word, raw, StringComparison.OrdinalIgnoreCase))
                {
                    return value;
                }
            }

            throw new InputException(option, $"one of {words}", $"'{raw}' is not a choice");
        });
    }

    /// <summary><c>KEY=VALUE</c>.</summary>
    public static CliOption<KeyValuePair<string, string>> KeyValue(string name, string help) =>
        new(name, "KEY=VALUE", help, (option, raw) =>
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new InputException(option, "KEY=VALUE", $"'{raw}' has no key");
            }

            return new KeyValuePair<string, string>(raw[..eq].Trim(), raw[(eq + 1)..].Trim());
        });

    /// <summary>A flag: present or not.</summary>
    public static CliOption<bool> Flag(string name, string help) => new(name, null, help, (_, _) => true);

    private static TValue CheckRange<TValue>(string option, TValue v, TValue min, TValue max)
        where TValue : IComparable<TValue>, IMinMaxValue<TValue>
    {
        if (v.CompareTo(min) < 0 || v.CompareTo(max) > 0)
        {
            var rule = max.CompareTo(TValue.MaxValue) == 0 ? $"{option} >= {Format(min)}"
                : min.CompareTo(TValue.MinValue) == 0 ? $"{option} <= {Format(max)}"
                : $"{Format(min)} <= {option} <= {Format(max)}";
            throw new InputException(option, rule, $"got {Format(v)}");
        }

        return v;
    }

    private static string Format<TValue>(TValue v) => string.Format(CultureInfo.InvariantCulture, "{0}", v);
}
