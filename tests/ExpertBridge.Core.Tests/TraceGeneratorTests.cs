using ExpertBridge.Core.Traces;

namespace ExpertBridge.Core.Tests;

public class TraceGeneratorTests
{
    private static readonly TraceOptions s_small = new()
    {
        Layers = 3,
        Experts = 32,
        Steps = 40,
        TokensPerStep = 512,
        TopK = 4,
        Seed = 11,
    };

    public static TheoryData<string, TraceOptions> Extremes() => new()
    {
        { "default small", s_small },
        { "drift, switches and noise", s_small with { Drift = 0.2, SwitchEvery = 7, StepNoise = 1 } },
        { "extreme skew: caps bind", s_small with { Skew = 8, TopK = 6 } },
        { "top-k = experts", s_small with { Experts = 5, TopK = 5 } },
        { "one token", s_small with { TokensPerStep = 1, TopK = 3 } },
        { "uniform", s_small with { Skew = 0, StepNoise = 0 } },
        { "one expert", s_small with { Experts = 1, TopK = 1 } },
        { "many tokens", s_small with { TokensPerStep = 1 << 20, Steps = 3 } },
    };

    [Theory]
    [MemberData(nameof(Extremes))]
    public void Generate_EveryLayerStep_SumsToTokensTimesTopK_AndNoExpertExceedsTokens(string because, TraceOptions options)
    {
        var trace = TraceGenerator.Generate(options);
        Assert.Equal((options.Steps, options.Layers, options.Experts), (trace.Steps, trace.Layers, trace.Experts));
        for (var s = 0; s < trace.Steps; s++)
        {
            for (var l = 0; l < trace.Layers; l++)
            {
                var row = trace.GetStep(s).Slice(l * trace.Experts, trace.Experts);
                double sum = 0;
                foreach (var c in row)
                {
                    Assert.True(c >= 0 && c <= options.TokensPerStep && c == MathF.Floor(c), $"{because}: step {s} layer {l} has count {c}");
                    sum += c;
                }

                Assert.True((double)options.TokensPerStep * options.TopK == sum, $"{because}: step {s} layer {l} sums to {sum}");
            }
        }
    }

    [Fact]
    public void Generate_SameSeed_IsBitIdentical()
    {
        var options = s_small with { Drift = 0.05, SwitchEvery = 10 };
        Assert.Equal(TraceGenerator.Generate(options).Values.ToArray(), TraceGenerator.Generate(options).Values.ToArray());
    }

    [Fact]
    public void Generate_DifferentSeed_Differs()
    {
        var a = TraceGenerator.Generate(s_small).Values.ToArray();
        var b = TraceGenerator.Generate(s_small with { Seed = 12 }).Values.ToArray();
        Assert.NotEqual(a, b);
        Assert.True(a.Zip(b).Count(p => p.First != p.Second) > a.Length / 2);
    }

    [Fact]
    public void Generate_PinnedSeed_MatchesRecordedFingerprint()
    {
        // Guards cross-machine determinism (own PRNG, own exp/log): this value may change only when the model changes on
        // purpose, and then every stored trace and benchmark baseline must be regenerated.
        var trace = TraceGenerator.Generate(s_small with { Drift = 0.05, SwitchEvery = 10 });
        Assert.Equal(0x43C218897BB24F25UL, Fingerprint(trace.Values));
    }

    [Fact]
    public void Generate_DefaultSkew_HotExpertsAnOrderOfMagnitudeAboveColdOnEveryLayer()
    {
        var options = new TraceOptions { Layers = 12, Steps = 20 };
        var sums = TraceGenerator.Generate(options).Sum();
        var ratios = Enumerable.Range(0, options.Layers).Select(l => DecileRatio(sums.Layer(l))).ToArray();
        Assert.All(ratios, r => Assert.True(r >= 10, $"hottest tenth / coldest tenth = {r:F1}"));

        // ... and the skew differs per layer.
        Assert.True(ratios.Max() / ratios.Min() > 1.5, $"decile ratios range only {ratios.Min():F1}..{ratios.Max():F1}");
    }

    [Fact]
    public void Generate_HotSet_DiffersPerLayer()
    {
        var sums = TraceGenerator.Generate(new TraceOptions { Layers = 2, Steps = 5 }).Sum();
        var top0 = TopSet(sums.Layer(0), 32);
        var top1 = TopSet(sums.Layer(1), 32);
        Assert.True(top0.Intersect(top1).Count() < 16, "two layers share most of their hot set");
    }

    [Fact]
    public void Generate_NoSkew_IsNearlyUniform()
    {
        var sums = TraceGenerator.Generate(s_small with { Skew = 0, StepNoise = 0, Steps = 200 }).Sum();
        var row = sums.Layer(0).ToArray();
        Assert.True(row.Max() / row.Min() < 1.2, $"max/min = {row.Max() / row.Min():F2}");
    }

    [Fact]
    public void Generate_Drift_ChangesTheRankingSlowly()
    {
        var options = new TraceOptions { Layers = 4, Experts = 64, Steps = 800, TokensPerStep = 4096, TopK = 4, Seed = 3 };
        var drifting = TraceGenerator.Generate(options with { Drift = 0.05, DriftHorizon = 1000 });
        var stable = TraceGenerator.Generate(options);

        var near = WindowCorrelation(drifting, 0, 50, 50);
        var far = WindowCorrelation(drifting, 0, 750, 50);
        var stableFar = WindowCorrelation(stable, 0, 750, 50);
        Assert.True(near > 0.9, $"adjacent windows correlate only {near:F3}: drift is not slow");
        Assert.True(far < near - 0.15, $"windows 750 steps apart correlate {far:F3} vs adjacent {near:F3}: no drift");
        Assert.True(stableFar > 0.95, $"a stable trace decorrelates ({stableFar:F3})");
    }

    [Fact]
    public void Generate_Switch_ChangesTheRankingAbruptly()
    {
        var options = new TraceOptions { Layers = 4, Experts = 64, Steps = 200, TokensPerStep = 4096, TopK = 4, SwitchEvery = 100, Seed = 5 };
        var trace = TraceGenerator.Generate(options);
        var within = WindowCorrelation(trace, 0, 50, 50);    // [0, 50) vs [50, 100): same regime
        var across = WindowCorrelation(trace, 50, 100, 50);  // [50, 100) vs [100, 150): a switch at 100
        var after = WindowCorrelation(trace, 100, 150, 50);  // same regime again
        Assert.True(within > 0.95 && after > 0.95, $"within-regime correlation {within:F3} / {after:F3}");
        Assert.True(across < within - 0.3, $"across the switch {across:F3} vs within {within:F3}");

        // The step right after the switch already differs: it is abrupt, not gradual.
        var stepBefore = StepCorrelation(trace, 98, 99);
        var stepAcross = StepCorrelation(trace, 99, 100);
        Assert.True(stepAcross < stepBefore - 0.2, $"step correlation across {stepAcross:F3} vs before {stepBefore:F3}");
    }

    public static TheoryData<TraceOptions, string> BadOptions() => new()
    {
        { s_small with { Layers = 0 }, "--layers" },
        { s_small with { Experts = 0 }, "--experts" },
        { s_small with { Steps = 0 }, "--steps" },
        { s_small with { Steps = 100_000, Layers = 1000, Experts = 1000 }, "--steps" },
        { s_small with { TokensPerStep = 0 }, "--tokens" },
        { s_small with { TokensPerStep = (1 << 24) + 1 }, "--tokens" },
        { s_small with { TopK = 33 }, "--top-k" },
        { s_small with { TopK = 0 }, "--top-k" },
        { s_small with { Skew = -1 }, "--skew" },
        { s_small with { Skew = double.NaN }, "--skew" },
        { s_small with { SkewSpread = 2 }, "--skew-spread" },
        { s_small with { Drift = -0.1 }, "--drift" },
        { s_small with { DriftHorizon = 0 }, "--drift-horizon" },
        { s_small with { SwitchEvery = -1 }, "--switch-every" },
        { s_small with { SwitchShare = 1.5 }, "--switch-share" },
        { s_small with { StepNoise = -1 }, "--step-noise" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Generate_BadOption_NamesOptionAndRule(TraceOptions options, string option)
    {
        var ex = Assert.Throws<InputException>(() => TraceGenerator.Generate(options));
        Assert.Equal(option, ex.Subject);
        Assert.False(string.IsNullOrEmpty(ex.Rule));
        Assert.False(string.IsNullOrEmpty(ex.Detail));
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Inclusion_CapsHotExpertsAtOne_AndSumsToK()
    {
        double[] weights = [100, 50, 1, 1, 1, 1];
        var q = new double[weights.Length];
        TraceGenerator.Inclusion(weights, 3, q);
        Assert.Equal(1, q[0]);
        Assert.Equal(1, q[1]);
        Assert.Equal(3, q.Sum(), 12);
        Assert.All(q[2..], v => Assert.Equal(0.25, v, 12));
    }

    [Fact]
    public void Inclusion_ZeroWeights_ShareTheRest()
    {
        double[] weights = [1, 0, 0];
        var q = new double[3];
        TraceGenerator.Inclusion(weights, 2, q);
        Assert.Equal(new[] { 1.0, 0.5, 0.5 }, q);
    }

    [Fact]
    public void DetMath_ExpAndLog_MatchTheRuntimeToAFewUlp()
    {
        var rng = new Xoshiro256(99);
        for (var i = 0; i < 20000; i++)
        {
            var x = (rng.NextDouble() - 0.5) * 1400;
            AssertClose(Math.Exp(x), DetMath.Exp(x), x);
            var y = Math.Exp((rng.NextDouble() - 0.5) * 1400);
            AssertClose(Math.Log(y), DetMath.Log(y), y);
        }

        Assert.Equal(0, DetMath.Exp(-800));
        Assert.Equal(double.PositiveInfinity, DetMath.Exp(800));
        Assert.Equal(double.NegativeInfinity, DetMath.Log(0));
        Assert.True(double.IsNaN(DetMath.Log(-1)));
        AssertClose(Math.Log(double.Epsilon), DetMath.Log(double.Epsilon), double.Epsilon);

        static void AssertClose(double expected, double actual, double at) =>
            Assert.True(Math.Abs(expected - actual) <= 4e-16 * Math.Abs(expected) + 1e-300, $"at {at:R}: expected {expected:R}, got {actual:R}");
    }

    [Theory]
    [InlineData(4096, 0.001)]
    [InlineData(4096, 0.03)]
    [InlineData(4096, 0.7)]
    [InlineData(20, 0.5)]
    public void Binomial_MeanAndVariance_MatchTheLaw(int n, double p)
    {
        var rng = new Xoshiro256(1234);
        const int draws = 40000;
        double sum = 0, sumSq = 0;
        for (var i = 0; i < draws; i++)
        {
            var x = rng.NextBinomial(n, p);
            Assert.InRange(x, 0, n);
            sum += x;
            sumSq += (double)x * x;
        }

        var mean = sum / draws;
        var variance = (sumSq / draws) - (mean * mean);
        var expectedVariance = n * p * (1 - p);
        Assert.True(Math.Abs(mean - (n * p)) < 5 * Math.Sqrt(expectedVariance / draws) + 1e-9, $"mean {mean}, expected {n * p}");
        Assert.True(Math.Abs(variance - expectedVariance) < 0.05 * expectedVariance, $"variance {variance}, expected {expectedVariance}");
    }

    [Fact]
    public void Gaussian_MomentsAndTail_MatchTheStandardNormal()
    {
        var rng = new Xoshiro256(77);
        const int draws = 200000;
        double sum = 0, sumSq = 0;
        var beyond3 = 0;
        for (var i = 0; i < draws; i++)
        {
            var z = rng.NextGaussian();
            sum += z;
            sumSq += z * z;
            beyond3 += Math.Abs(z) > 3 ? 1 : 0;
        }

        Assert.InRange(sum / draws, -0.01, 0.01);
        Assert.InRange(sumSq / draws, 0.98, 1.02);
        Assert.InRange(beyond3 / (double)draws, 0.0027 * 0.8, 0.0027 * 1.2); // P(|Z| > 3) = 0.0027
    }

    private static double DecileRatio(ReadOnlySpan<double> layer)
    {
        var sorted = layer.ToArray();
        Array.Sort(sorted);
        var tenth = Math.Max(1, sorted.Length / 10);
        return sorted[^tenth..].Average() / Math.Max(1e-9, sorted[..tenth].Average());
    }

    private static HashSet<int> TopSet(ReadOnlySpan<double> layer, int count)
    {
        var values = layer.ToArray();
        return [.. Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).Take(count)];
    }

    /// <summary>Mean over layers of the Pearson correlation of log-loads summed over two windows.</summary>
    private static double WindowCorrelation(LoadTrace trace, int startA, int startB, int length)
    {
        var a = trace.Sum(startA, length);
        var b = trace.Sum(startB, length);
        return Enumerable.Range(0, trace.Layers).Average(l => Pearson(a.Layer(l).ToArray(), b.Layer(l).ToArray()));
    }

    private static double StepCorrelation(LoadTrace trace, int stepA, int stepB) =>
        WindowCorrelation(trace, stepA, stepB, 1);

    private static double Pearson(double[] x, double[] y)
    {
        var lx = x.Select(v => Math.Log(v + 1)).ToArray();
        var ly = y.Select(v => Math.Log(v + 1)).ToArray();
        double mx = lx.Average(), my = ly.Average(), sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < lx.Length; i++)
        {
            sxy += (lx[i] - mx) * (ly[i] - my);
            sxx += (lx[i] - mx) * (lx[i] - mx);
            syy += (ly[i] - my) * (ly[i] - my);
        }

        return sxy / Math.Sqrt(sxx * syy);
    }

    internal static ulong Fingerprint(ReadOnlySpan<float> values)
    {
        // FNV-1a over the IEEE bits.
        var hash = 14695981039346656037UL;
        foreach (var v in values)
        {
            hash = unchecked((hash ^ BitConverter.SingleToUInt32Bits(v)) * 1099511628211UL);
        }

        return hash;
    }
}
