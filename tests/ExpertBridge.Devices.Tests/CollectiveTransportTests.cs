using ExpertBridge.Core;
using ExpertBridge.Devices.Relocation;
using ExpertBridge.Devices.Transport;
using ExpertBridge.Interop.Hccl;

namespace ExpertBridge.Devices.Tests;

/// <summary>
/// The transport contract's argument checks and HCCL's batching, on the host backend (no HCCL library here: the
/// transport is built over null communicators and no test reaches a vendor call); options and the id rendezvous.
/// </summary>
public sealed class CollectiveTransportTests : IDisposable
{
    private readonly DeviceRuntime _runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 2, HostDeviceMemory = 1 << 20 });
    private readonly HcclTransport _hccl;
    private readonly DeviceStream _stream;
    private readonly DeviceBuffer _buffer;

    public CollectiveTransportTests()
    {
        // This process holds global rank 2 on device 0; device 1 takes no part; 4 ranks in the job.
        _hccl = new HcclTransport(_runtime, ranks: 4, localRanks: [2, -1], comms: [HcclComm.Null, HcclComm.Null]);
        _stream = _runtime.CreateStream(0);
        _buffer = _runtime.Allocate(0, 4096);
    }

    [Fact]
    public void Send_OutsideGroup_ThrowsInvalidOperation()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => _hccl.Send(_stream, _buffer.Memory, 0));
        Assert.Contains("GroupStart", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GroupStart_Nested_ThrowsInvalidOperation()
    {
        _hccl.GroupStart();
        Assert.Throws<InvalidOperationException>(_hccl.GroupStart);
    }

    [Fact]
    public void Send_HostMemory_ThrowsArgumentNamingTheRule()
    {
        using var host = _runtime.AllocateHost(64);
        _hccl.GroupStart();
        var ex = Assert.Throws<ArgumentException>(() => _hccl.Send(_stream, host.Memory, 0));
        Assert.Contains("must be device memory on the stream's device 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Receive_MemoryOnAnotherDevice_ThrowsArgument()
    {
        using var other = _runtime.Allocate(1, 64);
        _hccl.GroupStart();
        Assert.Throws<ArgumentException>(() => _hccl.Receive(_stream, other.Memory, 1));
    }

    [Fact]
    public void Send_PeerOutsideRanks_ThrowsArgumentOutOfRange()
    {
        _hccl.GroupStart();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => _hccl.Send(_stream, _buffer.Memory, 4));
        Assert.Contains("0..3", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Send_ToOwnRank_ThrowsArgument()
    {
        _hccl.GroupStart();
        var ex = Assert.Throws<ArgumentException>(() => _hccl.Send(_stream, _buffer.Memory, 2));
        Assert.Contains("rank 2 itself", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Send_StreamOfDeviceWithoutRank_ThrowsArgument()
    {
        using var stream1 = _runtime.CreateStream(1);
        using var buffer1 = _runtime.Allocate(1, 64);
        _hccl.GroupStart();
        var ex = Assert.Throws<ArgumentException>(() => _hccl.Send(stream1, buffer1.Memory, 0));
        Assert.Contains("holds no rank", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Send_StreamOfAnotherRuntime_ThrowsArgument()
    {
        using var other = DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 1, HostDeviceMemory = 1 << 20 });
        using var stream = other.CreateStream(0);
        _hccl.GroupStart();
        Assert.Throws<ArgumentException>(() => _hccl.Send(stream, _buffer.Memory, 0));
    }

    [Fact]
    public void Send_EmptyRange_ThrowsArgumentOutOfRange()
    {
        _hccl.GroupStart();
        Assert.Throws<ArgumentOutOfRangeException>(() => _hccl.Send(_stream, _buffer.Memory.Slice(0, 0), 0));
    }

    [Fact]
    public unsafe void SendAndReceive_InGroup_BecomeBatchItemsOfBytesToTheirPeers()
    {
        _hccl.GroupStart();
        _hccl.Send(_stream, _buffer.Memory.Slice(0, 1000), 3);
        _hccl.Receive(_stream, _buffer.Memory.Slice(1024, 3000), 0);
        var items = _hccl.PendingItems;
        Assert.Equal(2, items.Count);
        var (device, send) = items[0];
        Assert.Equal(0, device);
        Assert.Equal(HcclSendRecvType.Send, send.sendRecvType);
        Assert.Equal(_buffer.Memory.Address, (ulong)send.buf);
        Assert.Equal(1000UL, send.count);
        Assert.Equal(HcclDataType.Uint8, send.dataType);
        Assert.Equal(3U, send.remoteRank);
        var receive = items[1].Item;
        Assert.Equal(HcclSendRecvType.Recv, receive.sendRecvType);
        Assert.Equal(_buffer.Memory.Address + 1024, (ulong)receive.buf);
        Assert.Equal(3000UL, receive.count);
        Assert.Equal(0U, receive.remoteRank);
    }

    [Fact]
    public void Abort_ThenAnyCall_ThrowsNotAvailableNamingTheReason()
    {
        _hccl.Abort("peer 3 timed out");
        _hccl.Abort("a later reason is ignored");
        var ex = Assert.Throws<DeviceException>(_hccl.GroupStart);
        Assert.Equal(DeviceErrorKind.NotAvailable, ex.Kind);
        Assert.Contains("peer 3 timed out", ex.Message, StringComparison.Ordinal);
        Assert.Throws<DeviceException>(_hccl.ThrowIfFailed);
    }

    [Fact]
    public async Task Abort_WhileGroupOpenOnAnotherThread_WaitsUntilTheGroupIsIssued()
    {
        using var loopback = new LoopbackTransport(_runtime, ranks: 2, localRanks: [0], new LoopbackWire());
        using var opened = new ManualResetEventSlim();
        using var close = new ManualResetEventSlim();
        var issuer = new Thread(() =>
        {
            loopback.GroupStart();
            opened.Set();
            close.Wait();
            _ = Record.Exception(loopback.GroupEnd); // closes the library's group; reports the abort if it already ran
        });
        issuer.Start();
        opened.Wait(TestContext.Current.CancellationToken);
        var abort = Task.Run(() => loopback.Abort("watchdog"), TestContext.Current.CancellationToken);
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.False(loopback.IsAborted); // the group's operations would otherwise reach a freed communicator

        close.Set();
        issuer.Join();
        await abort;
        Assert.True(loopback.IsAborted);
        Assert.Single(loopback.Groups);
    }

    [Fact]
    public void Open_HostBackend_ThrowsUnsupported()
    {
        var ex = Assert.Throws<DeviceException>(() => CollectiveTransport.Open(_runtime, new CollectiveTransportOptions { Ranks = 2, LocalRanks = [0], UniqueId = new byte[128] }));
        Assert.Equal(DeviceErrorKind.Unsupported, ex.Kind);
        Assert.Contains("NCCL", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_BothIdAndRendezvousFile_ThrowsInputException()
    {
        var ex = Assert.Throws<InputException>(() => CollectiveTransport.Open(_runtime,
            new CollectiveTransportOptions { Ranks = 2, LocalRanks = [0], UniqueId = new byte[128], RendezvousFile = "/tmp/x" }));
        Assert.Contains("exactly one", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_RankTwiceAmongLocalDevices_ThrowsInputExceptionNamingDevice()
    {
        var ex = Assert.Throws<InputException>(() => new HcclTransport(_runtime, ranks: 4, localRanks: [1, 1], comms: [HcclComm.Null, HcclComm.Null]));
        Assert.Equal("collective transport local rank of device 1", ex.Subject);
    }

    [Fact]
    public void ForProcess_Locations_GiveEachLocalDeviceItsGlobalRank()
    {
        DeviceLocation[] where = [new(0, 0), new(1, 1), new(1, 0), new(0, 1)];
        var options = CollectiveTransportOptions.ForProcess(where, 1, rendezvousFile: "/tmp/id");
        Assert.Equal(4, options.Ranks);
        Assert.Equal([2, 1], options.LocalRanks);
        var none = Assert.Throws<InputException>(() => CollectiveTransportOptions.ForProcess(where, 7));
        Assert.Contains("process 7", none.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rendezvous_PublishedId_IsReadBackWhole()
    {
        var path = Path.Combine(Path.GetTempPath(), $"eb-rdv-{Guid.NewGuid():N}", "id");
        var id = Enumerable.Range(0, 128).Select(i => (byte)i).ToArray();
        var reader = Task.Run(() => Rendezvous.Await(path, 128, TimeSpan.FromSeconds(10), "nccl"), TestContext.Current.CancellationToken);
        Rendezvous.Publish(path, id);
        Assert.Equal(id, await reader);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public void Rendezvous_NoFile_TimesOutNamingTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"eb-rdv-missing-{Guid.NewGuid():N}");
        var ex = Assert.Throws<DeviceException>(() => Rendezvous.Await(path, 128, TimeSpan.FromMilliseconds(100), "nccl"));
        Assert.Equal(DeviceErrorKind.Timeout, ex.Kind);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rendezvous_FileOfWrongSize_ThrowsInputException()
    {
        var path = Path.GetTempFileName();
        File.WriteAllBytes(path, new byte[10]);
        var ex = Assert.Throws<InputException>(() => Rendezvous.Await(path, 128, TimeSpan.FromSeconds(1), "nccl"));
        Assert.Contains("10 bytes", ex.Message, StringComparison.Ordinal);
        File.Delete(path);
    }

    public void Dispose()
    {
        _buffer.Dispose();
        _stream.Dispose();
        _hccl.Dispose();
        _runtime.Dispose();
    }
}
