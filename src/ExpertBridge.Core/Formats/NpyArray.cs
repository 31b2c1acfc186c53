namespace ExpertBridge.Core.Formats;

/// <summary>Element types <see cref="Npy"/> reads and writes (little-endian), named as NumPy names them.</summary>
#pragma warning disable CA1720 // Identifiers contain type names: they are NumPy's dtype names on purpose.
public enum NpyDType
{
    Int32,
    Int64,
    Float32,
    Float64,
}
#pragma warning restore CA1720

/// <summary>
/// An n-dimensional array as a .npy file holds it: element type, shape (C order, last axis fastest) and the flat data
/// (<c>int[]</c>, <c>long[]</c>, <c>float[]</c> or <c>double[]</c>, matching <see cref="DType"/>). Wraps the data without copying.
/// </summary>
public sealed class NpyArray
{
    private readonly int[] _shape;

    public NpyArray(int[] data, params int[] shape) : this(NpyDType.Int32, data, shape) { }

    public NpyArray(long[] data, params int[] shape) : this(NpyDType.Int64, data, shape) { }

    public NpyArray(float[] data, params int[] shape) : this(NpyDType.Float32, data, shape) { }

    public NpyArray(double[] data, params int[] shape) : this(NpyDType.Float64, data, shape) { }

    private NpyArray(NpyDType dtype, Array data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long count = 1;
        foreach (var dim in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(dim, nameof(shape));
            count *= dim;
        }

        if (count != data.LongLength)
        {
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) holds {count} elements, the data has {data.LongLength}", nameof(data));
        }

        DType = dtype;
        Data = data;
        _shape = (int[])shape.Clone();
    }

    public NpyDType DType { get; }

    /// <summary>Dimensions, outermost first; empty for a scalar.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>The flat data, C order: <c>int[]</c>, <c>long[]</c>, <c>float[]</c> or <c>double[]</c>.</summary>
    public Array Data { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;

    /// <summary>Bytes per element.</summary>
    public int ItemSize => ItemSizeOf(DType);

    /// <summary>Element <paramref name="index"/> (flat, C order) as a double (exact for every int32, float32 and float64).</summary>
    public double GetDouble(int index) => DType switch
    {
        NpyDType.Int32 => ((int[])Data)[index],
        NpyDType.Int64 => ((long[])Data)[index],
        NpyDType.Float32 => ((float[])Data)[index],
        _ => ((double[])Data)[index],
    };

    /// <summary>The shape as NumPy prints it: <c>(58, 256)</c>.</summary>
    public string ShapeText => FormatShape(_shape);

    internal static int ItemSizeOf(NpyDType dtype) => dtype is NpyDType.Int32 or NpyDType.Float32 ? 4 : 8;

    internal static string FormatShape(IReadOnlyList<int> shape) =>
        shape.Count == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
}
