using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Scripting.Tests;

/// <summary>
/// Policy libraries (<c>#load</c>ed files of type declarations) compiled apart from the script, once per content:
/// what an edit recompiles, what the disk cache spares, and that the split is invisible to script authors.
/// </summary>
public class LibraryCompileTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>A library file with an internal type: <c>Shift.Of(value)</c> is <c>value + add</c>.</summary>
    private static string ShiftLibrary(int add) =>
        $"internal static class Shift\n{{\n    internal static int Of(int value) => value + {add};\n}}\n";

    [Fact]
    public async Task Reload_ScriptEdited_CompilesTheScriptOnly_LibraryEdited_CompilesBoth()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);

        for (var shift = 2; shift <= 3; shift++)
        {
            File.WriteAllText(path, PolicyFiles.SampleScript.Replace("shift = 1", $"shift = {shift}", StringComparison.Ordinal));
            Assert.Equal(PolicyReloadStatus.Loaded, (await host.ReloadAsync(Token)).Status);
            Assert.Equal($"rotated by {shift}", host.Invoke(PolicyFiles.Context()).Reason);
        }

        Assert.Equal(3, host.Compiler!.Compilations);
        Assert.Equal(1, host.Compiler.LibraryCompilations);

        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary.Replace("$\"rotated by {_shift}\"", "$\"turned by {_shift}\"", StringComparison.Ordinal));
        Assert.Equal(PolicyReloadStatus.Loaded, (await host.ReloadAsync(Token)).Status);

        Assert.Equal("turned by 3", host.Invoke(PolicyFiles.Context()).Reason);
        Assert.Equal(4, host.Compiler.Compilations);
        Assert.Equal(2, host.Compiler.LibraryCompilations);
    }

    [Fact]
    public void Compile_EditedScriptInAnotherCompiler_TakesTheLibraryFromDisk()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var first = PolicyResolver.CreateCompiler(files.Options());
        Assert.True(first.Compile(PolicySourceSet.Read(path), useCache: true, Token).Success);
        File.WriteAllText(path, PolicyFiles.SampleScript + "\n// edited after a restart\n");

        var second = PolicyResolver.CreateCompiler(files.Options());
        var compiled = second.Compile(PolicySourceSet.Read(path), useCache: true, Token);
        var (version, error) = PolicyLoader.Load(compiled, PolicyOptions.Empty, 1, TimeSpan.FromSeconds(5), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        Assert.True(compiled.Success, string.Join("; ", compiled.Diagnostics));
        Assert.Null(error);
        Assert.Equal((1, 1), (first.Compilations, first.LibraryCompilations));
        Assert.Equal((1, 0), (second.Compilations, second.LibraryCompilations));
        Assert.Equal("rotated by 1", version!.Policy.Decide(PolicyFiles.Context()).Reason);
        version.Release();
    }

    [Fact]
    public void Check_FillsTheLibraryCache_ForAHostStartedAfterIt()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var check = PolicyCheck.Run(path, files.Options(), Token);
        File.WriteAllText(path, PolicyFiles.SampleScript + "\n// edited after the check\n");

        var compiler = PolicyResolver.CreateCompiler(files.Options());
        var compiled = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);

        Assert.True(check.Success, string.Join("; ", check.Lines));
        Assert.True(compiled.Success);
        Assert.Equal((1, 0), (compiler.Compilations, compiler.LibraryCompilations));
    }

    [Fact]
    public void Compile_CorruptLibraryEntry_IgnoredAndCompiledAgain()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        Assert.True(PolicyResolver.CreateCompiler(files.Options()).Compile(PolicySourceSet.Read(path), useCache: true, Token).Success);
        var entries = Directory.GetFiles(files.Cache, "*.policy");
        Assert.Equal(2, entries.Length); // the library's and the script's
        foreach (var entry in entries)
        {
            var bytes = File.ReadAllBytes(entry);
            bytes[^10] ^= 0xFF;
            File.WriteAllBytes(entry, bytes);
        }

        var compiler = PolicyResolver.CreateCompiler(files.Options());
        var compiled = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);

        Assert.True(compiled.Success);
        Assert.False(compiled.FromCache);
        Assert.Equal((1, 1), (compiler.Compilations, compiler.LibraryCompilations));
    }

    [Fact]
    public async Task Open_LibraryInternalType_UsableFromTheScript()
    {
        using var files = new PolicyFiles();
        files.Write("lib/shift.lib.csx", ShiftLibrary(1));
        var path = files.Write("internal.csx", """
            // uses an internal library type
            #load "lib/shift.lib.csx"
            #load "lib/rotate.lib.csx"
            return new RotatePolicy(Shift.Of(1));
            """);
        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary);

        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);

        Assert.Equal("rotated by 2", host.Invoke(PolicyFiles.Context()).Reason);
        Assert.Equal(1, host.Compiler!.LibraryCompilations);
    }

    [Fact]
    public async Task Open_LibraryFilesLoadingEachOther_CompiledOnceAsOneLibrary()
    {
        using var files = new PolicyFiles();
        files.Write("lib/parts/shift.lib.csx", ShiftLibrary(2));
        files.Write("lib/rotate.lib.csx", "#load \"parts/shift.lib.csx\"\n" + PolicyFiles.RotateLibrary.Replace("_shift = shift;", "_shift = Shift.Of(shift) - 2;", StringComparison.Ordinal));
        const string Script = "// a library split into files\n#load \"lib/rotate.lib.csx\"\nreturn new RotatePolicy(Shift.Of(1));\n";
        var path = files.Write("split.csx", Script);
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);
        Assert.Equal("rotated by 3", host.Invoke(PolicyFiles.Context()).Reason);

        File.WriteAllText(path, Script.Replace("Of(1)", "Of(2)", StringComparison.Ordinal));
        Assert.Equal(PolicyReloadStatus.Loaded, (await host.ReloadAsync(Token)).Status);
        Assert.Equal("rotated by 4", host.Invoke(PolicyFiles.Context()).Reason);
        Assert.Equal((2, 1), (host.Compiler!.Compilations, host.Compiler.LibraryCompilations));

        // An edit of the nested file compiles the library again.
        files.Write("lib/parts/shift.lib.csx", ShiftLibrary(3));
        Assert.Equal(PolicyReloadStatus.Loaded, (await host.ReloadAsync(Token)).Status);
        Assert.Equal("rotated by 6", host.Invoke(PolicyFiles.Context()).Reason); // Of(2) = 5 in the script, Of(5) - 2 in the library
        Assert.Equal((3, 2), (host.Compiler.Compilations, host.Compiler.LibraryCompilations));
    }

    [Fact]
    public async Task Open_LoadedFileWithScriptMembers_CompiledWithTheScript()
    {
        using var files = new PolicyFiles();
        files.Write("lib/helpers.csx", "int Twice(int x) => 2 * x;\n");
        var path = files.Write("members.csx", "// uses a script member of a loaded file\n#load \"lib/helpers.csx\"\n#load \"lib/rotate.lib.csx\"\nreturn new RotatePolicy(Twice(1));\n");
        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary);

        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);

        Assert.Equal("rotated by 2", host.Invoke(PolicyFiles.Context()).Reason);
        Assert.Equal(0, host.Compiler!.LibraryCompilations);
    }

    [Fact]
    public async Task Open_LibraryUsingAScriptType_CompiledWithTheScript_AndNotTriedAgain()
    {
        using var files = new PolicyFiles();
        files.Write("lib/uses.lib.csx", "public sealed class UsesScript\n{\n    public int Value => ScriptHelper.Shift;\n}\n");
        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary);
        const string Script = "// a library that needs the script's type\n#load \"lib/uses.lib.csx\"\n#load \"lib/rotate.lib.csx\"\npublic static class ScriptHelper { public const int Shift = 2; }\nreturn new RotatePolicy(new UsesScript().Value);\n";
        var path = files.Write("uses.csx", Script);
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);
        File.WriteAllText(path, Script + "// edited\n");
        var reload = await host.ReloadAsync(Token);

        Assert.Equal(PolicyReloadStatus.Loaded, reload.Status);
        Assert.Equal("rotated by 2", host.Invoke(PolicyFiles.Context()).Reason);
        Assert.Equal((2, 1), (host.Compiler!.Compilations, host.Compiler.LibraryCompilations));
    }

    [Fact]
    public async Task Invoke_ExceptionInLibrary_NamesTheLibraryLine()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var lib = files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary.Replace(
            "var current = context.Current;", "var current = context.Current; if (_shift > 0) throw new InvalidOperationException(\"shift refused\");", StringComparison.Ordinal));
        var line = File.ReadAllLines(lib).ToList().FindIndex(l => l.Contains("shift refused", StringComparison.Ordinal)) + 1;
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);

        var outcome = host.Invoke(PolicyFiles.Context());

        Assert.Equal(1, host.Compiler!.LibraryCompilations);
        Assert.Equal(PolicyFailureReason.Exception, outcome.Failure);
        Assert.Contains($"InvalidOperationException: shift refused (at {lib}:{line})", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void IsLibraryFile_OnlyTypeDeclarationsQualify()
    {
        static bool Qualifies(string text) =>
            PolicyLibraryCompiler.IsLibraryFile(new PolicySourceFile("/x.csx", [], Microsoft.CodeAnalysis.Text.SourceText.From(text),
                Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(text, PolicySourceSet.ParseOptions, "/x.csx", cancellationToken: Token)));

        Assert.True(Qualifies("using System;\npublic enum E { A }\npublic record R(int X);\ninternal delegate int D(int x);\npublic interface I { }\npublic struct S { }\n"));
        Assert.False(Qualifies("var x = 1;\n"));
        Assert.False(Qualifies("int Twice(int x) => 2 * x;\n"));
        Assert.False(Qualifies("static int s_count;\n"));
        Assert.True(Qualifies("#load \"other.csx\"\npublic class C { }\n"));
        Assert.False(Qualifies("#r \"System.Net.Http\"\npublic class C { }\n"));
        Assert.False(Qualifies("[assembly: System.CLSCompliant(false)]\npublic class C { }\n"));
    }
}
