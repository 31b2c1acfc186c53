using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Scripting;

namespace ExpertBridge.Scripting.Bench;

/// <summary>
/// Measures what an operator waits for after editing a policy script:
/// cold  - the first compile + load in a fresh process (Roslyn not yet loaded or jitted), one child process per run;
/// cold, JIT profile - the same with the multicore JIT profile an earlier start recorded (a host restarted after an edit);
/// warm  - a reload of an edited script in a running host (compile + load + atomic swap + drain of the old version);
///         the script's library (its #load'ed type declarations) is unchanged, so it is not compiled again;
/// warm, library edited - the same after an edit of every file the script #loads, directly or not (the library is
///         compiled again);
/// cold, library cached - an edited script in a fresh process whose library is in the disk cache (a host restart);
/// cached - a reload of content already in the disk cache (cache read + load + swap).
/// Usage: --bench [--runs N] [--script PATH]   (default: a small sample policy with one #load)
///        --check PATH                          (what `policy check` prints, until the CLI verb is wired)
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        try
        {
            if (args.Length >= 2 && args[0] == "--cold-once")
            {
                return await ColdOnceAsync(args[1], Option(args, "--cache"), Option(args, "--jit-profile"));
            }

            if (args.Length >= 2 && args[0] == "--check")
            {
                // `policy check` until the CLI verb is wired.
                var check = PolicyCheck.Run(args[1]);
                foreach (var line in check.Lines)
                {
                    Console.WriteLine(line);
                }

                return check.ExitCode;
            }

            if (args.Length == 0 || args[0] != "--bench")
            {
                Console.Error.WriteLine("usage: ExpertBridge.Scripting.Bench --bench [--runs N] [--script PATH] | --check PATH");
                return 2;
            }

            var runs = int.Parse(Option(args, "--runs") ?? "10", CultureInfo.InvariantCulture);
            var script = Option(args, "--script");
            return await BenchAsync(runs, script);
        }
        catch (InputException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 2;
        }
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static async Task<int> ColdOnceAsync(string script, string? cache, string? jitProfile)
    {
        if (jitProfile is not null)
        {
            // As a host's entry point does: the profile lives in a cache directory of its own here, so that the
            // compile itself stays uncached.
            JitStartupProfile.Start("bench", typeof(Program).Assembly, new ScriptingOptions { CacheDirectory = jitProfile });
        }

        var clock = Stopwatch.StartNew();
        var options = cache is null ? new ScriptingOptions { UseCache = false } : new ScriptingOptions { CacheDirectory = cache };
        using var host = await PolicyResolver.OpenAsync(script, options);
        Console.WriteLine(clock.Elapsed.TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture));
        return 0;
    }

    private static async Task<int> BenchAsync(int runs, string? given)
    {
        var work = Path.Combine(Path.GetTempPath(), "eb-script-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            var script = PrepareScript(given, work);
            var cold = new List<double>();
            var coldProfiled = new List<double>();
            var profiles = Path.Combine(work, "jit-profile");
            RunChild(script, jitProfile: profiles); // records the profile the measured runs replay
            for (var i = 0; i < runs; i++)
            {
                cold.Add(RunChild(script));
                coldProfiled.Add(RunChild(script, jitProfile: profiles));
            }

            var original = File.ReadAllText(script);
            var libraries = PolicySourceSet.Read(script).Files.Skip(1).ToDictionary(f => f.Path, f => File.ReadAllText(f.Path));
            var warm = new List<double>();
            var warmLibrary = new List<double>();
            var cached = new List<double>();
            var cacheDirectory = Path.Combine(work, "cache");
            var options = new ScriptingOptions { CacheDirectory = cacheDirectory };
            using (var host = await PolicyResolver.OpenAsync(script, options))
            {
                for (var i = 0; i < runs; i++)
                {
                    File.WriteAllText(script, original + $"\n// bench edit {i} {Guid.NewGuid():N}\n");
                    warm.Add(await TimedReloadAsync(host, expectCache: false));
                }

                for (var i = 0; libraries.Count > 0 && i < runs; i++)
                {
                    foreach (var (file, text) in libraries)
                    {
                        File.WriteAllText(file, text + $"\n// bench edit {i} {Guid.NewGuid():N}\n");
                    }

                    warmLibrary.Add(await TimedReloadAsync(host, expectCache: false));
                }

                foreach (var (file, text) in libraries)
                {
                    File.WriteAllText(file, text);
                }

                // Alternate between two contents the cache already holds.
                var a = original + "\n// cached a\n";
                var b = original + "\n// cached b\n";
                File.WriteAllText(script, a);
                await host.ReloadAsync();
                File.WriteAllText(script, b);
                await host.ReloadAsync();
                for (var i = 0; i < runs; i++)
                {
                    File.WriteAllText(script, i % 2 == 0 ? a : b);
                    cached.Add(await TimedReloadAsync(host, expectCache: true));
                }
            }

            // A restarted host compiling an edited script: the library (original content) is in the disk cache.
            var coldLibrary = new List<double>();
            for (var i = 0; libraries.Count > 0 && i < runs; i++)
            {
                File.WriteAllText(script, original + $"\n// restart edit {i} {Guid.NewGuid():N}\n");
                coldLibrary.Add(RunChild(script, cacheDirectory));
            }

            File.WriteAllText(script, original);
            Console.WriteLine($"script: {script} ({libraries.Count} #load'ed file(s))");
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {CpuModel()}, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, load average {LoadAverage()}");
            Console.WriteLine("| case | median ms | min ms | max ms | runs |");
            Console.WriteLine("|---|---|---|---|---|");
            Row("cold: first compile + load in a fresh process", cold);
            Row("cold, JIT profile of an earlier start (JitStartupProfile)", coldProfiled);
            Row("warm: reload of an edited script (compile + load + swap)", warm);
            Row("warm, library edited: reload after an edit of every #load'ed file", warmLibrary);
            Row("cold, library cached: an edited script in a fresh process, library in the disk cache", coldLibrary);
            Row("cached: reload of cached content (cache read + load + swap)", cached);
            Console.WriteLine("samples in order (ms):");
            s_sequences.ForEach(line => Console.WriteLine("  " + line));
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
                // Temporary files only.
            }
        }
    }

    private static async Task<double> TimedReloadAsync(PolicyHost host, bool expectCache)
    {
        var clock = Stopwatch.StartNew();
        var result = await host.ReloadAsync();
        var ms = clock.Elapsed.TotalMilliseconds;
        if (result.Status != PolicyReloadStatus.Loaded || result.FromCache != expectCache)
        {
            throw new InvalidOperationException($"reload was {result.Status} (from cache: {result.FromCache}): {string.Join("; ", result.Diagnostics)}");
        }

        return ms;
    }

    private static double RunChild(string script, string? cache = null, string? jitProfile = null)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Program).Assembly.Location);
        }

        start.ArgumentList.Add("--cold-once");
        start.ArgumentList.Add(script);
        if (cache is not null)
        {
            start.ArgumentList.Add("--cache");
            start.ArgumentList.Add(cache);
        }

        if (jitProfile is not null)
        {
            start.ArgumentList.Add("--jit-profile");
            start.ArgumentList.Add(jitProfile);
        }
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        var error = child.StandardError.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0)
        {
            throw new InvalidOperationException($"cold run failed ({child.ExitCode}): {error}");
        }

        return double.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    private static string PrepareScript(string? given, string work)
    {
        if (given is not null)
        {
            // Copy the script's directory so edits never touch the operator's files.
            var source = Path.GetDirectoryName(Path.GetFullPath(given))!;
            CopyDirectory(source, Path.Combine(work, "policies"));
            return Path.Combine(work, "policies", Path.GetFileName(given));
        }

        var dir = Path.Combine(work, "policies");
        Directory.CreateDirectory(Path.Combine(dir, "lib"));
        File.WriteAllText(Path.Combine(dir, "lib", "rotate.lib.csx"), """
            using ExpertBridge.Core;
            using ExpertBridge.Core.Policies;

            public sealed class RotatePolicy(int shift) : IPlacementPolicy
            {
                public string Name => "rotate";

                public PolicyDecision Decide(PolicyContext context)
                {
                    var current = context.Current;
                    var perDevice = current.Topology.SlotsPerDevice;
                    var slots = current.Slots;
                    var next = new int[current.Layers * slots];
                    for (var l = 0; l < current.Layers; l++)
                    {
                        for (var s = 0; s < slots; s++)
                        {
                            var device = ((s / perDevice) + shift) % current.Topology.Devices;
                            next[(l * slots) + (device * perDevice) + (s % perDevice)] = current[l, s];
                        }
                    }

                    return PolicyDecision.Apply(new Placement(current.Topology, current.LogicalExperts, next), $"rotated by {shift}");
                }
            }
            """);
        var path = Path.Combine(dir, "sample.csx");
        File.WriteAllText(path, """
            // sample: rotates device blocks
            // @option shift = 1
            #load "lib/rotate.lib.csx"
            return new RotatePolicy(Options.GetInt("shift", 1));
            """);
        return path;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*.csx", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    // Each row's samples in the order they were taken (tiering and caches make a sequence tell more than a median).
    private static readonly List<string> s_sequences = [];

    private static void Row(string name, List<double> values)
    {
        if (values.Count == 0)
        {
            return;
        }

        s_sequences.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: {string.Join(", ", values.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))}"));
        values.Sort();
        var median = values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {median:F0} | {values[0]:F0} | {values[^1]:F0} | {values.Count} |"));
    }

    private static string CpuModel()
    {
        const string cpuinfo = "/proc/cpuinfo";
        return File.Exists(cpuinfo)
            ? File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
            : "unknown CPU";
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
