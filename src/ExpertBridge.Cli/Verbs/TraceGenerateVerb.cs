using System.Globalization;
using ExpertBridge.Cli.Arguments;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Traces;

namespace ExpertBridge.Cli.Verbs;

/// <summary>
/// <c>trace generate</c>: a synthetic routing trace (docs/trace-model.md). Options only parse here; their ranges are
/// <see cref="TraceOptions.Validate"/>'s, so the rules live in one place.
/// </summary>
internal sealed class TraceGenerateVerb : Verb
{
    private static readonly TraceOptions s_defaults = new();
    private static readonly CliOption<int> s_layers = Option.Int("--layers", "L", "MoE layers").WithDefault(Text(s_defaults.Layers));
    private static readonly CliOption<int> s_experts = Option.Int("--experts", "E", "routed experts per layer").WithDefault(Text(s_defaults.Experts));
    private static readonly CliOption<int> s_steps = Option.Int("--steps", "T", "steps (forward passes)").WithDefault(Text(s_defaults.Steps));
    private static readonly CliOption<int> s_tokens = Option.Int("--tokens", "B", "tokens per step; each layer's step sums to B x top-k").WithDefault(Text(s_defaults.TokensPerStep));
    private static readonly CliOption<int> s_topK = Option.Int("--top-k", "K", "distinct experts each token picks").WithDefault(Text(s_defaults.TopK));
    private static readonly CliOption<double> s_skew = Option.Double("--skew", "s", "Zipf exponent of expert popularity (0 = uniform)").WithDefault(Text(s_defaults.Skew));
    private static readonly CliOption<double> s_skewSpread = Option.Double("--skew-spread", "r", "per-layer variation of the exponent: layer l uses s x (1 + r x u), u in [-1, 1]").WithDefault(Text(s_defaults.SkewSpread));
    private static readonly CliOption<double> s_drift = Option.Double("--drift", "d", "per-step random walk of each expert's log-popularity (0 = none)").WithDefault(Text(s_defaults.Drift));
    private static readonly CliOption<int> s_driftHorizon = Option.Int("--drift-horizon", "h", "mean-reversion time of the drift, in steps").WithDefault(Text(s_defaults.DriftHorizon));
    private static readonly CliOption<int> s_switchEvery = Option.Int("--switch-every", "n", "an abrupt workload shift every n steps (0 = never)").WithDefault(Text(s_defaults.SwitchEvery));
    private static readonly CliOption<double> s_switchShare = Option.Double("--switch-share", "f", "share of the hot set replaced at each shift").WithDefault(Text(s_defaults.SwitchShare));
    private static readonly CliOption<double> s_stepNoise = Option.Double("--step-noise", "z", "per-step log-normal jitter of popularity (batch composition)").WithDefault(Text(s_defaults.StepNoise));
    private static readonly CliOption<long> s_seed = Option.Long("--seed", "x", "random seed; the same options and seed give the same trace").WithDefault(Text(s_defaults.Seed));
    private static readonly CliOption<string> s_out = Option.OutputFile("--out", "where to write the trace: .npy (float32 [T, L, E]) or .json").AsRequired();

    public override string Name => "trace generate";

    public override string Summary => "write a synthetic routing trace (skewed, drifting, with workload switches)";

    public override string Description =>
        "Generates tokens per (step, layer, expert) like real MoE routing: per layer a Zipf-like popularity with its own "
        + "skew and its own hot experts (hot experts an order of magnitude above cold ones), slow drift, abrupt workload "
        + "switches, and per-step noise; every token picks top-k distinct experts, so each layer's step sums to "
        + "tokens x top-k and no expert gets more than the step's tokens. The model is written up in docs/trace-model.md.";

    public override string Example => "expertbridge trace generate --layers 58 --experts 256 --steps 1000 --tokens 4096 --top-k 8 --skew 1.2 --drift 0.02 --switch-every 400 --seed 7 --out trace.npy";

    public override IReadOnlyList<CliOption> Options { get; } =
        [s_layers, s_experts, s_steps, s_tokens, s_topK, s_skew, s_skewSpread, s_drift, s_driftHorizon, s_switchEvery, s_switchShare, s_stepNoise, s_seed, s_out];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var options = s_defaults with
        {
            Layers = args.Get(s_layers, s_defaults.Layers),
            Experts = args.Get(s_experts, s_defaults.Experts),
            Steps = args.Get(s_steps, s_defaults.Steps),
            TokensPerStep = args.Get(s_tokens, s_defaults.TokensPerStep),
            TopK = args.Get(s_topK, s_defaults.TopK),
            Skew = args.Get(s_skew, s_defaults.Skew),
            SkewSpread = args.Get(s_skewSpread, s_defaults.SkewSpread),
            Drift = args.Get(s_drift, s_defaults.Drift),
            DriftHorizon = args.Get(s_driftHorizon, s_defaults.DriftHorizon),
            SwitchEvery = args.Get(s_switchEvery, s_defaults.SwitchEvery),
            SwitchShare = args.Get(s_switchShare, s_defaults.SwitchShare),
            StepNoise = args.Get(s_stepNoise, s_defaults.StepNoise),
            Seed = args.Get(s_seed, s_defaults.Seed),
        };

        var trace = TraceGenerator.Generate(options);
        var outPath = args.Get(s_out);
        LoadFiles.Write(outPath, trace);
        context.Stdout.WriteLine(
            $"wrote {outPath}: {trace.Steps} steps x {trace.Layers} layers x {trace.Experts} experts "
            + $"({Text(options.TokensPerStep)} tokens x top-{Text(options.TopK)}, skew {Text(options.Skew)}, drift {Text(options.Drift)}, "
            + $"switch every {Text(options.SwitchEvery)}, seed {Text(options.Seed)})");
        return Cli.Ok;
    }

    private static string Text<T>(T value)
        where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);
}
