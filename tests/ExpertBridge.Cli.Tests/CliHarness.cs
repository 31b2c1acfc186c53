using System.Text;
using ExpertBridge.Cli.Output;
using ExpertBridge.Scripting;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Tests;

/// <summary>What one in-process run of the CLI returned.</summary>
internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public JToken Json => JToken.Parse(Stdout);
}

/// <summary>Runs the CLI in process against a fresh temp directory, which it deletes afterwards.</summary>
internal sealed class CliHarness : IDisposable
{
    public CliHarness()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("eb-cli-tests-").FullName;
        Services = new()
        {
            Progress = ProgressMode.None,
            Cancellation = TestContext.Current.CancellationToken,
            Scripting = new ScriptingOptions { CacheDirectory = PathOf("script-cache"), PolicyDirectory = PathOf("policies") },
        };
    }

    public string Directory { get; }

    public string PathOf(string name) => Path.Combine(Directory, name);

    public string WriteFile(string name, string text)
    {
        var path = PathOf(name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>No progress output; the test's cancellation; scripts cached in, and bare names found in, the temp directory.</summary>
    public CliServices Services { get; }

    /// <summary>The policy directory bare <c>--policy</c> names are looked up in (created by <see cref="WriteScript"/>).</summary>
    public string PolicyDirectory => PathOf("policies");

    /// <summary>Writes a policy script into <see cref="PolicyDirectory"/>; returns its full path.</summary>
    public string WriteScript(string name, string text)
    {
        System.IO.Directory.CreateDirectory(PolicyDirectory);
        var path = Path.Combine(PolicyDirectory, name);
        File.WriteAllText(path, text);
        return path;
    }

    public CliResult Run(params string[] args) => Run(Services, args);

    public static CliResult Run(CliServices services, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = Cli.Run(args, stdout, stderr, services);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A skewed trace (4 layers x 32 experts x 300 steps) written by <c>trace generate</c>.</summary>
    public string SkewedTrace(string name = "trace.npy", int steps = 300, int seed = 7)
    {
        var path = PathOf(name);
        var r = Run("trace", "generate", "--layers", "4", "--experts", "32", "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--tokens", "512", "--top-k", "4", "--skew", "1.2", "--drift", "0.01", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", path);
        Assert.Equal(0, r.ExitCode);
        return path;
    }

    /// <summary>A float32 .npy written byte by byte, so tests can build files the real writer refuses (NaN, wrong sizes).</summary>
    public string RawNpy(string name, string shape, float[] values, int? dataBytes = null)
    {
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        var padded = ((10 + header.Length + 1 + 63) / 64 * 64) - 10 - 1;
        header = header.PadRight(padded) + "\n";
        var data = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, data, 0, data.Length);
        using var file = File.Create(PathOf(name));
        file.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        file.Write(BitConverter.GetBytes((ushort)header.Length));
        file.Write(Encoding.ASCII.GetBytes(header));
        file.Write(data, 0, dataBytes ?? data.Length);
        return PathOf(name);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still open on a slow file system: the OS cleans temp.
        }
    }
}
