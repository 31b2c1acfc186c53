using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace ExpertBridge.Scripting.Tests;

/// <summary>
/// The runtime does not tier code in collectible load contexts: a policy's methods are compiled once, fully optimised,
/// at their first call, whatever the process's tiering settings. The solver benchmarks, which turn tiering off
/// (docs/policy-evaluation.md), rely on this to measure what a host runs; this test says so if a runtime changes it.
/// </summary>
public class PolicyJitTests
{
    private const string ProbeLibrary = """
        using ExpertBridge.Core;
        using ExpertBridge.Core.Policies;

        public sealed class JitProbePolicy : IPlacementPolicy
        {
            public string Name => "jit-probe";

            public PolicyDecision Decide(PolicyContext context)
            {
                var total = 0.0;
                for (var s = 0; s < context.Current.Slots; s++)
                {
                    total += context.Current[0, s];
                }

                return PolicyDecision.Keep($"sum {total}");
            }
        }
        """;

    private const string ProbeScript = """
        // keeps the placement (a JIT probe)
        #load "lib/probe.lib.csx"

        return new JitProbePolicy();
        """;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Decide_PolicyMethod_CompiledOnceFullyOptimised_NotTiered()
    {
        using var files = new PolicyFiles();
        files.Write("lib/probe.lib.csx", ProbeLibrary);
        var path = files.Write("probe.csx", ProbeScript);
        using var listener = new JitListener("JitProbePolicy");
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);

        for (var call = 0; call < 200; call++)
        {
            Assert.StartsWith("sum", host.Invoke(PolicyFiles.Context()).Reason, StringComparison.Ordinal);
            if (call % 50 == 49)
            {
                await Task.Delay(150, Token); // room for the tiering delay and the background compiler, were it tiered
            }
        }

        var loads = await listener.WaitForAsync("Decide", TimeSpan.FromSeconds(20), Token);
        await Task.Delay(500, Token);
        Assert.Equal([JitListener.Optimized], listener.Tiers("Decide"));
        Assert.NotEmpty(loads);
    }

    /// <summary>The runtime's method-load events (JIT keyword) for one type's methods, with their optimisation tier.</summary>
    private sealed class JitListener : EventListener
    {
        /// <summary>The tier of code compiled fully optimised outside tiering (the runtime's OptimizationTier "Optimized").</summary>
        public const int Optimized = 2;

        private readonly ConcurrentQueue<(string Method, int Tier)> _loads = new();
        private readonly string _type;

        public JitListener(string type) => _type = type;

        public int[] Tiers(string method) => [.. _loads.Where(l => l.Method == method).Select(l => l.Tier)];

        public async Task<int[]> WaitForAsync(string method, TimeSpan limit, CancellationToken cancellation)
        {
            var until = DateTime.UtcNow + limit;
            while (Tiers(method).Length == 0 && DateTime.UtcNow < until)
            {
                await Task.Delay(50, cancellation);
            }

            return Tiers(method);
        }

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x10); // JIT
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
            if (eventData.EventName?.StartsWith("MethodLoadVerbose", StringComparison.Ordinal) != true || eventData.PayloadNames is not { } names)
            {
                return;
            }

            var type = eventData.Payload![names.IndexOf("MethodNamespace")] as string;
            if (type is null || !type.EndsWith(_type, StringComparison.Ordinal))
            {
                return;
            }

            // MethodFlags bits 7 to 9 carry the optimisation tier.
            var flags = Convert.ToUInt32(eventData.Payload[names.IndexOf("MethodFlags")], System.Globalization.CultureInfo.InvariantCulture);
            _loads.Enqueue(((string)eventData.Payload[names.IndexOf("MethodName")]!, (int)((flags >> 7) & 7)));
        }
    }
}
