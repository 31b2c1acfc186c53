namespace ExpertBridge.Core.Traces;

/// <summary>
/// xoshiro256** (Blackman and Vigna): a small, fast generator whose output is fixed by its seed on every platform,
/// unlike <see cref="Random"/>, whose algorithm may change between .NET versions. Seeded through SplitMix64.
/// Gaussian draws use a ziggurat built with <see cref="DetMath"/>, so they are platform-independent too.
/// </summary>
internal sealed class Xoshiro256
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A generator for stream <paramref name="stream"/> of <paramref name="seed"/>; streams are independent.</summary>
    public Xoshiro256(ulong seed, ulong stream = 0)
    {
        var sm = seed ^ unchecked(stream * 0xD1B54A32D192ED03UL);
        _s0 = SplitMix64(ref sm);
        _s1 = SplitMix64(ref sm);
        _s2 = SplitMix64(ref sm);
        _s3 = SplitMix64(ref sm);
        if ((_s0 | _s1 | _s2 | _s3) == 0)
        {
            _s0 = 1;
        }
    }

    public ulong NextUInt64()
    {
        var result = unchecked(ulong.RotateLeft(_s1 * 5, 7) * 9);
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="n"/>), unbiased (Lemire's multiply-and-reject).</summary>
    public int NextInt(int n)
    {
        if (n <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        }

        var range = (ulong)n;
        var high = Math.BigMul(NextUInt64(), range, out var low);
        if (low < range)
        {
            var threshold = unchecked(0UL - range) % range;
            while (low < threshold)
            {
                high = Math.BigMul(NextUInt64(), range, out low);
            }
        }

        return (int)high;
    }

    /// <summary>
    /// Standard normal by the ziggurat method (Marsaglia and Tsang 2000, 128 layers, in Doornik's ZIGNOR form): one
    /// 64-bit draw and one comparison in about 99% of calls; tables built with <see cref="DetMath"/>.
    /// </summary>
    public double NextGaussian()
    {
        var x = Ziggurat.X;
        var ratio = Ziggurat.Ratio;
        while (true)
        {
            var bits = NextUInt64();
            var layer = (int)(bits & (Ziggurat.Layers - 1));
            var u = (2 * ((bits >> 11) * (1.0 / (1UL << 53)))) - 1;
            if (Math.Abs(u) < ratio[layer])
            {
                return u * x[layer];
            }

            if (layer == 0)
            {
                return Tail(u < 0);
            }

            var candidate = u * x[layer];
            var f0 = DetMath.Exp(-0.5 * ((x[layer] * x[layer]) - (candidate * candidate)));
            var f1 = DetMath.Exp(-0.5 * ((x[layer + 1] * x[layer + 1]) - (candidate * candidate)));
            if (f1 + (NextDouble() * (f0 - f1)) < 1.0)
            {
                return candidate;
            }
        }
    }

    /// <summary>
    /// Binomial(<paramref name="n"/>, <paramref name="p"/>): exact inversion when the smaller tail's mean is below 25,
    /// else the normal approximation rounded to the nearest integer and clamped to [0, n].
    /// </summary>
    public int NextBinomial(int n, double p)
    {
        if (n <= 0 || p <= 0)
        {
            return 0;
        }

        if (p >= 1)
        {
            return n;
        }

        if (p > 0.5)
        {
            return n - NextBinomial(n, 1 - p);
        }

        var mean = n * p;
        var q = 1 - p;
        if (mean >= 25)
        {
            var x = Math.Round(mean + (Math.Sqrt(mean * q) * NextGaussian()));
            return (int)Math.Clamp(x, 0, n);
        }

        // Inversion (Devroye, Non-Uniform Random Variate Generation, X.4): walk the pmf from 0.
        var ratio = p / q;
        var a = (n + 1) * ratio;
        var pmf = DetMath.Exp(n * DetMath.Log(q));
        var u = NextDouble();
        var k = 0;
        var reciprocals = Reciprocals.Values;
        while (u > pmf && k < n)
        {
            u -= pmf;
            k++;
            pmf *= (k < reciprocals.Length ? a * reciprocals[k] : a / k) - ratio;
        }

        return k;
    }

    private double Tail(bool negative)
    {
        double x, y;
        do
        {
            x = DetMath.Log(1 - NextDouble()) / Ziggurat.R;
            y = DetMath.Log(1 - NextDouble());
        }
        while (-2 * y < x * x);

        return negative ? x - Ziggurat.R : Ziggurat.R - x;
    }

    /// <summary>1 / k for small k: keeps the division off the inversion loop's dependency chain.</summary>
    private static class Reciprocals
    {
        public static readonly double[] Values = Build();

        private static double[] Build()
        {
            var values = new double[128];
            for (var k = 1; k < values.Length; k++)
            {
                values[k] = 1.0 / k;
            }

            return values;
        }
    }

    /// <summary>Ziggurat tables for the standard normal: layer edges X and the ratios X[i+1] / X[i].</summary>
    private static class Ziggurat
    {
        public const int Layers = 128;
        public const double R = 3.442619855899;
        private const double V = 9.91256303526217e-3;

        public static readonly double[] X = BuildEdges();
        public static readonly double[] Ratio = BuildRatios(X);

        private static double[] BuildEdges()
        {
            var x = new double[Layers + 1];
            var f = DetMath.Exp(-0.5 * R * R);
            x[0] = V / f;
            x[1] = R;
            x[Layers] = 0;
            for (var i = 2; i < Layers; i++)
            {
                x[i] = Math.Sqrt(-2 * DetMath.Log((V / x[i - 1]) + f));
                f = DetMath.Exp(-0.5 * x[i] * x[i]);
            }

            return x;
        }

        private static double[] BuildRatios(double[] x)
        {
            var ratio = new double[Layers];
            for (var i = 0; i < Layers; i++)
            {
                ratio[i] = x[i + 1] / x[i];
            }

            return ratio;
        }
    }

    private static ulong SplitMix64(ref ulong state)
    {
        unchecked
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
