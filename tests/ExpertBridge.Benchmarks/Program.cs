using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// Entry point: every public benchmark class in this assembly is listed by BenchmarkSwitcher, so a new suite is just a
/// new class. Pass BenchmarkDotNet's own arguments (<c>--filter '*Eplb*'</c>, <c>--list flat</c>, <c>--job</c>...).
/// Unless <c>--job</c> is given, a short job keeps a run to minutes: 1 launch, 3 warm-up and 15 measured iterations.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var config = DefaultConfig.Instance.AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        if (!args.Any(a => a.StartsWith("--job", StringComparison.Ordinal) || a == "-j"))
        {
            config = config.AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(15).WithId("Short15"));
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}
