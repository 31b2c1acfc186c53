using System.Text;
using ExpertBridge.Native;

namespace ExpertBridge.Native.Tests;

/// <summary>The exports called in-process through unmanaged function pointers, as the shim calls them.</summary>
public sealed unsafe class ExportsTests
{
    private const string Config = """
        { "model": { "layers": 2, "experts": 4 }, "topology": { "devices": 2, "slotsPerDevice": 3 },
          "backend": "none", "logging": { "level": "None" } }
        """;

    private static nint Create(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json + "\0");
        nint handle;
        fixed (byte* p = bytes)
        {
            delegate* unmanaged<byte*, nint*, int> create = &Exports.Create;
            Assert.Equal((int)Status.Ok, create(p, &handle));
        }

        return handle;
    }

    [Fact]
    public void Create_BadConfig_ReturnsConfigErrorNamingTheKey()
    {
        var bytes = Encoding.UTF8.GetBytes("{ \"model\": { \"layers\": 0, \"experts\": 4 }, \"topology\": { \"devices\": 2, \"slotsPerDevice\": 3 } }\0");
        nint handle = 77;
        int status;
        fixed (byte* p = bytes)
        {
            delegate* unmanaged<byte*, nint*, int> create = &Exports.Create;
            status = create(p, &handle);
        }

        Assert.Equal((int)Status.ConfigError, status);
        Assert.Equal(0, handle);
        Assert.Contains("model.layers", Exports.LastError, StringComparison.Ordinal);
        Assert.StartsWith("eb_create: ", Exports.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_UnknownPolicy_ReturnsConfigErrorNamingThePolicy()
    {
        var bytes = Encoding.UTF8.GetBytes("{ \"model\": { \"layers\": 1, \"experts\": 4 }, \"topology\": { \"devices\": 2, \"slotsPerDevice\": 2 }, \"policy\": \"nosuch\" }\0");
        nint handle;
        int status;
        fixed (byte* p = bytes)
        {
            delegate* unmanaged<byte*, nint*, int> create = &Exports.Create;
            status = create(p, &handle);
        }

        Assert.Equal((int)Status.ConfigError, status);
        Assert.Contains("'nosuch' is not a built-in", Exports.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void RecordStep_AfterDestroy_ReturnsInvalidHandle()
    {
        var h = Create(Config);
        delegate* unmanaged<nint, int> destroy = &Exports.Destroy;
        delegate* unmanaged<nint, long, int*, ulong, int> record = &Exports.RecordStep;
        var tokens = new int[12];

        Assert.Equal((int)Status.Ok, destroy(h));
        fixed (int* t = tokens)
        {
            Assert.Equal((int)Status.InvalidHandle, record(h, -1, t, 12));
        }

        Assert.Contains("destroyed", Exports.LastError, StringComparison.Ordinal);
        Assert.Equal((int)Status.InvalidHandle, destroy(h));
    }

    [Fact]
    public void RecordStep_WrongCountOrStaleEpoch_ReturnsTheMatchingStatus()
    {
        var h = Create(Config);
        delegate* unmanaged<nint, long, int*, ulong, int> record = &Exports.RecordStep;
        var tokens = new int[12];
        try
        {
            fixed (int* t = tokens)
            {
                Assert.Equal((int)Status.InvalidArgument, record(h, -1, t, 11));
                Assert.Contains("2 x 6 = 12", Exports.LastError, StringComparison.Ordinal);
                Assert.Equal((int)Status.StaleEpoch, record(h, 3, t, 12));
                Assert.Equal((int)Status.InvalidArgument, record(h, -1, null, 12));
                Assert.Equal((int)Status.Ok, record(h, 0, t, 12));
            }
        }
        finally
        {
            delegate* unmanaged<nint, int> destroy = &Exports.Destroy;
            destroy(h);
        }
    }

    [Fact]
    public void GetMapping_ShortStructOrBuffer_ReturnsStatusWithoutWriting()
    {
        var h = Create(Config);
        delegate* unmanaged<nint, EbMapping*, int> get = &Exports.GetMapping;
        var phy2log = new int[12];
        phy2log.AsSpan().Fill(99);
        try
        {
            fixed (int* p = phy2log)
            {
                var m = new EbMapping { StructSize = 8, Layer = -1, Phy2Log = p, Phy2LogCapacity = 12 };
                Assert.Equal((int)Status.InvalidArgument, get(h, &m));
                Assert.Contains("struct_size", Exports.LastError, StringComparison.Ordinal);

                m = new EbMapping { StructSize = (uint)sizeof(EbMapping), Layer = -1, Phy2Log = p, Phy2LogCapacity = 11 };
                Assert.Equal((int)Status.BufferTooSmall, get(h, &m));
                Assert.All(phy2log, v => Assert.Equal(99, v));

                m = new EbMapping { StructSize = (uint)sizeof(EbMapping), Layer = 1, Phy2Log = p, Phy2LogCapacity = 6 };
                Assert.Equal((int)Status.Ok, get(h, &m));
                Assert.Equal([0, 1, 2, 3, 0, 1], phy2log[..6]);
                Assert.Equal(3, m.MaxReplicas);
            }
        }
        finally
        {
            delegate* unmanaged<nint, int> destroy = &Exports.Destroy;
            destroy(h);
        }
    }

    [Fact]
    public void Initialize_OtherAbiVersion_ReportsTheMismatch()
    {
        delegate* unmanaged<delegate* unmanaged<byte*, int, void>, int, int> init = &Exports.Initialize;

        Assert.Equal((int)Status.RuntimeUnavailable, init(null, Exports.AbiVersion + 1));
        Assert.Contains("ABI", Exports.LastError, StringComparison.Ordinal);
        Assert.Equal((int)Status.Ok, init(null, Exports.AbiVersion));
    }

    [Fact]
    public void StructLayouts_MatchTheHeader()
    {
        Assert.Equal(32, sizeof(EbInfo));
        Assert.Equal(40, sizeof(EbTensorDesc));
        Assert.Equal(72, sizeof(EbMapping));
        Assert.Equal(112, sizeof(EbStats));
    }
}
