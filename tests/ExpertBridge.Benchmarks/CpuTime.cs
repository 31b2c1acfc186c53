using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// <c>--cpu-time</c>: the least thread CPU time of many single <see cref="Eplb.Rebalance(LoadMatrix, Topology, int)"/>
/// calls per EPLB case. On a shared machine wall-clock medians measure the neighbours; the least CPU time of a call
/// that was not interrupted is the closest this machine gets to an idle core's cost. Linux only (CLOCK_THREAD_CPUTIME_ID).
/// </summary>
internal static class CpuTime
{
    public static int Run(int calls)
    {
        if (!OperatingSystem.IsLinux())
        {
            Console.Error.WriteLine("--cpu-time: needs Linux (CLOCK_THREAD_CPUTIME_ID)");
            return 2;
        }

        var bench = new EplbBenchmarks();
        foreach (var deployment in EplbBenchmarks.Deployments)
        {
            bench.Deployment = deployment;
            bench.Setup();
            // Tiered JIT promotes hot code some 100 ms after its 30th call (on-stack replacement for loops): warm up
            // by time, not by a count, so that sub-millisecond calls are measured in their final code.
            var warmUp = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < 50 || warmUp.ElapsedMilliseconds < 3000; i++)
            {
                bench.Rebalance();
            }

            var samples = new double[calls];
            for (var i = 0; i < calls; i++)
            {
                var start = ThreadClock.Milliseconds();
                bench.Rebalance();
                samples[i] = ThreadClock.Milliseconds() - start;
            }

            Array.Sort(samples);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"EPLB rebalance {deployment}: least {samples[0]:F3} ms, median {samples[calls / 2]:F3} ms thread CPU time over {calls} calls"));
        }

        return 0;
    }

}
