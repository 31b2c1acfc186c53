using ExpertBridge.Core;

namespace ExpertBridge.Cli.Arguments;

/// <summary>The typed values of one verb's command line.</summary>
internal sealed class ParsedArguments
{
    // Keyed by option name, so a verb's required copy of a shared option and the shared one read the same value.
    private readonly Dictionary<string, List<object>> _values;

    internal ParsedArguments(Dictionary<string, List<object>> values)
    {
        _values = values;
    }

    public bool Has(CliOption option) => _values.ContainsKey(option.Name);

    /// <summary>The value of a required option (the parser has already rejected a missing one).</summary>
    public T Get<T>(CliOption<T> option)
        where T : notnull =>
        TryGet(option, out var value) ? value : throw new InvalidOperationException($"{option.Name} is not required and has no fallback");

    /// <summary>The value, or <paramref name="fallback"/> when the option was not given.</summary>
    public T Get<T>(CliOption<T> option, T fallback)
        where T : notnull =>
        TryGet(option, out var value) ? value : fallback;

    public bool TryGet<T>(CliOption<T> option, out T value)
        where T : notnull
    {
        if (_values.TryGetValue(option.Name, out var list))
        {
            value = (T)list[^1];
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Every value of a repeatable option, in command-line order.</summary>
    public IReadOnlyList<T> GetAll<T>(CliOption<T> option)
        where T : notnull =>
        _values.TryGetValue(option.Name, out var list) ? list.Cast<T>().ToArray() : [];
}

/// <summary>
/// Parses <c>--name value</c>, <c>--name=value</c>, flags and bare values of the verb's positional option (if any)
/// against a verb's declared options. Unknown options,
/// missing values, repeated single options, stray arguments and missing required options are
/// <see cref="InputException"/>s naming the option.
/// </summary>
internal static class ArgumentParser
{
    public static ParsedArguments Parse(string verb, IReadOnlyList<CliOption> options, IReadOnlyList<string> args)
    {
        var byName = options.ToDictionary(o => o.Name, StringComparer.Ordinal);
        var positional = options.SingleOrDefault(o => o.Positional);
        var values = new Dictionary<string, List<object>>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var token = args[i];
            if (!token.StartsWith("--", StringComparison.Ordinal) || token.Length == 2)
            {
                if (positional is null || token == "--")
                {
                    throw new InputException(token, Listed(verb), "unexpected argument");
                }

                Add(values, positional, token);
                continue;
            }

            var eq = token.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? token[..eq] : token;
            if (!byName.TryGetValue(name, out var option))
            {
                var suggestion = Suggest(name, byName.Keys);
                throw new InputException(name, Listed(verb), "unknown option" + (suggestion is null ? "" : $", did you mean {suggestion}?"));
            }

            string raw;
            if (option.IsFlag)
            {
                if (eq > 0)
                {
                    throw new InputException(name, "a flag takes no value", $"got '{token[(eq + 1)..]}'");
                }

                raw = "";
            }
            else if (eq > 0)
            {
                raw = token[(eq + 1)..];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                raw = args[++i];
            }
            else
            {
                throw new InputException(name, $"{name} takes a value {option.ValueName}", "missing value");
            }

            Add(values, option, raw);
        }

        foreach (var option in options)
        {
            if (option.Required && !values.ContainsKey(option.Name))
            {
                throw new InputException(option.Name, $"'{verb}' needs {option.Name} {option.ValueName}", "missing option");
            }
        }

        CheckOutputsApart(options, values);
        return new ParsedArguments(values);
    }

    /// <summary>
    /// An output file must not be an input of the same command (<c>--json trace.npy</c> would replace the trace) nor
    /// another output of it.
    /// </summary>
    private static void CheckOutputsApart(IReadOnlyList<CliOption> options, Dictionary<string, List<object>> values)
    {
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        var files = new List<(CliOption Option, string Raw, string Full)>();
        foreach (var option in options.Where(o => o.Role != FileRole.None && values.ContainsKey(o.Name)))
        {
            foreach (var raw in values[option.Name].OfType<string>().Where(r => r != "-"))
            {
                var full = Path.GetFullPath(raw);
                foreach (var (other, otherRaw, otherFull) in files)
                {
                    if (!string.Equals(full, otherFull, comparison) || (option.Role == FileRole.Input && other.Role == FileRole.Input))
                    {
                        continue;
                    }

                    var (output, outputRaw, against) = option.Role == FileRole.Output ? (option, raw, other) : (other, otherRaw, option);
                    var rule = against.Role == FileRole.Input ? "an output never overwrites an input" : "outputs go to different files";
                    throw new InputException(output.Name, rule, $"'{outputRaw}' is also the {against.Name} {(against.Role == FileRole.Input ? "input" : "output")}");
                }

                files.Add((option, raw, full));
            }
        }
    }

    private static void Add(Dictionary<string, List<object>> values, CliOption option, string raw)
    {
        if (values.TryGetValue(option.Name, out var list))
        {
            if (!option.Repeatable)
            {
                throw new InputException(option.Name, "given at most once", "given more than once");
            }
        }
        else
        {
            list = [];
            values[option.Name] = list;
        }

        list.Add(option.Convert(raw));
    }

    private static string Listed(string verb) => $"options listed by 'expertbridge {verb} --help'";

    /// <summary>The closest known option within two edits, or null.</summary>
    private static string? Suggest(string name, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = 3;
        foreach (var candidate in known)
        {
            var d = EditDistance(name, candidate);
            if (d < bestDistance)
            {
                best = candidate;
                bestDistance = d;
            }
        }

        return best;
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
