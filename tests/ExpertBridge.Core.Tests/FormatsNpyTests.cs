using System.Text;
using ExpertBridge.Core.Formats;

namespace ExpertBridge.Core.Tests;

public class FormatsNpyTests
{
    private const string Name = "x.npy";

    [Fact]
    public void Write_Int32Matrix_MatchesNumPyBytes()
    {
        // np.save(f, np.arange(6, dtype='<i4').reshape(2, 3)): 10-byte preamble, header padded to 128 bytes in all.
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 0, 1, 2, 3, 4, 5 }, 2, 3));
        var bytes = stream.ToArray();

        var dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
        var expectedHeader = dict.PadRight(117) + "\n";
        Assert.Equal(128 + 24, bytes.Length);
        Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0 }, bytes[..10]);
        Assert.Equal(expectedHeader, Encoding.Latin1.GetString(bytes, 10, 118));
        Assert.Equal(NpyBytes.Ints(0, 1, 2, 3, 4, 5), bytes[128..]);
    }

    [Fact]
    public void Write_Vector_UsesPythonOneTupleSyntax()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 1.5, 2.5 }, 2));
        var header = Encoding.Latin1.GetString(stream.ToArray(), 10, 60);
        Assert.Contains("'descr': '<f8'", header, StringComparison.Ordinal);
        Assert.Contains("'shape': (2,)", header, StringComparison.Ordinal);
    }

    public static TheoryData<NpyDType, int, int> DTypesRanksVersions()
    {
        var data = new TheoryData<NpyDType, int, int>();
        foreach (var dtype in Enum.GetValues<NpyDType>())
        {
            foreach (var rank in new[] { 2, 3 })
            {
                foreach (var version in new[] { 1, 2, 3 })
                {
                    data.Add(dtype, rank, version);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DTypesRanksVersions))]
    public void RoundTrip_EveryDTypeRankAndVersion_PreservesEverything(NpyDType dtype, int rank, int version)
    {
        int[] shape = rank == 2 ? [3, 5] : [2, 3, 5];
        var n = shape.Aggregate(1, (a, b) => a * b);
        var array = dtype switch
        {
            NpyDType.Int32 => new NpyArray(Enumerable.Range(0, n).Select(i => (i * 7919) - 50).ToArray(), shape),
            NpyDType.Int64 => new NpyArray(Enumerable.Range(0, n).Select(i => ((long)i << 40) - 3).ToArray(), shape),
            NpyDType.Float32 => new NpyArray(Enumerable.Range(0, n).Select(i => (i * 0.1f) - 1).ToArray(), shape),
            _ => new NpyArray(Enumerable.Range(0, n).Select(i => Math.PI * i).ToArray(), shape),
        };

        var stream = new MemoryStream();
        Npy.Write(stream, array, version);
        var bytes = stream.ToArray();
        Assert.Equal(version, bytes[6]);
        var headerEnd = version == 1 ? 10 + BitConverter.ToUInt16(bytes, 8) : 12 + (int)BitConverter.ToUInt32(bytes, 8);
        Assert.Equal(0, headerEnd % 64);

        stream.Position = 0;
        var back = Npy.Read(stream, Name);
        Assert.Equal(dtype, back.DType);
        Assert.Equal(shape, back.Shape);
        Assert.Equal(array.Data, back.Data);
    }

    [Fact]
    public void Write_HeaderOver64KiB_UpgradesToVersion2()
    {
        var shape = Enumerable.Repeat(1, 23000).ToArray();
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 42f }, shape));
        Assert.Equal(2, stream.ToArray()[6]);
        stream.Position = 0;
        Assert.Equal(42f, Npy.Read(stream, Name).GetDouble(0));
    }

    [Fact]
    public void Read_DoubleQuotesPython2LongsAndOtherKeyOrder_Parses()
    {
        var bytes = NpyBytes.Build("{\"shape\": (2L, 1L), \"fortran_order\": False, \"descr\": \"<f4\"}", NpyBytes.Floats(1, 2));
        var array = Npy.Read(new MemoryStream(bytes), Name);
        Assert.Equal(new[] { 2, 1 }, array.Shape);
        Assert.Equal(new[] { 1f, 2f }, array.Data);
    }

    [Fact]
    public void Read_Version3Utf8Header_Parses()
    {
        var bytes = NpyBytes.Build("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", NpyBytes.Ints(7, 8), major: 3);
        Assert.Equal(new[] { 7, 8 }, Npy.Read(new MemoryStream(bytes), Name).Data);
    }

    public static TheoryData<string, byte[], string, string> BadFiles() => new()
    {
        { "bad magic", "PK\u0003\u0004 not numpy at all"u8.ToArray(), Npy.RuleMagic, "bad magic" },
        { "short file", new byte[] { 0x93, (byte)'N', (byte)'U' }, Npy.RuleMagic, "ends after 3 bytes" },
        { "version 4", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", NpyBytes.Floats(1), major: 4), Npy.RuleVersion, "version 4.0" },
        { "big-endian", NpyBytes.Build("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", NpyBytes.Floats(1)), Npy.RuleDType, "big-endian" },
        { "uint16", NpyBytes.Build("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", new byte[4]), Npy.RuleDType, "'<u2'" },
        { "structured", NpyBytes.Build("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new byte[4]), Npy.RuleDType, "structured" },
        { "fortran", NpyBytes.Build("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new byte[16]), Npy.RuleOrder, "Fortran" },
        { "truncated", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", NpyBytes.Floats(1, 2, 3)), Npy.RuleSize, "truncated" },
        { "extra data", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", NpyBytes.Floats(1, 2, 3)), Npy.RuleSize, "4 extra bytes" },
        { "missing shape", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, }", NpyBytes.Floats(1)), Npy.RuleHeader, "no 'shape'" },
        { "unknown key", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", NpyBytes.Floats(1)), Npy.RuleHeader, "unexpected key 'x'" },
        { "negative dim", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", NpyBytes.Floats(1)), Npy.RuleHeader, "non-negative" },
        { "not a dict", NpyBytes.Build("['descr', '<f4']", NpyBytes.Floats(1)), Npy.RuleHeader, "expected '{'" },
        { "header cut", NpyBytes.Build("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", [], pad: true)[..40], Npy.RuleHeader, "ends inside" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void Read_BadFile_NamesFileAndRule(string because, byte[] bytes, string rule, string detail)
    {
        var ex = Assert.Throws<InputException>(() => Npy.Read(new MemoryStream(bytes), Name));
        Assert.Equal(Name, ex.Subject);
        Assert.True(rule == ex.Rule, $"{because}: rule was '{ex.Rule}'");
        Assert.Contains(detail, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Read_MissingFile_NamesPath()
    {
        using var dir = new TempDirectory();
        var path = dir.File("absent.npy");
        var ex = Assert.Throws<InputException>(() => Npy.Read(path));
        Assert.Equal(path, ex.Subject);
        Assert.Contains("no such file", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_Path_LeavesNoTemporaryFiles()
    {
        using var dir = new TempDirectory();
        var path = dir.File("a.npy");
        Npy.Write(path, new NpyArray(new long[] { 1, 2 }, 2));
        Npy.Write(path, new NpyArray(new long[] { 3, 4, 5 }, 3));
        Assert.Equal(new long[] { 3, 4, 5 }, Npy.Read(path).Data);
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Write_MissingDirectory_NamesPath()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "no", "such", "dir", "a.npy");
        var ex = Assert.Throws<InputException>(() => Npy.Write(path, new NpyArray(new[] { 1 }, 1)));
        Assert.Equal(path, ex.Subject);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }
}
