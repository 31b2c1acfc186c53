namespace ExpertBridge.Core.Traces;

/// <summary>
/// Synthetic MoE routing traces with the features real ones show: a Zipf-like popularity law whose exponent differs per
/// layer, a random hot set per layer, slow drift, abrupt workload shifts and per-step noise; every token picks top-k
/// distinct experts. The model and the sampling approximation are written up in docs/trace-model.md.
/// Deterministic: the same options give the same trace, bit for bit, on every machine (own PRNG and exp/log).
/// Each layer is an independent process with its own random stream, so layers could be generated in parallel.
/// </summary>
public static class TraceGenerator
{
    /// <summary>Size of the hot set whose members a workload shift swaps out: the top eighth of the ranking.</summary>
    internal const int HotSetDivisor = 8;

    /// <summary>The Zipf-Mandelbrot head offset is experts / this: it flattens the very top of the law, so the hottest expert
    /// is about 11 times the mean at the default skew instead of 65 for a pure Zipf law over 256 experts.</summary>
    internal const double HeadOffsetDivisor = 32;

    /// <summary>Generates a trace [steps, layers, experts] of token counts.</summary>
    public static LoadTrace Generate(TraceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var values = new float[(long)options.Steps * options.Layers * options.Experts];
        for (var layer = 0; layer < options.Layers; layer++)
        {
            var process = new LayerProcess(options, layer);
            for (var step = 0; step < options.Steps; step++)
            {
                var offset = (((long)step * options.Layers) + layer) * options.Experts;
                process.Step(step, values.AsSpan((int)offset, options.Experts));
            }
        }

        return new LoadTrace(options.Steps, options.Layers, options.Experts, values, "generated trace");
    }

    /// <summary>One layer's routing process: popularity state plus the per-step sampler.</summary>
    private sealed class LayerProcess
    {
        private readonly TraceOptions _o;
        private readonly Xoshiro256 _rng;
        private readonly double[] _rankLogit;   // log-popularity of rank r under the layer's Zipf law
        private readonly int[] _expertAtRank;   // the layer's hot-set permutation
        private readonly double[] _baseLogit;   // per expert: _rankLogit[rank of expert]
        private readonly double[] _drift;       // per expert: Ornstein-Uhlenbeck state
        private readonly double[] _weight;
        private readonly double[] _inclusion;
        private readonly double[] _shareWeight;
        private readonly int[] _counts;
        private readonly int[] _scratch;
        private readonly double _driftKeep;

        public LayerProcess(TraceOptions options, int layer)
        {
            _o = options;
            var e = options.Experts;
            _rng = new Xoshiro256(unchecked((ulong)options.Seed), (ulong)layer + 1);
            var skew = options.Skew * (1 + (options.SkewSpread * ((2 * _rng.NextDouble()) - 1)));
            var head = e / HeadOffsetDivisor;
            _rankLogit = new double[e];
            for (var r = 0; r < e; r++)
            {
                _rankLogit[r] = -skew * DetMath.Log(r + 1 + head);
            }

            _expertAtRank = new int[e];
            for (var r = 0; r < e; r++)
            {
                _expertAtRank[r] = r;
            }

            Shuffle(_expertAtRank, e);
            _baseLogit = new double[e];
            for (var r = 0; r < e; r++)
            {
                _baseLogit[_expertAtRank[r]] = _rankLogit[r];
            }

            // Drift starts from its stationary law, so the trace has no burn-in transient.
            _drift = new double[e];
            var theta = 1.0 / options.DriftHorizon;
            _driftKeep = 1 - theta;
            if (options.Drift > 0)
            {
                var stationary = options.Drift / Math.Sqrt(theta * (2 - theta));
                for (var i = 0; i < e; i++)
                {
                    _drift[i] = stationary * _rng.NextGaussian();
                }
            }

            _weight = new double[e];
            _inclusion = new double[e];
            _shareWeight = new double[e];
            _counts = new int[e];
            _scratch = new int[e];
        }

        public void Step(int step, Span<float> destination)
        {
            if (_o.SwitchEvery > 0 && step > 0 && step % _o.SwitchEvery == 0)
            {
                Shift();
            }

            var e = _o.Experts;
            var maxLogit = double.NegativeInfinity;
            for (var i = 0; i < e; i++)
            {
                if (_o.Drift > 0)
                {
                    _drift[i] = (_driftKeep * _drift[i]) + (_o.Drift * _rng.NextGaussian());
                }

                var logit = _baseLogit[i] + _drift[i];
                if (_o.StepNoise > 0)
                {
                    logit += _o.StepNoise * _rng.NextGaussian();
                }

                _weight[i] = logit;
                maxLogit = Math.Max(maxLogit, logit);
            }

            for (var i = 0; i < e; i++)
            {
                _weight[i] = DetMath.Exp(_weight[i] - maxLogit);
            }

            Inclusion(_weight, _o.TopK, _inclusion);
            var b = _o.TokensPerStep;
            long total = 0;
            for (var i = 0; i < e; i++)
            {
                _counts[i] = _rng.NextBinomial(b, _inclusion[i]);
                total += _counts[i];
            }

            FixTotal(((long)b * _o.TopK) - total);
            for (var i = 0; i < e; i++)
            {
                destination[i] = _counts[i];
            }
        }

        /// <summary>
        /// A workload shift: a share of the hot set (top eighth of the ranking) trades places with experts drawn from the
        /// rest, so that many hot experts turn cold and as many cold ones turn hot at once.
        /// </summary>
        private void Shift()
        {
            var e = _o.Experts;
            var hot = Math.Max(1, (e + HotSetDivisor - 1) / HotSetDivisor);
            var moves = Math.Min((int)Math.Round(hot * _o.SwitchShare), e - hot);
            if (moves <= 0)
            {
                return;
            }

            // Partial Fisher-Yates: the first `moves` entries of each range are a uniform sample without replacement.
            for (var r = 0; r < e; r++)
            {
                _scratch[r] = r;
            }

            for (var i = 0; i < moves; i++)
            {
                Swap(_scratch, i, i + _rng.NextInt(hot - i));
                Swap(_scratch, hot + i, hot + i + _rng.NextInt(e - hot - i));
            }

            for (var i = 0; i < moves; i++)
            {
                var hotRank = _scratch[i];
                var coldRank = _scratch[hot + i];
                Swap(_expertAtRank, hotRank, coldRank);
                _baseLogit[_expertAtRank[hotRank]] = _rankLogit[hotRank];
                _baseLogit[_expertAtRank[coldRank]] = _rankLogit[coldRank];
            }
        }

        /// <summary>
        /// Moves the independent binomial counts onto the exact total B x k. The correction is spread by systematic
        /// sampling (one random offset, then evenly spaced points on the cumulative weights) with weights proportional to
        /// each count's variance q(1 - q), so each expert's expected share is exact and the pass costs O(experts + deficit).
        /// Counts never leave [0, B]; a point that would push one out is carried to the next pass.
        /// </summary>
        private void FixTotal(long deficit)
        {
            var e = _o.Experts;
            var b = _o.TokensPerStep;
            while (deficit != 0)
            {
                var direction = deficit > 0 ? 1 : -1;
                var sum = 0.0;
                for (var i = 0; i < e; i++)
                {
                    var room = direction > 0 ? _counts[i] < b : _counts[i] > 0;
                    var w = room ? _inclusion[i] * (1 - _inclusion[i]) : 0;
                    _shareWeight[i] = w;
                    sum += w;
                }

                if (sum <= 0)
                {
                    // Only experts with q in {0, 1} have room (rare, tiny layers): use every expert with room equally.
                    for (var i = 0; i < e; i++)
                    {
                        _shareWeight[i] = direction > 0 ? (_counts[i] < b ? 1 : 0) : (_counts[i] > 0 ? 1 : 0);
                        sum += _shareWeight[i];
                    }
                }

                var points = Math.Abs(deficit);
                var spacing = sum / points;
                var next = _rng.NextDouble() * spacing;
                var edge = 0.0;
                for (var i = 0; i < e && points > 0; i++)
                {
                    edge += _shareWeight[i];
                    while (next < edge && points > 0)
                    {
                        next += spacing;
                        points--;
                        var updated = _counts[i] + direction;
                        if (updated >= 0 && updated <= b)
                        {
                            _counts[i] = updated;
                            deficit -= direction;
                        }
                    }
                }
            }
        }

        private void Shuffle(int[] values, int count)
        {
            for (var i = count - 1; i > 0; i--)
            {
                Swap(values, i, _rng.NextInt(i + 1));
            }
        }

        private static void Swap(int[] values, int i, int j) => (values[i], values[j]) = (values[j], values[i]);
    }

    /// <summary>
    /// Per-token inclusion probabilities q_e = min(1, lambda w_e) with sum q = k (water-filling): the chance that a token
    /// picks expert e among its k distinct experts. Experts hot enough to be picked by every token are capped at 1.
    /// </summary>
    internal static void Inclusion(ReadOnlySpan<double> weights, int k, Span<double> inclusion)
    {
        // inclusion[i] is 1 once expert i is capped and 0 until the last pass assigns lambda w_i (< 1).
        var n = weights.Length;
        inclusion.Clear();
        var remaining = (double)k;
        while (true)
        {
            var free = 0.0;
            var freeCount = 0;
            for (var i = 0; i < n; i++)
            {
                if (inclusion[i] < 1)
                {
                    free += weights[i];
                    freeCount++;
                }
            }

            if (freeCount == 0)
            {
                return;
            }

            if (free <= 0)
            {
                // Only zero-weight experts are left (k close to the expert count): they share the rest evenly.
                Fill(inclusion, remaining / freeCount, weights, 0);
                return;
            }

            var lambda = remaining / free;
            var capped = false;
            for (var i = 0; i < n; i++)
            {
                if (inclusion[i] < 1 && lambda * weights[i] >= 1)
                {
                    inclusion[i] = 1;
                    remaining -= 1;
                    capped = true;
                }
            }

            if (!capped)
            {
                Fill(inclusion, 0, weights, lambda);
                return;
            }
        }

        static void Fill(Span<double> inclusion, double constant, ReadOnlySpan<double> weights, double lambda)
        {
            for (var i = 0; i < inclusion.Length; i++)
            {
                if (inclusion[i] < 1)
                {
                    inclusion[i] = constant + (lambda * weights[i]);
                }
            }
        }
    }
}
