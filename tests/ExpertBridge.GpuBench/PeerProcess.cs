using System.Diagnostics;

namespace ExpertBridge.GpuBench;

/// <summary>
/// A second process of this program (rank 1) for the two-process benchmarks: started with a verb and arguments, fed
/// one or more lines on its standard input (a pipe), its output echoed with a prefix, and its last
/// <c>RESULT {json}</c> line read back.
/// </summary>
internal sealed class PeerProcess : IDisposable
{
    public const string ResultPrefix = "RESULT ";
    private readonly Process _process;
    private readonly List<string> _lines = [];

    private PeerProcess(Process process) => _process = process;

    /// <summary>Starts this program with <paramref name="arguments"/>; <paramref name="environment"/> entries override this process's.</summary>
    public static PeerProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's path");
        var psi = new ProcessStartInfo(self) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(PeerProcess).Assembly.Location);
        }

        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {self}");
        var peer = new PeerProcess(process);
        process.OutputDataReceived += (_, e) => peer.OnLine(e.Data);
        process.BeginOutputReadLine();
        return peer;
    }

    /// <summary>Writes <paramref name="lines"/> to the peer's standard input and closes it.</summary>
    public void Send(params string[] lines)
    {
        foreach (var line in lines)
        {
            _process.StandardInput.WriteLine(line);
        }

        _process.StandardInput.Close();
    }

    /// <summary>Waits for the peer to exit; returns its RESULT row, or throws naming why there is none.</summary>
    public Row Result(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            throw new InvalidOperationException($"rank 1 did not exit within {timeout.TotalSeconds:0} s");
        }

        _process.WaitForExit(); // drains the output callbacks
        string? result;
        lock (_lines)
        {
            result = _lines.LastOrDefault(l => l.StartsWith(ResultPrefix, StringComparison.Ordinal));
        }

        return _process.ExitCode == 0 && result is not null
            ? Json.Read(result[ResultPrefix.Length..])
            : throw new InvalidOperationException($"rank 1 exited with {_process.ExitCode}{(result is null ? " without a result" : "")}");
    }

    /// <summary>Reads this process's input line (in rank 1).</summary>
    public static string ReadLine() => Console.In.ReadLine() ?? throw new InvalidOperationException("rank 1: standard input ended early");

    /// <summary>Reports <paramref name="row"/> to rank 0 (in rank 1).</summary>
    public static void Report(Row row) => Console.WriteLine(ResultPrefix + Json.Write(row));

    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public void Dispose() => _process.Dispose();

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Add(line);
        }

        if (!line.StartsWith(ResultPrefix, StringComparison.Ordinal))
        {
            Console.WriteLine($"  [rank 1] {line}");
        }
    }
}
