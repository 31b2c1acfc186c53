using System.Text;

namespace ExpertBridge.Core.Tests;

/// <summary>A temporary directory removed on dispose, for the path-based format entry points.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "eb-formats-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string WriteText(string name, string text)
    {
        var path = File(name);
        System.IO.File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    public string WriteBytes(string name, byte[] bytes)
    {
        var path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}

/// <summary>Builds .npy bytes by hand, to test the reader on files our writer would never produce.</summary>
internal static class NpyBytes
{
    public static byte[] Build(string dict, byte[] data, int major = 1, int minor = 0, bool pad = true)
    {
        var preamble = major == 1 ? 10 : 12;
        var header = dict + "\n";
        if (pad)
        {
            var total = (preamble + header.Length + 63) / 64 * 64;
            header = dict.PadRight(total - preamble - 1) + "\n";
        }

        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.Add((byte)major);
        bytes.Add((byte)minor);
        var encoded = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetBytes(header);
        if (major == 1)
        {
            bytes.AddRange(BitConverter.GetBytes((ushort)encoded.Length));
        }
        else
        {
            bytes.AddRange(BitConverter.GetBytes((uint)encoded.Length));
        }

        bytes.AddRange(encoded);
        bytes.AddRange(data);
        return [.. bytes];
    }

    public static byte[] Floats(params float[] values) => [.. values.SelectMany(BitConverter.GetBytes)];

    public static byte[] Ints(params int[] values) => [.. values.SelectMany(BitConverter.GetBytes)];
}
