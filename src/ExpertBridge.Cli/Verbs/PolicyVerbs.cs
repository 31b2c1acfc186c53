using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Scripting;

namespace ExpertBridge.Cli.Verbs;

/// <summary>
/// <c>policy check F.csx...</c>: compiles each script, runs the API guard, loads it, calls it twice on a small
/// synthetic case and validates what it returns (<see cref="PolicyCheck"/>). Prints every diagnostic as
/// <c>file:line:col: message</c>, then one summary line per script; exits 2 when any script fails.
/// </summary>
internal sealed class PolicyCheckVerb : Verb
{
    private static readonly CliOption<string> s_script = Option.InputFile("--script", "a policy script to check (the option name may be left out)").AsRequired().AsRepeatable().AsPositional();

    public override string Name => "policy check";

    public override string Summary => "compile a policy script, run the API guard, call it on a small synthetic case and validate the result";

    public override string Description =>
        "Checks policy scripts before they are deployed: compiles each one (errors and warnings as file:line:col: message, "
        + "#load'ed files included), refuses scripts that touch the file system, processes, network, reflection, unsafe "
        + "code or P/Invoke, loads it, calls it twice through the safe invoker (time limit, placement validation) on a "
        + "synthetic case of 3 layers x 8 experts on 2 nodes x 2 devices x 3 slots whose hot experts change halfway, and "
        + "prints what it checked. Exit code 0 when every script passed, 2 when one did not."
        + Environment.NewLine + Environment.NewLine
        + "--option values reach the script's top level over its header's, as they do in replay.";

    public override string Example => "expertbridge policy check policies/omniplacement.csx policies/eplb.csx";

    public override IReadOnlyList<CliOption> Options { get; } = [s_script, SharedOptions.PolicyOption, SharedOptions.PolicyTimeout];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var options = context.Scripting with { Options = context.PolicyOptions, Watch = false };
        var failed = 0;
        foreach (var script in args.GetAll(s_script))
        {
            var result = PolicyCheck.Run(script, options, context.Cancellation);
            foreach (var line in result.Lines)
            {
                context.Stdout.WriteLine(line);
            }

            failed += result.Success ? 0 : 1;
        }

        return failed == 0 ? Cli.Ok : Cli.UserError;
    }
}

/// <summary><c>policy list [--dir D]</c>: the built-in policies, then the scripts of a directory with their header line.</summary>
internal sealed class PolicyListVerb : Verb
{
    private static readonly CliOption<string> s_dir = Option.Text("--dir", "D", "directory of policy scripts (*.csx directly in it)")
        .WithDefault($"${CliServices.PolicyDirectoryVariable}, else policies");

    public override string Name => "policy list";

    public override string Summary => "list the built-in policies and the scripts of a policy directory with their descriptions";

    public override string Description =>
        "Lists what --policy accepts: the built-in policies, then every *.csx directly in the directory with the first line "
        + "of its header comment (or its // @description) and its // @option values. Scripts are read, not compiled "
        + "(policy check compiles). A bare NAME given to --policy is looked up as NAME.csx in the policy directory "
        + $"(${CliServices.PolicyDirectoryVariable}, else ./policies); a script named like a built-in is listed with .csx "
        + "and must be passed as a path. Header problems are printed as file:line:col: message after the table.";

    public override string Example => "expertbridge policy list --dir policies";

    public override IReadOnlyList<CliOption> Options { get; } = [s_dir];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        // The default directory may be absent (a machine with built-ins only); a directory the user names must exist.
        var explicitDir = args.TryGet(s_dir, out var given);
        var dir = explicitDir ? given : context.Scripting.PolicyDirectory;
        var listDir = explicitDir || (dir is not null && Directory.Exists(dir));
        var listings = PolicyCatalog.List(listDir ? dir : null);

        var table = new TextTable("policy", "kind", "description", "options") { TextColumns = 4 };
        foreach (var p in listings)
        {
            var options = string.Join(", ", p.Options.Select(o => $"{o.Key}={o.Value}"));
            var kind = p.Kind == PolicyKind.BuiltIn ? "built-in" : "script";
            table.Add(p.Name, kind, p.Description.Length > 0 ? p.Description : "-", options.Length > 0 ? options : "-");
        }

        table.WriteTo(context.Stdout);
        if (!listDir)
        {
            context.Stdout.WriteLine($"(no policy directory '{dir}' here: --dir D or ${CliServices.PolicyDirectoryVariable} lists one)");
        }

        foreach (var problem in listings.SelectMany(p => p.Problems))
        {
            context.Stdout.WriteLine(problem.ToString());
        }

        return Cli.Ok;
    }
}
