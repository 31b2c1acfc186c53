using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace ExpertBridge.Core.Formats;

/// <summary>
/// NumPy's .npy format, versions 1.0 to 3.0: a magic string <c>\x93NUMPY</c>, the version, the header length (2 bytes in
/// 1.0, 4 in 2.0 and 3.0), a Python dict literal <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (58, 256), }</c>
/// (latin-1 before 3.0, UTF-8 in 3.0) padded with spaces and a newline so the data starts on a 64-byte boundary, then
/// the raw data. Supported: little-endian int32, int64, float32, float64 in C order. Everything else (other dtypes,
/// big-endian, Fortran order, bad magic, truncated or oversized data) is an <see cref="InputException"/> naming the
/// file and the rule. The core is stream-based; the path overloads only open the file.
/// </summary>
public static class Npy
{
    public const string RuleMagic = "a .npy file starts with \\x93NUMPY";
    public const string RuleVersion = ".npy format version is 1.0, 2.0 or 3.0";
    public const string RuleHeader = "the .npy header is a Python dict with 'descr', 'fortran_order' and 'shape'";
    public const string RuleDType = ".npy dtype is little-endian int32, int64, float32 or float64";
    public const string RuleOrder = ".npy data is in C order (fortran_order False)";
    public const string RuleSize = ".npy data size matches the shape";

    private static readonly byte[] s_magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    private const int Alignment = 64;
    private const int ChunkBytes = 1 << 20;

    /// <summary>True when <paramref name="prefix"/> starts with the .npy magic string.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> prefix) => prefix.StartsWith(s_magic);

    /// <summary>Reads the .npy file at <paramref name="path"/>.</summary>
    public static NpyArray Read(string path)
    {
        using var stream = FileIo.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads one array from <paramref name="stream"/>; <paramref name="subject"/> names it in errors.</summary>
    public static NpyArray Read(Stream stream, string subject)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(subject);
        Span<byte> preamble = stackalloc byte[8];
        var got = stream.ReadAtLeast(preamble, preamble.Length, throwOnEndOfStream: false);
        if (got < preamble.Length || !HasMagic(preamble))
        {
            throw new InputException(subject, RuleMagic, got < s_magic.Length && preamble[..got].SequenceEqual(s_magic.AsSpan(0, got))
                ? $"file ends after {got} bytes"
                : "not a .npy file (bad magic string)");
        }

        int major = preamble[6], minor = preamble[7];
        if (major is < 1 or > 3 || minor != 0)
        {
            throw new InputException(subject, RuleVersion, $"version {major}.{minor} is not supported");
        }

        Span<byte> lengthField = stackalloc byte[major == 1 ? 2 : 4];
        if (stream.ReadAtLeast(lengthField, lengthField.Length, throwOnEndOfStream: false) < lengthField.Length)
        {
            throw new InputException(subject, RuleHeader, "file ends inside the header length");
        }

        var headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(lengthField) : BinaryPrimitives.ReadUInt32LittleEndian(lengthField);
        if (headerLength > 1 << 24)
        {
            throw new InputException(subject, RuleHeader, $"header length {headerLength} bytes is implausible");
        }

        var headerBytes = new byte[headerLength];
        if (stream.ReadAtLeast(headerBytes, headerBytes.Length, throwOnEndOfStream: false) < headerBytes.Length)
        {
            throw new InputException(subject, RuleHeader, $"file ends inside the {headerLength}-byte header");
        }

        var headerText = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);
        var header = HeaderParser.Parse(headerText, subject);
        var count = CheckedCount(header.Shape, subject);
        var array = Allocate(header.DType, count, header.Shape);
        ReadData(stream, array, subject);
        return array;
    }

    /// <summary>Writes <paramref name="array"/> to <paramref name="path"/> (atomically: temporary file, then rename).</summary>
    public static void Write(string path, NpyArray array, int version = 1) =>
        FileIo.WriteAtomically(path, stream => Write(stream, array, version));

    /// <summary>
    /// Writes <paramref name="array"/> as NumPy's <c>np.save</c> does. <paramref name="version"/> 1 is the most portable and
    /// is upgraded to 2 when the header does not fit 64 KiB; 2 and 3 are written as asked.
    /// </summary>
    public static void Write(Stream stream, NpyArray array, int version = 1)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(version, 3);
        var dict = $"{{'descr': '{Descr(array.DType)}', 'fortran_order': False, 'shape': {array.ShapeText}, }}";
        if (version == 1 && Padded(dict, 10) > ushort.MaxValue)
        {
            version = 2;
        }

        var preambleLength = version == 1 ? 10 : 12;
        var headerLength = Padded(dict, preambleLength);
        var header = new byte[preambleLength + headerLength];
        s_magic.CopyTo(header, 0);
        header[6] = (byte)version;
        header[7] = 0;
        if (version == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)headerLength);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)headerLength);
        }

        header.AsSpan(preambleLength).Fill((byte)' ');
        Encoding.ASCII.GetBytes(dict, header.AsSpan(preambleLength));
        header[^1] = (byte)'\n';
        stream.Write(header);
        WriteData(stream, array);
    }

    /// <summary>Header length (dict + padding + newline) so that preamble + header is a multiple of 64 bytes.</summary>
    private static int Padded(string dict, int preambleLength)
    {
        var unpadded = preambleLength + dict.Length + 1;
        var total = (unpadded + Alignment - 1) / Alignment * Alignment;
        return total - preambleLength;
    }

    private static string Descr(NpyDType dtype) => dtype switch
    {
        NpyDType.Int32 => "<i4",
        NpyDType.Int64 => "<i8",
        NpyDType.Float32 => "<f4",
        _ => "<f8",
    };

    private static int CheckedCount(int[] shape, string subject)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            count *= dim;
            if (count > Array.MaxLength)
            {
                throw new InputException(subject, RuleSize, $"shape {NpyArray.FormatShape(shape)} holds more than {Array.MaxLength} elements");
            }
        }

        return (int)count;
    }

    private static NpyArray Allocate(NpyDType dtype, int count, int[] shape) => dtype switch
    {
        NpyDType.Int32 => new NpyArray(new int[count], shape),
        NpyDType.Int64 => new NpyArray(new long[count], shape),
        NpyDType.Float32 => new NpyArray(new float[count], shape),
        _ => new NpyArray(new double[count], shape),
    };

    private static void ReadData(Stream stream, NpyArray array, string subject)
    {
        var expected = (long)array.Length * array.ItemSize;
        long read = 0;
        var itemsPerChunk = ChunkBytes / array.ItemSize;
        for (var start = 0; start < array.Length; start += itemsPerChunk)
        {
            var bytes = Bytes(array, start, Math.Min(itemsPerChunk, array.Length - start));
            var got = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            read += got;
            if (got < bytes.Length)
            {
                throw new InputException(subject, RuleSize, $"data is truncated: shape {array.ShapeText} of {Name(array.DType)} needs {expected} bytes, the file has {read}");
            }
        }

        if (stream.ReadByte() >= 0)
        {
            var extra = stream.CanSeek ? $"{stream.Length - stream.Position + 1} extra bytes" : "extra bytes";
            throw new InputException(subject, RuleSize, $"{extra} after the data: shape {array.ShapeText} of {Name(array.DType)} needs {expected} bytes");
        }

        if (!BitConverter.IsLittleEndian)
        {
            SwapBytes(array);
        }
    }

    private static void WriteData(Stream stream, NpyArray array)
    {
        var itemsPerChunk = ChunkBytes / array.ItemSize;
        byte[]? swapped = BitConverter.IsLittleEndian ? null : new byte[ChunkBytes];
        for (var start = 0; start < array.Length; start += itemsPerChunk)
        {
            var bytes = Bytes(array, start, Math.Min(itemsPerChunk, array.Length - start));
            if (swapped is null)
            {
                stream.Write(bytes);
            }
            else
            {
                bytes.CopyTo(swapped);
                SwapBytes(swapped.AsSpan(0, bytes.Length), array.ItemSize);
                stream.Write(swapped, 0, bytes.Length);
            }
        }
    }

    private static Span<byte> Bytes(NpyArray array, int start, int count) => array.DType switch
    {
        NpyDType.Int32 => MemoryMarshal.AsBytes(((int[])array.Data).AsSpan(start, count)),
        NpyDType.Int64 => MemoryMarshal.AsBytes(((long[])array.Data).AsSpan(start, count)),
        NpyDType.Float32 => MemoryMarshal.AsBytes(((float[])array.Data).AsSpan(start, count)),
        _ => MemoryMarshal.AsBytes(((double[])array.Data).AsSpan(start, count)),
    };

    private static void SwapBytes(NpyArray array)
    {
        for (var start = 0; start < array.Length; start += ChunkBytes / array.ItemSize)
        {
            SwapBytes(Bytes(array, start, Math.Min(ChunkBytes / array.ItemSize, array.Length - start)), array.ItemSize);
        }
    }

    private static void SwapBytes(Span<byte> bytes, int itemSize)
    {
        if (itemSize == 4)
        {
            var items = MemoryMarshal.Cast<byte, uint>(bytes);
            BinaryPrimitives.ReverseEndianness(items, items);
        }
        else
        {
            var items = MemoryMarshal.Cast<byte, ulong>(bytes);
            BinaryPrimitives.ReverseEndianness(items, items);
        }
    }

    private static string Name(NpyDType dtype) => dtype.ToString().ToLowerInvariant();

    /// <summary>The parsed header.</summary>
    private readonly record struct Header(NpyDType DType, int[] Shape);

    /// <summary>
    /// Parses the header dict: exactly the keys 'descr' (a dtype string), 'fortran_order' (True/False) and 'shape'
    /// (a tuple of non-negative ints, Python 2's trailing L accepted), in any order, single or double quotes.
    /// </summary>
    private ref struct HeaderParser
    {
        private readonly string _text;
        private readonly string _subject;
        private int _pos;

        private HeaderParser(string text, string subject)
        {
            _text = text;
            _subject = subject;
            _pos = 0;
        }

        public static Header Parse(string text, string subject)
        {
            var parser = new HeaderParser(text, subject);
            return parser.ParseDict();
        }

        private Header ParseDict()
        {
            string? descr = null;
            bool? fortran = null;
            int[]? shape = null;
            Expect('{');
            while (true)
            {
                SkipSpace();
                if (Peek() == '}')
                {
                    _pos++;
                    break;
                }

                var key = ParseString();
                Expect(':');
                switch (key)
                {
                    case "descr":
                        SkipSpace();
                        if (Peek() == '[')
                        {
                            throw Fail(RuleDType, "structured dtypes (a descr list) are not supported");
                        }

                        descr = ParseString();
                        break;
                    case "fortran_order":
                        fortran = ParseBool();
                        break;
                    case "shape":
                        shape = ParseShape();
                        break;
                    default:
                        throw Fail(RuleHeader, $"unexpected key '{key}'");
                }

                SkipSpace();
                if (Peek() == ',')
                {
                    _pos++;
                }
                else if (Peek() != '}')
                {
                    throw Fail(RuleHeader, $"expected ',' or '}}' at header position {_pos}");
                }
            }

            if (descr is null || fortran is null || shape is null)
            {
                var missing = descr is null ? "descr" : fortran is null ? "fortran_order" : "shape";
                throw Fail(RuleHeader, $"the header has no '{missing}'");
            }

            if (fortran.Value)
            {
                throw Fail(RuleOrder, "Fortran-ordered data is not supported; save with np.ascontiguousarray");
            }

            return new Header(ParseDType(descr), shape);
        }

        private readonly NpyDType ParseDType(string descr)
        {
            var order = descr.Length > 0 ? descr[0] : ' ';
            var code = order is '<' or '>' or '=' or '|' ? descr[1..] : descr;
            NpyDType? dtype = code switch
            {
                "i4" => NpyDType.Int32,
                "i8" => NpyDType.Int64,
                "f4" => NpyDType.Float32,
                "f8" => NpyDType.Float64,
                _ => null,
            };
            if (dtype is null)
            {
                throw Fail(RuleDType, $"dtype '{descr}' is not supported");
            }

            if (order == '>')
            {
                throw Fail(RuleDType, $"big-endian dtype '{descr}' is not supported; convert with arr.astype('<{code}')");
            }

            return dtype.Value;
        }

        private int[] ParseShape()
        {
            Expect('(');
            var dims = new List<int>();
            while (true)
            {
                SkipSpace();
                if (Peek() == ')')
                {
                    _pos++;
                    return [.. dims];
                }

                var start = _pos;
                while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
                {
                    _pos++;
                }

                if (_pos == start || !int.TryParse(_text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out var dim))
                {
                    throw Fail(RuleHeader, $"shape entries are non-negative integers below 2^31 (header position {start})");
                }

                if (Peek() is 'L' or 'l')
                {
                    _pos++;
                }

                dims.Add(dim);
                SkipSpace();
                if (Peek() == ',')
                {
                    _pos++;
                }
                else if (Peek() != ')')
                {
                    throw Fail(RuleHeader, $"expected ',' or ')' in the shape at header position {_pos}");
                }
            }
        }

        private bool ParseBool()
        {
            SkipSpace();
            foreach (var (word, value) in new[] { ("True", true), ("False", false) })
            {
                if (string.CompareOrdinal(_text, _pos, word, 0, word.Length) == 0)
                {
                    _pos += word.Length;
                    return value;
                }
            }

            throw Fail(RuleHeader, $"'fortran_order' must be True or False (header position {_pos})");
        }

        private string ParseString()
        {
            SkipSpace();
            var quote = Peek();
            if (quote is not ('\'' or '"'))
            {
                throw Fail(RuleHeader, $"expected a quoted string at header position {_pos}");
            }

            var end = _text.IndexOf(quote, _pos + 1);
            if (end < 0)
            {
                throw Fail(RuleHeader, "unterminated string");
            }

            var value = _text[(_pos + 1)..end];
            _pos = end + 1;
            return value;
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (Peek() != c)
            {
                throw Fail(RuleHeader, $"expected '{c}' at header position {_pos}");
            }

            _pos++;
        }

        private void SkipSpace()
        {
            while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos]))
            {
                _pos++;
            }
        }

        private readonly char Peek() => _pos < _text.Length ? _text[_pos] : '\0';

        private readonly InputException Fail(string rule, string detail) => new(_subject, rule, detail);
    }
}
