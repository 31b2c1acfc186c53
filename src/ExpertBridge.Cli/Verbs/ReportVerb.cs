using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Cli.Reports;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;

namespace ExpertBridge.Cli.Verbs;

/// <summary>
/// <c>report</c>: replays several policies on one trace (as <c>replay</c> does) and writes a Markdown report with
/// PNG figures and the numbers as JSON into a directory.
/// </summary>
internal sealed class ReportVerb : Verb
{
    private static readonly CliOption<string> s_trace = Option.InputFile("--trace", "load trace [steps, layers, experts]: .npy or .json").AsRequired();
    private static readonly CliOption<string> s_policies = Option.Text("--policies", "A,B,C", "policies to compare (built-in names or .csx scripts), comma-separated").AsRequired();
    private static readonly CliOption<string> s_out = Option.Text("--out", "DIR", "directory for report.md, report.json and the figures (created if missing)").AsRequired();

    public override string Name => "report";

    public override string Summary => "replay policies on a trace and write a Markdown report with figures (per-layer load vs BestEP, heatmaps, imbalance, moves)";

    public override string Description =>
        "Replays each policy exactly as `replay` does and writes into DIR: report.md (what was replayed, a summary table, "
        + "the busiest device per layer against BestEP, the figures), report.json (the same numbers unrounded: replay's "
        + "fields per policy plus layerMaxLoadMean, overBestEp and layerBestEpMean) and PNG figures: layer-max-load.png "
        + "(busiest device per layer for each policy with the BestEP line), heatmap-POLICY.png (device x layer load "
        + "relative to the layer's mean, one colour scale for all), imbalance.png (imbalance at every scored step) and "
        + "moves.png (experts moved at every decision). Existing files of those names are replaced.";

    public override string Example => "expertbridge report --trace trace.npy --policies trivial,eplb,policies/omniplacement.csx --devices 32 --slots-per-device 9 --nodes 4 --groups 8 --window 100 --interval 50 --out report";

    public override IReadOnlyList<CliOption> Options { get; } =
    [s_trace, s_policies, .. SharedOptions.ReplaySet, s_out];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var topology = SharedOptions.Topology(args);
        var policyOptions = context.PolicyOptions;
        var outDir = OutputDirectory(args.Get(s_out));
        using var resolved = ResolvedPolicies.Resolve(context.Policies, SharedOptions.PolicyList("--policies", args.Get(s_policies)), policyOptions);
        var tracePath = args.Get(s_trace);
        var trace = LoadFiles.Read(tracePath);
        var options = SharedOptions.ReplayOptions(args, trace, policyOptions);
        var results = ReplayVerb.RunAll(trace, topology, resolved.Policies, options, context);

        if (ReportPlots.MissingFonts is { } fonts)
        {
            context.Stderr.WriteLine($"expertbridge: warning: {fonts}");
        }

        Directory.CreateDirectory(outDir);
        var files = ReportWriter.Write(outDir, new ReportInput(tracePath, trace, topology, options, results));
        context.Stdout.WriteLine($"trace: {trace.Steps} steps x {trace.Layers} layers x {trace.Experts} experts; {topology}; window {options.Window}, interval {options.Interval}");
        ReplayVerb.WriteTable(results, context.Stdout);
        context.Stdout.WriteLine($"wrote {files.Count} files to {outDir}: {string.Join(", ", files.Select(Path.GetFileName))}");
        return Cli.Ok;
    }

    /// <summary>The directory, checked before the replays run: not a file, and its parent exists.</summary>
    private static string OutputDirectory(string dir)
    {
        if (File.Exists(dir))
        {
            throw new InputException("--out", "a directory for the report", $"'{dir}' is a file");
        }

        var parent = Path.GetDirectoryName(Path.GetFullPath(dir));
        if (parent is not null && !Directory.Exists(parent))
        {
            throw new InputException("--out", "the report directory's parent exists", $"no directory '{parent}' for '{dir}'");
        }

        // Probed before the replays (the directory itself, or the parent it will be made in), so that a place the report
        // cannot be written to costs nothing; nothing is created until the replays have succeeded.
        Option.ProbeWritable("--out", Directory.Exists(dir) ? dir : parent ?? ".", "the report directory can be written");
        return dir;
    }
}
