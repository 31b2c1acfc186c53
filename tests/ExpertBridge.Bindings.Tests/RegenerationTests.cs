using System.Text;
using ExpertBridge.Bindings.Generator;

namespace ExpertBridge.Bindings.Tests;

public class RegenerationTests
{
    public static TheoryData<string> Targets() => [.. BindingGenerator.DiscoverTargets(TestPaths.Root)];

    [Fact]
    public void DiscoverTargets_Repository_FindsTheFourVendorTargets()
    {
        Assert.Equal(["acl", "cuda", "hccl", "nccl"], BindingGenerator.DiscoverTargets(TestPaths.Root));
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Generate_Target_ReproducesCommittedFilesByteForByte(string target)
    {
        var files = BindingGenerator.Generate(TestPaths.Root, target);
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            var path = Path.Combine(TestPaths.Root, f.RelativePath);
            Assert.True(File.Exists(path), $"{f.RelativePath} is not committed; run `build.ps1 generate`");
            var committed = File.ReadAllText(path, Encoding.UTF8);
            Assert.True(committed == f.Contents, $"{f.RelativePath} differs from a fresh generation; run `build.ps1 generate`");
        }
    }

    [Fact]
    public void GeneratorCli_CheckOnRepository_ReportsUpToDate()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = GeneratorCli.Run(["--all", "--root", TestPaths.Root, "--check"], stdout, stderr);
        Assert.True(code == 0, stdout.ToString() + stderr);
        Assert.Contains("bindings up to date (4 targets)", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void GeneratorCli_CheckWithEditedAndStaleFiles_ReportsBothAndExitsOne()
    {
        var root = CopyTarget("nccl");
        File.AppendAllText(Path.Combine(root, "bindings/nccl/Generated/Nccl.g.cs"), "// edited by hand\n");
        File.WriteAllText(Path.Combine(root, "bindings/nccl/Generated/Old.g.cs"), "// no longer generated\n");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        var code = GeneratorCli.Run(["--target", "nccl", "--root", root, "--check"], stdout, stderr);

        Assert.Equal(1, code);
        Assert.Contains("differs   bindings/nccl/Generated/Nccl.g.cs", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("stale     bindings/nccl/Generated/Old.g.cs", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void GeneratorCli_WriteIntoCopy_RestoresEditedFileAndCheckPasses()
    {
        var root = CopyTarget("nccl");
        var path = Path.Combine(root, "bindings/nccl/Generated/Nccl.Types.g.cs");
        File.WriteAllText(path, "broken");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();

        Assert.Equal(0, GeneratorCli.Run(["--target", "nccl", "--root", root], stdout, stderr));

        Assert.Contains("wrote     bindings/nccl/Generated/Nccl.Types.g.cs", stdout.ToString(), StringComparison.Ordinal);
        Assert.Equal(File.ReadAllText(Path.Combine(TestPaths.Root, "bindings/nccl/Generated/Nccl.Types.g.cs")), File.ReadAllText(path));
        Assert.Equal(0, GeneratorCli.Run(["--target", "nccl", "--root", root, "--check"], stdout, stderr));
    }

    [Theory]
    [InlineData(new[] { "--bogus" }, "--bogus: unknown argument")]
    [InlineData(new[] { "--target" }, "--target: needs a value")]
    [InlineData(new[] { "--all", "--target", "cuda" }, "--all and --target: choose one")]
    [InlineData(new string[0], "name --all or a --target")]
    public void GeneratorCli_BadArguments_ExitTwoWithOneLineNamingTheInput(string[] args, string expected)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Assert.Equal(2, GeneratorCli.Run(args, stdout, stderr));
        var message = stderr.ToString().TrimEnd('\n');
        Assert.DoesNotContain('\n', message);
        Assert.Contains(expected, message, StringComparison.Ordinal);
    }

    [Fact]
    public void GeneratorCli_UnknownTarget_NamesTheMissingSettingsFile()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Assert.Equal(2, GeneratorCli.Run(["--target", "rocm", "--root", TestPaths.Root], stdout, stderr));
        Assert.Contains("bindings/rocm/settings.json does not exist", stderr.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A scratch repository holding one target, the generator's include folder and its committed outputs.</summary>
    private static string CopyTarget(string target)
    {
        var root = TestPaths.NewTempDirectory();
        void CopyDir(string rel)
        {
            var src = Path.Combine(TestPaths.Root, rel);
            foreach (var file in Directory.GetFiles(src, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(src, file);
                if (relative.StartsWith("bin/", StringComparison.Ordinal) || relative.StartsWith("obj/", StringComparison.Ordinal)) continue;
                var dst = Path.Combine(root, rel, Path.GetRelativePath(src, file));
                Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
                File.Copy(file, dst);
            }
        }
        CopyDir($"bindings/{target}");
        CopyDir("bindings/generator/include");
        var settings = TargetSettings.Load(Path.Combine(root, $"bindings/{target}/settings.json"), target);
        var tests = Path.Combine(root, settings.LayoutTests!);
        Directory.CreateDirectory(Path.GetDirectoryName(tests)!);
        File.Copy(Path.Combine(TestPaths.Root, settings.LayoutTests!), tests);
        return root;
    }
}
