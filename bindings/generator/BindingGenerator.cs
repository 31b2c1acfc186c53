using ExpertBridge.Bindings.Generator.Emit;
using ExpertBridge.Bindings.Generator.Model;
using ExpertBridge.Bindings.Generator.Parsing;
using ExpertBridge.Bindings.Generator.Passes;

namespace ExpertBridge.Bindings.Generator;

/// <summary>
/// Parse, run the passes, emit: the files of one target (<c>bindings/&lt;target&gt;</c> holding <c>settings.json</c> and
/// its manifest), as paths relative to the repository root. Pure: it writes nothing.
/// </summary>
public static class BindingGenerator
{
    public const string SettingsFileName = "settings.json";

    /// <summary>The targets under <c>bindings/</c>: the folders that hold a settings file, in name order.</summary>
    public static IReadOnlyList<string> DiscoverTargets(string root)
    {
        var dir = Path.Combine(root, "bindings");
        if (!Directory.Exists(dir)) throw new GeneratorException($"--root {root}: no bindings/ folder (rule: the repository root)");
        return Directory.GetDirectories(dir)
            .Where(d => File.Exists(Path.Combine(d, SettingsFileName)))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    public static IReadOnlyList<GeneratedFile> Generate(string root, string target)
    {
        var targetDir = Path.Combine(root, "bindings", target);
        var settingsRel = $"bindings/{target}/{SettingsFileName}";
        var settingsPath = Path.Combine(targetDir, SettingsFileName);
        if (!File.Exists(settingsPath)) throw new GeneratorException($"--target {target}: {settingsRel} does not exist (rule: a target is a folder with settings.json)");
        var settings = TargetSettings.Load(settingsPath, settingsRel);
        var manifestRel = $"bindings/{target}/{settings.Manifest}";
        var manifestPath = Path.Combine(targetDir, settings.Manifest);
        if (!File.Exists(manifestPath)) throw new GeneratorException($"{settingsRel}: manifest '{settings.Manifest}' does not exist (rule: settings name an existing manifest)");
        var includeDir = Path.Combine(root, "bindings", "generator", "include");
        return Generate(settings, manifestRel, Path.GetFullPath(manifestPath), File.ReadAllText(manifestPath), settingsRel, includeDir,
            $"bindings/{target}/Generated");
    }

    /// <summary>The pipeline on a manifest given as text (what the snapshot tests call).</summary>
    public static IReadOnlyList<GeneratedFile> Generate(TargetSettings settings, string manifestRel, string manifestPath,
        string manifestText, string settingsRel, string includeDir, string outputDir)
    {
        var model = ManifestParser.Parse(manifestRel, manifestPath, manifestText, ManifestParser.Arguments(settings, includeDir));
        Pipeline.Run(model, settings, manifestRel);
        return Emit(model, settings, manifestRel, settingsRel, outputDir);
    }

    private static List<GeneratedFile> Emit(ApiModel model, TargetSettings settings, string manifestRel, string settingsRel, string outputDir)
    {
        var cs = new CSharpEmitter(model, settings, manifestRel, settingsRel);
        var abi = new AbiCheckEmitter(model, settings, manifestRel, settingsRel);
        var files = new List<GeneratedFile>
        {
            new($"{outputDir}/{settings.Class}.g.cs", cs.Functions()),
            new($"{outputDir}/{settings.Class}.Types.g.cs", cs.Types()),
            new($"{outputDir}/{abi.FileName}", abi.Emit()),
        };
        if (settings.LayoutTests is { } tests)
        {
            files.Add(new GeneratedFile(tests, cs.LayoutTests(Path.GetFileName(tests).Split('.')[0])));
        }
        return files;
    }
}

/// <summary>One output file: a path relative to the repository root and its text.</summary>
public sealed record GeneratedFile(string RelativePath, string Contents);
