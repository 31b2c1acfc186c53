using System.Text;

namespace ExpertBridge.Bindings.Generator;

/// <summary>
/// <c>--all --root &lt;repo&gt;</c> or <c>--target &lt;name&gt;</c> [<c>--root</c>]; <c>--check</c> compares with the
/// committed files instead of writing. Exit codes: 0 done (or up to date), 1 <c>--check</c> found differences,
/// 2 a usage or input mistake (one line naming the input and the rule).
/// </summary>
public static class GeneratorCli
{
    private const string Usage = "usage: ExpertBridge.Bindings.Generator (--all | --target <name>) [--root <repo>] [--check]";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        try
        {
            var (all, targets, root, check) = ParseArgs(args);
            if (!all && targets.Count == 0) throw new GeneratorException($"{Usage} (rule: name --all or a --target)");
            root = Path.GetFullPath(root ?? FindRoot(Directory.GetCurrentDirectory()));
            var names = all ? BindingGenerator.DiscoverTargets(root) : targets;
            if (names.Count == 0) throw new GeneratorException($"--root {root}: no bindings/<target>/settings.json found (rule: targets exist)");
            var differences = 0;
            foreach (var name in names)
            {
                var files = BindingGenerator.Generate(root, name);
                differences += check ? Check(root, name, files, stdout) : Write(root, files, stdout);
            }
            if (check)
            {
                stdout.WriteLine(differences == 0
                    ? $"bindings up to date ({names.Count} targets)"
                    : $"{differences} generated files differ from the committed ones; run `build.ps1 generate`");
                return differences == 0 ? 0 : 1;
            }
            return 0;
        }
        catch (GeneratorException e)
        {
            stderr.WriteLine(e.Message);
            return 2;
        }
    }

    private static (bool All, List<string> Targets, string? Root, bool Check) ParseArgs(string[] args)
    {
        var all = false;
        var check = false;
        string? root = null;
        var targets = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new GeneratorException($"{args[i]}: needs a value (rule: {Usage})");
            switch (args[i])
            {
                case "--all": all = true; break;
                case "--check": check = true; break;
                case "--root": root = Value(); break;
                case "--target": targets.Add(Value()); break;
                default: throw new GeneratorException($"{args[i]}: unknown argument (rule: {Usage})");
            }
        }
        if (all && targets.Count > 0) throw new GeneratorException($"--all and --target: choose one (rule: {Usage})");
        return (all, targets, root, check);
    }

    /// <summary>The nearest folder above <paramref name="start"/> holding Bridge.sln.</summary>
    private static string FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bridge.sln"))) return dir.FullName;
        }
        throw new GeneratorException($"{start}: not inside the repository (no Bridge.sln above it); pass --root (rule: {Usage})");
    }

    private static int Write(string root, IReadOnlyList<GeneratedFile> files, TextWriter stdout)
    {
        foreach (var f in files)
        {
            var path = Path.Combine(root, f.RelativePath);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var bytes = new UTF8Encoding(false).GetBytes(f.Contents);
            if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes))
            {
                stdout.WriteLine($"unchanged {f.RelativePath}");
                continue;
            }
            File.WriteAllBytes(path, bytes);
            stdout.WriteLine($"wrote     {f.RelativePath}");
        }
        return 0;
    }

    private static int Check(string root, string target, IReadOnlyList<GeneratedFile> files, TextWriter stdout)
    {
        var differences = 0;
        foreach (var f in files)
        {
            var path = Path.Combine(root, f.RelativePath);
            if (!File.Exists(path))
            {
                stdout.WriteLine($"missing   {f.RelativePath}");
                differences++;
            }
            else if (!File.ReadAllBytes(path).AsSpan().SequenceEqual(new UTF8Encoding(false).GetBytes(f.Contents)))
            {
                stdout.WriteLine($"differs   {f.RelativePath}");
                differences++;
            }
        }
        // A stale file in Generated/ that the generator no longer produces is a difference too.
        var generatedDir = Path.Combine(root, "bindings", target, "Generated");
        if (Directory.Exists(generatedDir))
        {
            var expected = files.Select(f => Path.GetFullPath(Path.Combine(root, f.RelativePath))).ToHashSet(StringComparer.Ordinal);
            foreach (var path in Directory.GetFiles(generatedDir).Where(p => p.EndsWith(".g.cs", StringComparison.Ordinal) || Path.GetFileName(p).StartsWith("abi_check.", StringComparison.Ordinal)))
            {
                if (expected.Contains(Path.GetFullPath(path))) continue;
                stdout.WriteLine($"stale     {Path.GetRelativePath(root, path)}");
                differences++;
            }
        }
        return differences;
    }
}
