using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// Entry point: every public benchmark class in this assembly is listed by BenchmarkSwitcher, so a new suite is just a
/// new class. Pass BenchmarkDotNet's own arguments (<c>--filter '*Eplb*'</c>, <c>--list flat</c>, <c>--job</c>...).
/// Unless <c>--job</c> is given, a short job keeps a run to minutes: 1 launch, 3 warm-up and 15 measured iterations
/// (with <c>--inProcess</c>, that job runs in this process). <c>--cpu-time [calls]</c> skips BenchmarkDotNet and prints
/// the least thread CPU time of single EPLB calls (see <see cref="CpuTime"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == "--cpu-time")
        {
            return CpuTime.Run(calls: args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 300);
        }

        var config = DefaultConfig.Instance.AddColumn(StatisticColumn.Min, StatisticColumn.Median, StatisticColumn.P95);
        if (!args.Any(a => a.StartsWith("--job", StringComparison.Ordinal) || a == "-j"))
        {
            var job = Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(15).WithId("Short15");
            // --inProcess would otherwise add a second, default-length job: apply it to the short job instead.
            // In-process is what runs where only a self-contained build exists (no SDK to build child processes).
            if (args.Contains("--inProcess", StringComparer.OrdinalIgnoreCase))
            {
                job = job.WithToolchain(InProcessEmitToolchain.Instance);
                args = [.. args.Where(a => !a.Equals("--inProcess", StringComparison.OrdinalIgnoreCase))];
            }

            config = config.AddJob(job);
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
