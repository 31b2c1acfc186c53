using System.Text;

namespace ExpertBridge.Bindings.Generator.Passes;

/// <summary>C-to-C# naming rules shared by the passes.</summary>
internal static class Naming
{
    private static readonly HashSet<string> s_keywords = new(StringComparer.Ordinal)
    {
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const",
        "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern",
        "false", "finally", "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface",
        "internal", "is", "lock", "long", "namespace", "new", "null", "object", "operator", "out", "override",
        "params", "private", "protected", "public", "readonly", "ref", "return", "sbyte", "sealed", "short",
        "sizeof", "stackalloc", "static", "string", "struct", "switch", "this", "throw", "true", "try", "typeof",
        "uint", "ulong", "unchecked", "unsafe", "ushort", "using", "virtual", "void", "volatile", "while",
    };

    /// <summary>A C identifier usable as a C# identifier (<c>event</c> becomes <c>@event</c>).</summary>
    public static string Escape(string name) => s_keywords.Contains(name) ? "@" + name : name;

    /// <summary>The default C# name of a C type: a trailing <c>_t</c> dropped, underscores removed with the next
    /// letter upper-cased, the first letter upper-cased (<c>ncclResult_t</c> to <c>NcclResult</c>,
    /// <c>CUdevice_attribute</c> to <c>CUdeviceAttribute</c>).</summary>
    public static string TypeName(string cName)
    {
        var name = cName.EndsWith("_t", StringComparison.Ordinal) && cName.Length > 2 ? cName[..^2] : cName;
        var sb = new StringBuilder(name.Length);
        var upper = true;
        foreach (var ch in name)
        {
            if (ch == '_')
            {
                upper = sb.Length > 0;
                continue;
            }
            sb.Append(upper ? char.ToUpperInvariant(ch) : ch);
            upper = false;
        }
        return sb.ToString();
    }

    /// <summary>Words of an identifier: split at underscores, and at lower-to-upper case changes in mixed-case names
    /// (<c>CUDA_ERROR_INVALID_VALUE</c>: CUDA, ERROR, INVALID, VALUE; <c>ncclInvalidUsage</c>: nccl, Invalid, Usage).</summary>
    public static List<string> Words(string name)
    {
        var words = new List<string>();
        foreach (var part in name.Split('_', StringSplitOptions.RemoveEmptyEntries))
        {
            var start = 0;
            for (var i = 1; i < part.Length; i++)
            {
                if (char.IsLower(part[i - 1]) && char.IsUpper(part[i]))
                {
                    words.Add(part[start..i]);
                    start = i;
                }
            }
            words.Add(part[start..]);
        }
        return words;
    }

    /// <summary>Words joined in PascalCase; all-capital words are lower-cased after their first letter.</summary>
    public static string Pascal(IEnumerable<string> words)
    {
        var sb = new StringBuilder();
        foreach (var w in words)
        {
            if (w.Length == 0) continue;
            var allUpper = w.All(c => !char.IsLetter(c) || char.IsUpper(c));
            sb.Append(char.ToUpperInvariant(w[0]));
            sb.Append(allUpper ? w[1..].ToLowerInvariant() : w[1..]);
        }
        return sb.ToString();
    }

    /// <summary>C# names for the members of one enum: the words all members share at the front are dropped, the
    /// rest joined in PascalCase (<c>CU_DEVICE_ATTRIBUTE_PCI_BUS_ID</c> in <c>CUdevice_attribute</c> to <c>PciBusId</c>).
    /// A name that would start with a digit keeps one more word.</summary>
    public static List<string> MemberNames(IReadOnlyList<string> cNames)
    {
        var split = cNames.Select(Words).ToList();
        var common = 0;
        if (split.Count > 1)
        {
            var shortest = split.Min(w => w.Count);
            while (common < shortest - 1 && split.All(w => string.Equals(w[common], split[0][common], StringComparison.Ordinal)))
            {
                common++;
            }
        }
        else if (split.Count == 1 && split[0].Count > 1)
        {
            common = 1;
        }
        return split.Select(w =>
        {
            var skip = common;
            while (skip > 0 && char.IsDigit(w[skip][0])) skip--;
            return Pascal(w.Skip(skip));
        }).ToList();
    }
}
