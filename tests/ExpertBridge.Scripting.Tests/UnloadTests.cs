using System.Runtime.CompilerServices;
using System.Runtime.Loader;

namespace ExpertBridge.Scripting.Tests;

/// <summary>Load-context lifetime: old versions drain, unload and are collected; reloads do not accumulate memory.</summary>
[Collection(nameof(UnloadTests))]
[CollectionDefinition(nameof(UnloadTests), DisableParallelization = true)]
public class UnloadTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Reload_OldVersion_DrainsAfterInFlightCallAndIsCollected()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);
        var (old, weak) = Capture(host);
        var lease = host.Slot.Acquire();

        File.AppendAllText(path, "\n// v2\n");
        var result = await host.ReloadAsync(Token);
        var drainedWhileLeased = old.Drained.IsCompleted;
        lease.Dispose();
        await old.Drained.WaitAsync(TimeSpan.FromSeconds(10), Token);

        Assert.Equal(PolicyReloadStatus.Loaded, result.Status);
        Assert.Equal(2, host.Version);
        Assert.False(drainedWhileLeased);
        Assert.True(WaitCollected(weak), "the old version's load context was not collected");
        Assert.Equal(PolicyOutcomeKind.Applied, host.Invoke(PolicyFiles.Context()).Kind);
    }

    [Fact]
    public async Task Reload200Times_MemoryAndLoadContextsStayFlat()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var variants = new[] { PolicyFiles.SampleScript, PolicyFiles.SampleScript + "\n// b\n" };
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);

        async Task ReloadAsync(int i)
        {
            File.WriteAllText(path, variants[(i + 1) % 2]);
            var r = await host.ReloadAsync(Token);
            Assert.Equal(PolicyReloadStatus.Loaded, r.Status);
            Assert.Equal(PolicyOutcomeKind.Applied, host.Invoke(PolicyFiles.Context()).Kind);
        }

        async Task<bool> ReloadRangeAsync(int from, int to)
        {
            var weaks = new List<WeakReference>();
            for (var i = from; i < to; i++)
            {
                weaks.Add(Capture(host).Weak);
                await ReloadAsync(i);
            }

            return WaitCollected([.. weaks]);
        }

        Assert.True(await ReloadRangeAsync(0, 20), "warm-up versions were not collected");
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var contextsBefore = AssemblyLoadContext.All.Count();
        Assert.True(await ReloadRangeAsync(20, 220), "some of 200 old versions were not collected");
        var memoryAfter = GC.GetTotalMemory(forceFullCollection: true);
        var contextsAfter = AssemblyLoadContext.All.Count();
        Assert.Equal(221, host.Version);
        Assert.Equal(2, host.Compiler!.Compilations);
        Assert.InRange(contextsAfter - contextsBefore, -5, 2);
        Assert.True(memoryAfter - memoryBefore < 16L << 20, $"managed memory grew by {(memoryAfter - memoryBefore) >> 10} KiB over 200 reloads");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (PolicyVersion Version, WeakReference Weak) Capture(PolicyHost host)
    {
        var version = host.Slot.Current;
        return (version, version.ContextReference!);
    }

    private static bool WaitCollected(params WeakReference[] references)
    {
        for (var i = 0; i < 100 && references.Any(r => r.IsAlive); i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Thread.Sleep(10);
        }

        return !references.Any(r => r.IsAlive);
    }
}
