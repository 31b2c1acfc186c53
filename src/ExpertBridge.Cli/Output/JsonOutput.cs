using System.Globalization;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Output;

/// <summary>Writes JSON results to a file, or to stdout for <c>-</c>.</summary>
internal static class JsonOutput
{
    public static void Write(string target, JToken json, TextWriter stdout)
    {
        if (target == "-")
        {
            Write(json, stdout);
            return;
        }

        using var file = new StreamWriter(target, append: false);
        Write(json, file);
    }

    private static void Write(JToken json, TextWriter output)
    {
        using var writer = new JsonTextWriter(output) { Formatting = Formatting.Indented, CloseOutput = false, Culture = CultureInfo.InvariantCulture };
        json.WriteTo(writer);
        writer.Flush();
        output.WriteLine();
    }
}

/// <summary>Invariant number formatting for tables and messages.</summary>
internal static class Fmt
{
    public static string Num(double value, string format = "0.000") => value.ToString(format, CultureInfo.InvariantCulture);

    public static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Bytes with a binary unit (B, KiB, MiB, GiB, TiB).</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return u == 0 ? $"{Int(bytes)} B" : $"{Num(v, "0.0")} {units[u]}";
    }
}
