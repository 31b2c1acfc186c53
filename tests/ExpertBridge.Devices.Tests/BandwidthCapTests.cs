using System.Diagnostics;
using ExpertBridge.Core;
using ExpertBridge.Devices.Conformance;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Tests;

public class BandwidthCapTests
{
    private const long ExpertBytes = 1 << 20;

    private static DeviceRuntime Host() => DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 2, HostDeviceMemory = 128L << 20 });

    [Fact]
    public void Reserve_WithinBurst_IssuesAtOnceThenAtTheRate()
    {
        var pacer = new BandwidthPacer(1_000_000_000); // 1 GB/s: 1 MB per ms
        var now = Stopwatch.GetTimestamp();
        Assert.Equal(TimeSpan.Zero, pacer.Reserve(4_000_000, now)); // 4 ms of budget: inside the 5 ms burst
        Assert.Equal(TimeSpan.Zero, pacer.Reserve(1_000_000, now)); // reaches 5 ms
        var wait = pacer.Reserve(1_000_000, now); // would run 5 ms ahead of the rate: waits until 0 ms behind the burst
        Assert.InRange(wait.TotalMilliseconds, 0, 0.01);
        var next = pacer.Reserve(2_000_000, now);
        Assert.InRange(next.TotalMilliseconds, 0.99, 1.01); // 6 ms of bytes reserved before it: 1 ms past the burst
    }

    [Fact]
    public void Reserve_Steady_AveragesTheRateOverAnyLongInterval()
    {
        var pacer = new BandwidthPacer(500_000_000);
        var now = Stopwatch.GetTimestamp();
        TimeSpan last = default;
        for (var i = 0; i < 1000; i++)
        {
            last = pacer.Reserve(1_000_000, now); // all at once: each one waits its turn
        }

        // 999 MB reserved before the last one, at 0.5 GB/s: it starts 1998 ms in, less the 5 ms burst.
        Assert.InRange(last.TotalMilliseconds, 1992.9, 1993.1);
    }

    [Fact]
    public void Reserve_AfterIdle_DoesNotBankMoreThanTheBurst()
    {
        var pacer = new BandwidthPacer(1_000_000_000);
        var start = Stopwatch.GetTimestamp();
        pacer.Reserve(1_000_000, start);
        var later = start + Stopwatch.Frequency; // idle for a second
        Assert.Equal(TimeSpan.Zero, pacer.Reserve(5_000_000, later));
        Assert.InRange(pacer.Reserve(1_000_000, later).TotalMilliseconds, -0.01, 0.01);
        Assert.InRange(pacer.Reserve(1_000_000, later).TotalMilliseconds, 0.99, 1.01);
    }

    [Theory]
    [InlineData(1L << 30, 1_073_741L)]
    [InlineData(100_000_000_000L, 64L << 20)]
    [InlineData(1_000_000L, 256L << 10)]
    public void ChunkBytes_Rate_IsAboutAMillisecondWithinBounds(long rate, long expected) =>
        Assert.Equal(expected, new BandwidthPacer(rate).ChunkBytes);

    [Fact]
    public void Engine_NegativeCap_ThrowsInputExceptionNamingTheOptions()
    {
        using var runtime = Host();
        using var s = new Scenario(runtime, 4096, layers: 1);
        var ex = Assert.Throws<InputException>(() => s.Engine(new RelocationOptions { BetweenDevicesBytesPerSecond = -1 }));
        Assert.Equal("relocation options", ex.Subject);
        Assert.Contains(">= 0", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Engine_CapWithOneSlotPerDevice_MovesEverythingBitExactAtTheCap()
    {
        using var runtime = Host();
        using var s = new Scenario(runtime, ExpertBytes, layers: 2);
        const long Cap = 64L << 20; // 64 MiB/s: the busiest device carries about 12 MiB
        using var engine = s.Engine(new RelocationOptions
        {
            WithinDeviceBytesPerSecond = Cap,
            BetweenDevicesBytesPerSecond = Cap,
            MaxInFlightPerDevice = 1,
            CopyStreamsPerDevice = 1,
            TransferTimeout = TimeSpan.FromSeconds(30),
        });
        var plan = engine.Plan(s.Next);
        var busiest = plan.BusiestBudgetBytes();
        var clock = Stopwatch.StartNew();
        var result = await engine.ExecuteAsync(plan, cancellationToken: TestContext.Current.CancellationToken);
        var took = clock.Elapsed;
        Assert.True(result.AllStaged, string.Join("; ", result.Layers.Select(l => l.Error)));
        var least = TimeSpan.FromSeconds((busiest - new BandwidthPacer(Cap).ChunkBytes) / (double)Cap) - BandwidthPacer.Burst;
        Assert.True(took >= least, $"took {took.TotalMilliseconds} ms, the cap allows no less than {least.TotalMilliseconds} ms");
        foreach (var layer in plan.Layers)
        {
            await engine.CommitAsync(layer.Layer, TestContext.Current.CancellationToken);
        }

        Assert.Equal(s.Next, engine.InForce);
        s.RequireContents(engine.InForce);
        Assert.Equal(0, engine.ReleaseFinished());
        Assert.True(s.LiveAllocationsBack());
    }

    [Fact]
    public async Task Engine_CancelledWhilePaced_KeepsMappingAndReleasesStaging()
    {
        using var runtime = Host();
        using var s = new Scenario(runtime, ExpertBytes, layers: 2);
        const long Cap = 8L << 20; // about 1.5 s for the busiest device
        using var engine = s.Engine(new RelocationOptions { WithinDeviceBytesPerSecond = Cap, BetweenDevicesBytesPerSecond = Cap });
        var plan = engine.Plan(s.Next);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(150));
        var clock = Stopwatch.StartNew();
        var result = await engine.ExecuteAsync(plan, cancellationToken: cancel.Token);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"cancellation waited {clock.Elapsed.TotalMilliseconds} ms for the pacing");
        Assert.All(result.Layers, l => Assert.Equal(LayerStatus.Cancelled, l.Status));
        Assert.Equal(s.Initial, engine.InForce);
        Assert.Empty(engine.StagedLayers);
        var drain = Stopwatch.StartNew();
        while (engine.ReleaseFinished() > 0 && drain.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.Equal(0, engine.ReleaseFinished());
        Assert.True(s.LiveAllocationsBack(), "staging of the cancelled layers was not released");
        s.RequireContents(engine.InForce); // the slots in force were never written
    }

    [Fact]
    public async Task Engine_ChunkFailsMidExpertUnderCap_FailsOnlyItsLayerAndFreesStaging()
    {
        using var runtime = Host();
        using var s = new Scenario(runtime, ExpertBytes, layers: 2);
        using var engine = s.Engine(new RelocationOptions
        {
            WithinDeviceBytesPerSecond = 256L << 20,
            BetweenDevicesBytesPerSecond = 256L << 20,
            MaxLayersInFlight = 1,
            MaxInFlightPerDevice = 1,
            CopyStreamsPerDevice = 1,
        });
        var plan = engine.Plan(s.Next);
        runtime.Faults!.FailCopy(2); // the second chunk of the first expert: its first chunk's event completes fine
        var result = await engine.ExecuteAsync(plan, cancellationToken: TestContext.Current.CancellationToken);
        runtime.Faults.Reset();
        Assert.Equal(LayerStatus.Failed, result.Layers[0].Status);
        Assert.Equal(DeviceErrorKind.DeviceFault, result.Layers[0].ErrorKind);
        Assert.Equal(LayerStatus.Staged, result.Layers[1].Status);
        await engine.CommitAsync(result.Layers[1].Layer, TestContext.Current.CancellationToken);
        Assert.Equal(s.Initial.Layer(0), engine.InForce.Layer(0));
        Assert.Equal(s.Next.Layer(1), engine.InForce.Layer(1));
        s.RequireContents(engine.InForce);
        Assert.Equal(0, engine.ReleaseFinished());
        Assert.True(s.LiveAllocationsBack(), "staging of the failed layer was not released");
    }
}
