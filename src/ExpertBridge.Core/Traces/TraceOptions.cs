namespace ExpertBridge.Core.Traces;

/// <summary>
/// Knobs of the synthetic routing-trace model (docs/trace-model.md). Defaults describe a DeepSeek-V3-like decode
/// workload: 58 MoE layers x 256 experts, top-8, 4096 tokens per step, hot experts an order of magnitude above cold
/// ones, no drift, no workload switches. Option names in messages are the CLI's (<c>trace generate</c>).
/// </summary>
public sealed record TraceOptions
{
    /// <summary>Default Zipf exponent: with the head offset (experts / 32) and the default spread, the hottest tenth of a
    /// 256-expert layer carries 11 to 54 times the tokens of the coldest tenth (median 24) and the hottest expert about
    /// 11 times the mean.</summary>
    public const double DefaultSkew = 1.2;

    /// <summary>MoE layers.</summary>
    public int Layers { get; init; } = 58;

    /// <summary>Routed (logical) experts per layer.</summary>
    public int Experts { get; init; } = 256;

    /// <summary>Steps (forward passes) in the trace.</summary>
    public int Steps { get; init; } = 1000;

    /// <summary>Tokens routed per step, B: each layer's step counts sum to B x top-k, each expert gets at most B.</summary>
    public int TokensPerStep { get; init; } = 4096;

    /// <summary>Distinct experts each token picks.</summary>
    public int TopK { get; init; } = 8;

    /// <summary>Zipf exponent s of the popularity law (p ~ (rank + experts/32)^-s); 0 = uniform.</summary>
    public double Skew { get; init; } = DefaultSkew;

    /// <summary>Per-layer variation of the exponent: layer l uses s x (1 + spread x u_l), u_l uniform in [-1, 1].</summary>
    public double SkewSpread { get; init; } = 0.25;

    /// <summary>Drift d: per-step standard deviation of the random walk on each expert's log-popularity; 0 = no drift.</summary>
    public double Drift { get; init; }

    /// <summary>Mean-reversion time of the drift in steps: the walk is an Ornstein-Uhlenbeck process whose stationary
    /// spread is about d x sqrt(horizon / 2), so the Zipf law's hot/cold contrast stays stationary.</summary>
    public int DriftHorizon { get; init; } = 1000;

    /// <summary>A workload shift every n steps (at steps n, 2n, ...); 0 = never.</summary>
    public int SwitchEvery { get; init; }

    /// <summary>Share of the hot set (the top eighth of the ranking) swapped with colder experts at each shift.</summary>
    public double SwitchShare { get; init; } = 0.5;

    /// <summary>Standard deviation of per-step log-normal jitter of each popularity (batch composition noise), on top
    /// of the sampling noise of B tokens.</summary>
    public double StepNoise { get; init; } = 0.05;

    /// <summary>Seed: the same options and seed give the same trace, bit for bit, on every machine.</summary>
    public long Seed { get; init; } = 1;

    /// <summary>Throws <see cref="InputException"/> naming the option and the rule when an option is out of range.</summary>
    public void Validate()
    {
        Require(Layers >= 1, "--layers", "layers >= 1", $"got {Layers}");
        Require(Experts >= 1, "--experts", "experts >= 1", $"got {Experts}");
        Require(Steps >= 1, "--steps", "steps >= 1", $"got {Steps}");
        Require((long)Steps * Layers * Experts <= Array.MaxLength, "--steps", "steps x layers x experts fits one array",
            $"{Steps} x {Layers} x {Experts} = {(long)Steps * Layers * Experts} values, the limit is {Array.MaxLength}");
        Require(TokensPerStep >= 1, "--tokens", "tokens per step >= 1", $"got {TokensPerStep}");
        Require(TokensPerStep <= 1 << 24, "--tokens", "tokens per step <= 2^24 (counts stay exact in float32)", $"got {TokensPerStep}");
        Require(TopK >= 1 && TopK <= Experts, "--top-k", "1 <= top-k <= experts", $"got top-k {TopK} with {Experts} experts");
        Require(double.IsFinite(Skew) && Skew >= 0 && Skew <= 16, "--skew", "0 <= skew <= 16", $"got {Skew}");
        Require(double.IsFinite(SkewSpread) && SkewSpread >= 0 && SkewSpread <= 1, "--skew-spread", "0 <= skew spread <= 1", $"got {SkewSpread}");
        Require(double.IsFinite(Drift) && Drift >= 0 && Drift <= 1, "--drift", "0 <= drift <= 1", $"got {Drift}");
        Require(DriftHorizon >= 1, "--drift-horizon", "drift horizon >= 1 step", $"got {DriftHorizon}");
        Require(SwitchEvery >= 0, "--switch-every", "switch-every >= 0 (0 = never)", $"got {SwitchEvery}");
        Require(double.IsFinite(SwitchShare) && SwitchShare >= 0 && SwitchShare <= 1, "--switch-share", "0 <= switch share <= 1", $"got {SwitchShare}");
        Require(double.IsFinite(StepNoise) && StepNoise >= 0 && StepNoise <= 4, "--step-noise", "0 <= step noise <= 4", $"got {StepNoise}");
    }

    private static void Require(bool condition, string option, string rule, string detail)
    {
        if (!condition)
        {
            throw new InputException(option, rule, detail);
        }
    }
}
