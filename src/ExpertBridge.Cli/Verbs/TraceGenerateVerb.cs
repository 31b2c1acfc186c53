using System.Globalization;
using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Traces;

namespace ExpertBridge.Cli.Verbs;

/// <summary><c>trace generate</c>: a synthetic routing trace (see docs/trace-model.md for the model).</summary>
internal sealed class TraceGenerateVerb : Verb
{
    private static readonly TraceOptions s_defaults = new();
    private static readonly CliOption<int> s_layers = Option.Int("--layers", "L", "MoE layers", min: 1).WithDefault(Text(s_defaults.Layers));
    private static readonly CliOption<int> s_experts = Option.Int("--experts", "E", "routed experts per layer", min: 1).WithDefault(Text(s_defaults.Experts));
    private static readonly CliOption<int> s_steps = Option.Int("--steps", "T", "steps (forward passes)", min: 1).WithDefault(Text(s_defaults.Steps));
    private static readonly CliOption<int> s_tokens = Option.Int("--tokens", "B", "tokens per step", min: 1).WithDefault(Text(s_defaults.Tokens));
    private static readonly CliOption<int> s_topK = Option.Int("--top-k", "K", "distinct experts each token picks", min: 1).WithDefault(Text(s_defaults.TopK));
    private static readonly CliOption<double> s_skew = Option.Double("--skew", "s", "Zipf-like popularity exponent (varies per layer around s)", min: 0).WithDefault(Text(s_defaults.Skew));
    private static readonly CliOption<double> s_drift = Option.Double("--drift", "d", "slow drift of popularity per step", min: 0).WithDefault(Text(s_defaults.Drift));
    private static readonly CliOption<int> s_switchEvery = Option.Int("--switch-every", "n", "an abrupt workload shift every n steps (0: never)", min: 0).WithDefault(Text(s_defaults.SwitchEvery));
    private static readonly CliOption<ulong> s_seed = new CliOption<ulong>("--seed", "x", "random seed; the same seed gives the same trace", ParseSeed).WithDefault(Text(s_defaults.Seed));
    private static readonly CliOption<string> s_out = Option.OutputFile("--out", "where to write the trace: .npy (float32 [T, L, E]) or .json").AsRequired();

    public override string Name => "trace generate";

    public override string Summary => "write a synthetic routing trace (skewed, drifting, with workload switches)";

    public override string Description =>
        "Generates tokens per (step, layer, expert) like real MoE routing: per layer a Zipf-like popularity with its own "
        + "skew and its own hot experts, slow drift, abrupt workload switches, and per-step sampling noise; every token "
        + "picks top-k distinct experts, so each layer's step sums to tokens x top-k. The model is written up in "
        + "docs/trace-model.md.";

    public override string Example => "expertbridge trace generate --layers 58 --experts 256 --steps 1000 --tokens 4096 --top-k 8 --skew 1.2 --drift 0.02 --switch-every 400 --seed 7 --out trace.npy";

    public override IReadOnlyList<CliOption> Options { get; } =
        [s_layers, s_experts, s_steps, s_tokens, s_topK, s_skew, s_drift, s_switchEvery, s_seed, s_out];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var options = s_defaults with
        {
            Layers = args.Get(s_layers, s_defaults.Layers),
            Experts = args.Get(s_experts, s_defaults.Experts),
            Steps = args.Get(s_steps, s_defaults.Steps),
            Tokens = args.Get(s_tokens, s_defaults.Tokens),
            TopK = args.Get(s_topK, s_defaults.TopK),
            Skew = args.Get(s_skew, s_defaults.Skew),
            Drift = args.Get(s_drift, s_defaults.Drift),
            SwitchEvery = args.Get(s_switchEvery, s_defaults.SwitchEvery),
            Seed = args.Get(s_seed, s_defaults.Seed),
        };

        var trace = TraceGenerator.Generate(options);
        var outPath = args.Get(s_out);
        LoadFiles.Write(outPath, trace);
        context.Stdout.WriteLine(
            $"wrote {outPath}: {trace.Steps} steps x {trace.Layers} layers x {trace.Experts} experts "
            + $"({Text(options.Tokens)} tokens x top-{Text(options.TopK)}, skew {Text(options.Skew)}, drift {Text(options.Drift)}, "
            + $"switch every {Text(options.SwitchEvery)}, seed {Text(options.Seed)})");
        return Cli.Ok;
    }

    private static ulong ParseSeed(string option, string raw) =>
        ulong.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new Core.InputException(option, "a whole number >= 0", $"'{raw}' is not a whole number >= 0");

    private static string Text<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);
}
