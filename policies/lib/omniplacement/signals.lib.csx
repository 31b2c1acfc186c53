// OmniPlacement, the load signals: one pass over the window gives the prediction and the chunk scenarios.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using System.Buffers;
using System.Numerics;
using System.Threading;
using ExpertBridge.Core;

/// <summary>
/// Everything the solver reads from the history, computed in one pass over the window: the predicted per-step load
/// and the per-step mean of each of K consecutive chunks, for every (layer, expert).
/// </summary>
internal sealed class OmniLoadSignals
{
    private readonly float[] _chunkBuffer;
    private readonly float[] _emaBuffer;

    private OmniLoadSignals(int layers, int experts, int scenarios, int steps, float[] predicted, float[] chunkBuffer, float[] emaBuffer)
    {
        _chunkBuffer = chunkBuffer;
        _emaBuffer = emaBuffer;
        var chunks = scenarios > 0 ? chunkBuffer : [];
        Layers = layers;
        Experts = experts;
        Scenarios = scenarios;
        Steps = steps;
        Predicted = predicted;
        Chunks = chunks;
    }

    public int Layers { get; }

    public int Experts { get; }

    /// <summary>Chunk scenarios (K), oldest first.</summary>
    public int Scenarios { get; }

    /// <summary>Steps of history read.</summary>
    public int Steps { get; }

    /// <summary>[layers * experts] predicted per-step load (the array may be longer).</summary>
    public float[] Predicted { get; }

    /// <summary>[K * layers * experts] per-step mean of each chunk (the array may be longer).</summary>
    public float[] Chunks { get; }

    /// <summary>
    /// Reads the window once, into buffers rented from the shared array pool (<see cref="Release"/> gives them back):
    /// calls allocate nothing large, also the first call of a policy instance. Fresh arrays (K + 2 floats per (layer,
    /// expert), 356 KB at DeepSeek-V3 scale) cost page faults on their first writes, about 0.4 ms a call.
    /// </summary>
    public static OmniLoadSignals Compute(IReadOnlyLoadHistory history, OmniPlacementSettings settings, int horizon, CancellationToken cancellation)
    {
        var size = history.Layers * history.Experts;
        var n = settings.Window > 0 ? Math.Min(settings.Window, history.Count) : history.Count;
        var start = history.Count - n;
        var k = Math.Min(settings.Scenarios, n);
        var chunkCount = Math.Max(k, 1);
        var chunks = Rent(chunkCount * size);
        var ema = Rent(size);
        var alpha = (float)settings.EmaAlpha;
        var keep = 1f - alpha;
        var width = Vector<float>.Count;
        var vAlpha = new Vector<float>(alpha);
        var vKeep = new Vector<float>(keep);
        for (var s = 0; s < n;)
        {
            if ((s & 31) < 4)
            {
                cancellation.ThrowIfCancellationRequested();
            }

            var chunk = (int)((long)s * chunkCount / n);
            var acc = chunks.AsSpan(chunk * size, size);
            if (s + 3 < n && (int)((long)(s + 3) * chunkCount / n) == chunk)
            {
                // Four steps of one chunk at once: each value's sum and EMA are read and written once instead of four
                // times, with the same operations in the same order.
                var s0 = history.GetStep(start + s);
                var s1 = history.GetStep(start + s + 1);
                var s2 = history.GetStep(start + s + 2);
                var s3 = history.GetStep(start + s + 3);
                var i = 0;
                for (; i <= size - width; i += width)
                {
                    var x0 = new Vector<float>(s0.Slice(i));
                    var x1 = new Vector<float>(s1.Slice(i));
                    var x2 = new Vector<float>(s2.Slice(i));
                    var x3 = new Vector<float>(s3.Slice(i));
                    ((((new Vector<float>(acc.Slice(i)) + x0) + x1) + x2) + x3).CopyTo(acc.Slice(i));
                    var m = (new Vector<float>(ema, i) * vKeep) + (x0 * vAlpha);
                    m = (m * vKeep) + (x1 * vAlpha);
                    m = (m * vKeep) + (x2 * vAlpha);
                    ((m * vKeep) + (x3 * vAlpha)).CopyTo(ema, i);
                }

                for (; i < size; i++)
                {
                    acc[i] = (((acc[i] + s0[i]) + s1[i]) + s2[i]) + s3[i];
                    var m = (ema[i] * keep) + (s0[i] * alpha);
                    m = (m * keep) + (s1[i] * alpha);
                    m = (m * keep) + (s2[i] * alpha);
                    ema[i] = (m * keep) + (s3[i] * alpha);
                }

                s += 4;
                continue;
            }

            var step = history.GetStep(start + s);
            var j = 0;
            for (; j <= size - width; j += width)
            {
                var x = new Vector<float>(step.Slice(j));
                (new Vector<float>(acc.Slice(j)) + x).CopyTo(acc.Slice(j));
                ((new Vector<float>(ema, j) * vKeep) + (x * vAlpha)).CopyTo(ema, j);
            }

            for (; j < size; j++)
            {
                acc[j] += step[j];
                ema[j] = (ema[j] * keep) + (step[j] * alpha);
            }

            s++;
        }

        // Chunk sums -> per-step means; chunk c holds steps [c n / K, (c + 1) n / K).
        var lengths = new int[chunkCount];
        for (var c = 0; c < chunkCount; c++)
        {
            lengths[c] = (int)(((long)(c + 1) * n / chunkCount) - ((long)c * n / chunkCount));
            var span = chunks.AsSpan(c * size, size);
            Scale(span, lengths[c] > 0 ? 1f / lengths[c] : 0f, span);
        }

        var predicted = Rent(size);
        switch (settings.Predictor)
        {
            case OmniPredictor.Mean:
                for (var c = 0; c < chunkCount; c++)
                {
                    var w = (float)lengths[c] / n;
                    var span = chunks.AsSpan(c * size, size);
                    for (var i = 0; i < size; i++)
                    {
                        predicted[i] += span[i] * w;
                    }
                }

                break;
            default:
                // Bias-corrected EMA (the zero seed's weight is divided out).
                Scale(ema, (float)(1.0 / (1.0 - Math.Pow(keep, n))), predicted);

                if (settings.Predictor == OmniPredictor.Trend && chunkCount >= 2)
                {
                    AddTrend(predicted, chunks, lengths, n, size, settings, horizon);
                }

                break;
        }

        if (k > 0 && settings.Forecast)
        {
            for (var c = 0; c < chunkCount; c++)
            {
                Mirror(predicted, chunks.AsSpan(c * size, size));
            }
        }

        return new OmniLoadSignals(history.Layers, history.Experts, k, n, predicted, chunks, ema);
    }

    /// <summary>target = source x factor, element by element (the passes over whole signals are vectorised).</summary>
    private static void Scale(ReadOnlySpan<float> source, float factor, Span<float> target)
    {
        var width = Vector<float>.Count;
        var i = 0;
        for (; i <= source.Length - width; i += width)
        {
            (new Vector<float>(source.Slice(i)) * factor).CopyTo(target.Slice(i));
        }

        for (; i < source.Length; i++)
        {
            target[i] = source[i] * factor;
        }
    }

    /// <summary>
    /// A chunk mirrored forward around the prediction: max(0, 2 x predicted - chunk), element by element
    /// (Vector.Max treats NaN and -0 as Math.Max does).
    /// </summary>
    private static void Mirror(ReadOnlySpan<float> predicted, Span<float> chunk)
    {
        var width = Vector<float>.Count;
        var i = 0;
        for (; i <= chunk.Length - width; i += width)
        {
            Vector.Max(Vector<float>.Zero, (new Vector<float>(predicted.Slice(i)) * 2f) - new Vector<float>(chunk.Slice(i))).CopyTo(chunk.Slice(i));
        }

        for (; i < chunk.Length; i++)
        {
            chunk[i] = Math.Max(0f, (2 * predicted[i]) - chunk[i]);
        }
    }

    /// <summary>Gives the buffers back to the pool: the signals must not be read after.</summary>
    public void Release()
    {
        ArrayPool<float>.Shared.Return(_chunkBuffer);
        ArrayPool<float>.Shared.Return(_emaBuffer);
        ArrayPool<float>.Shared.Return(Predicted);
    }

    /// <summary>A zeroed buffer of at least <paramref name="length"/> floats (the pool's may be longer).</summary>
    private static float[] Rent(int length)
    {
        var buffer = ArrayPool<float>.Shared.Rent(length);
        Array.Clear(buffer, 0, length);
        return buffer;
    }

    private static void AddTrend(float[] predicted, float[] chunks, int[] lengths, int n, int size, OmniPlacementSettings settings, int horizon)
    {
        // Least-squares slope of chunk means against chunk centres; the EMA lags a linear trend by (1 - a) / a steps.
        var count = lengths.Length;
        var centres = new double[count];
        double mean = 0;
        var first = 0;
        for (var c = 0; c < count; c++)
        {
            centres[c] = first + ((lengths[c] - 1) / 2.0);
            first += lengths[c];
            mean += centres[c];
        }

        mean /= count;
        double denominator = 0;
        for (var c = 0; c < count; c++)
        {
            denominator += (centres[c] - mean) * (centres[c] - mean);
        }

        if (denominator <= 0)
        {
            return;
        }

        var lag = Math.Min((1 - settings.EmaAlpha) / settings.EmaAlpha, n / 2.0);
        var reach = settings.TrendDamping * (lag + horizon) / denominator;
        for (var i = 0; i < size; i++)
        {
            double numerator = 0;
            for (var c = 0; c < count; c++)
            {
                numerator += (centres[c] - mean) * chunks[(c * size) + i];
            }

            predicted[i] = (float)Math.Max(0, predicted[i] + (numerator * reach));
        }
    }
}
