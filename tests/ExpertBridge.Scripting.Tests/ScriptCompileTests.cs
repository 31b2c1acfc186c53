using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Scripting.Tests;

public class ScriptCompileTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Open_SampleScriptWithLoad_RunsPolicyWithHeaderOption()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();

        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);
        var context = PolicyFiles.Context();
        var outcome = host.Invoke(context);

        Assert.True(host.IsScript);
        Assert.Equal("rotate", host.Name);
        Assert.Equal(PolicyOutcomeKind.Applied, outcome.Kind);
        Assert.Equal("rotated by 1", outcome.Reason);
        // Device 0's block moved to device 1: slot 3 now holds what slot 0 held.
        Assert.Equal(context.Current[0, 0], outcome.Placement[0, 3]);
    }

    [Fact]
    public async Task Open_ConfigOption_WinsOverHeaderOption()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var overrides = new PolicyOptions([new("shift", "2")], "command line");

        using var host = await PolicyResolver.OpenAsync(path, files.Options(overrides: overrides), Token);

        Assert.Equal("rotated by 2", host.Invoke(PolicyFiles.Context()).Reason);
    }

    [Fact]
    public async Task Open_BareNameInPolicyDirectory_ResolvesScript()
    {
        using var files = new PolicyFiles();
        files.WriteSample();

        using var host = await PolicyResolver.OpenAsync("sample", files.Options(), Token);

        Assert.Equal("rotate", host.Name);
    }

    [Fact]
    public async Task Open_BuiltInName_RunsBuiltInThroughInvoker()
    {
        using var host = await PolicyResolver.OpenAsync("trivial", cancellation: Token);
        var outcome = host.Invoke(PolicyFiles.Context());

        Assert.False(host.IsScript);
        Assert.Equal("trivial", host.Name);
        Assert.Equal(PolicyOutcomeKind.Kept, outcome.Kind);
        Assert.Equal(PolicyReloadStatus.Unchanged, (await host.ReloadAsync(Token)).Status);
    }

    [Fact]
    public async Task Open_UnknownName_ThrowsNamingOptionAndBuiltIns()
    {
        var ex = await Assert.ThrowsAsync<InputException>(() => PolicyResolver.OpenAsync("no-such-policy", cancellation: Token));

        Assert.Equal("--policy", ex.Subject);
        Assert.Contains("trivial", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_MissingScript_ThrowsNamingPath()
    {
        var ex = await Assert.ThrowsAsync<InputException>(() => PolicyResolver.OpenAsync("/nowhere/x.csx", cancellation: Token));

        Assert.Equal("--policy", ex.Subject);
        Assert.Contains("/nowhere/x.csx", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_CompileError_ThrowsWithFileLineColumn()
    {
        using var files = new PolicyFiles();
        var path = files.Write("bad.csx", "// bad\nvar x = 1;\nreturn new TrivialPolicy() + undefinedName;\n");

        var ex = await Assert.ThrowsAsync<InputException>(() => PolicyResolver.OpenAsync(path, files.Options(), Token));

        Assert.StartsWith($"{path}:3:", ex.Subject, StringComparison.Ordinal);
        Assert.Contains("CS0103", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_LoadEscapingDirectory_RefusedAtDirective()
    {
        using var files = new PolicyFiles();
        File.WriteAllText(Path.Combine(files.Root, "outside.csx"), "public sealed class Outside { }");
        var path = files.Write("escape.csx", "// escape\n#load \"../outside.csx\"\nreturn new TrivialPolicy();\n");

        var sources = PolicySourceSet.Read(path);

        var d = Assert.Single(sources.Diagnostics, d => d.IsError);
        Assert.Equal((path, 2, 1), (d.File, d.Line, d.Column));
        Assert.Contains("escapes the policy directory", d.Message, StringComparison.Ordinal);
        Assert.Contains(PolicySourceSet.RuleLoadInsideTree, d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_AbsoluteLoadOutsideDirectory_Refused()
    {
        using var files = new PolicyFiles();
        var outside = Path.Combine(files.Root, "abs.csx");
        File.WriteAllText(outside, "public sealed class Outside { }");
        var path = files.Write("abs.csx", $"#load \"{outside}\"\nreturn new TrivialPolicy();\n");

        var sources = PolicySourceSet.Read(path);

        Assert.Contains(sources.Diagnostics, d => d.IsError && d.Message.Contains("escapes the policy directory", StringComparison.Ordinal));
    }

    [Fact]
    public void Read_LoadThroughSymbolicLinkOutside_Refused()
    {
        using var files = new PolicyFiles();
        var outsideDir = Path.Combine(files.Root, "elsewhere");
        Directory.CreateDirectory(outsideDir);
        File.WriteAllText(Path.Combine(outsideDir, "x.csx"), "public sealed class Outside { }");
        try
        {
            Directory.CreateSymbolicLink(Path.Combine(files.Policies, "linked"), outsideDir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Assert.Skip($"cannot create symbolic links here: {ex.Message}");
        }

        var path = files.Write("link.csx", "#load \"linked/x.csx\"\nreturn new TrivialPolicy();\n");

        var sources = PolicySourceSet.Read(path);

        Assert.Contains(sources.Diagnostics, d => d.IsError && d.Line == 1 && d.Message.Contains("escapes the policy directory", StringComparison.Ordinal));
    }

    [Fact]
    public void Read_NestedLoads_ResolveRelativeToLoadingFileOnce()
    {
        using var files = new PolicyFiles();
        files.Write("lib/a.csx", "#load \"b.csx\"\npublic sealed class A { }\n");
        files.Write("lib/b.csx", "public sealed class B { }\n");
        var path = files.Write("main.csx", "#load \"lib/a.csx\"\n#load \"lib/b.csx\"\nreturn new TrivialPolicy();\n");

        var sources = PolicySourceSet.Read(path);

        Assert.Empty(sources.Diagnostics);
        Assert.Equal(
            [path, Path.Combine(files.Policies, "lib", "a.csx"), Path.Combine(files.Policies, "lib", "b.csx")],
            sources.Files.Select(f => f.Path));
    }

    [Fact]
    public void Read_ReferenceDirective_Refused()
    {
        using var files = new PolicyFiles();
        var path = files.Write("r.csx", "#r \"System.Net.Http\"\nreturn new TrivialPolicy();\n");

        var d = Assert.Single(PolicySourceSet.Read(path).Diagnostics);

        Assert.Equal(1, d.Line);
        Assert.Contains("#r", d.Message, StringComparison.Ordinal);
        Assert.Contains(PolicySourceSet.RuleNoReferences, d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_MissingLoad_ReportedAndWatched()
    {
        using var files = new PolicyFiles();
        var path = files.Write("m.csx", "// m\n#load \"lib/later.csx\"\nreturn new TrivialPolicy();\n");

        var sources = PolicySourceSet.Read(path);

        var d = Assert.Single(sources.Diagnostics);
        Assert.Equal(2, d.Line);
        Assert.Contains("not found", d.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(files.Policies, "lib", "later.csx"), sources.WatchedPaths);
    }

    [Fact]
    public async Task Reload_ErrorInLoadedFile_ReportsItsLineAndKeepsRunningVersion()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        using var host = await PolicyResolver.OpenAsync(path, files.Options(), Token);
        var lib = files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary.Replace("var slots = current.Slots;", "var slots = current.NoSuchMember;", StringComparison.Ordinal));
        var expectedLine = File.ReadAllLines(lib).ToList().FindIndex(l => l.Contains("NoSuchMember", StringComparison.Ordinal)) + 1;

        var result = await host.ReloadAsync(Token);

        Assert.Equal(PolicyReloadStatus.Failed, result.Status);
        var error = result.Diagnostics.First(d => d.IsError);
        Assert.Equal(lib, error.File);
        Assert.Equal(expectedLine, error.Line);
        Assert.Matches($@"^{System.Text.RegularExpressions.Regex.Escape(lib)}:{expectedLine}:\d+: CS1061: ", error.ToString());
        Assert.Equal(1, host.Version);
        Assert.Equal(PolicyOutcomeKind.Applied, host.Invoke(PolicyFiles.Context()).Kind);
    }

    [Fact]
    public async Task Open_TopLevelThrows_ReportsScriptLine()
    {
        using var files = new PolicyFiles();
        var path = files.Write("throws.csx", "// throws\nvar n = 1;\nthrow new InvalidOperationException(\"no policy today\");\n");

        var ex = await Assert.ThrowsAsync<InputException>(() => PolicyResolver.OpenAsync(path, files.Options(), Token));

        Assert.Equal($"{path}:3:1", ex.Subject);
        Assert.Contains("InvalidOperationException: no policy today", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_BadOptionValue_ReportsKeyAndRule()
    {
        using var files = new PolicyFiles();
        files.Write("lib/rotate.lib.csx", PolicyFiles.RotateLibrary);
        var path = files.Write("opt.csx", PolicyFiles.SampleScript.Replace("shift = 1", "shift = lots", StringComparison.Ordinal));

        var ex = await Assert.ThrowsAsync<InputException>(() => PolicyResolver.OpenAsync(path, files.Options(), Token));

        Assert.Contains("shift", ex.Message, StringComparison.Ordinal);
        Assert.Contains("a whole number", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_ScriptReturnsNull_ReportsRule()
    {
        using var files = new PolicyFiles();
        var path = files.Write("null.csx", "// null\nIPlacementPolicy? p = null;\nreturn p!;\n");

        var ex = await Assert.ThrowsAsync<InputException>(() => PolicyResolver.OpenAsync(path, files.Options(), Token));

        Assert.Contains(PolicyLoader.RuleReturnsPolicy, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_SecondTime_HitsCacheWithoutCompiling_AndEditMisses()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var compiler = PolicyResolver.CreateCompiler(files.Options());

        var first = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);
        var second = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);
        var fresh = PolicyResolver.CreateCompiler(files.Options()).Compile(PolicySourceSet.Read(path), useCache: true, Token);
        File.AppendAllText(Path.Combine(files.Policies, "lib", "rotate.lib.csx"), "\n// edited\n");
        var edited = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);

        Assert.True(first.Success && second.Success && fresh.Success && edited.Success);
        Assert.False(first.FromCache);
        Assert.True(second.FromCache);
        Assert.True(fresh.FromCache);
        Assert.False(edited.FromCache);
        Assert.Equal(2, compiler.Compilations);
        Assert.Equal(first.Image!.Bytes, second.Image!.Bytes);
    }

    [Fact]
    public void Compile_CorruptCacheEntry_IgnoredAndRebuilt()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var compiler = PolicyResolver.CreateCompiler(files.Options());
        var sources = PolicySourceSet.Read(path);
        compiler.Compile(sources, useCache: true, Token);
        var entry = compiler.Cache!.PathOf(PolicyScriptCompiler.CacheKey(sources));
        var bytes = File.ReadAllBytes(entry);
        bytes[^10] ^= 0xFF;
        File.WriteAllBytes(entry, bytes);

        var rebuilt = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);
        var again = compiler.Compile(PolicySourceSet.Read(path), useCache: true, Token);

        Assert.True(rebuilt.Success);
        Assert.False(rebuilt.FromCache);
        Assert.True(again.FromCache);
        Assert.Equal(2, compiler.Compilations);
    }

    [Fact]
    public void Compile_TruncatedCacheEntry_IgnoredAndRebuilt()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var compiler = PolicyResolver.CreateCompiler(files.Options());
        var sources = PolicySourceSet.Read(path);
        Directory.CreateDirectory(compiler.Cache!.Directory);
        File.WriteAllText(compiler.Cache.PathOf(PolicyScriptCompiler.CacheKey(sources)), "EBPOL");

        var result = compiler.Compile(sources, useCache: true, Token);

        Assert.True(result.Success);
        Assert.False(result.FromCache);
    }

    [Fact]
    public void CacheKey_DependsOnEverySourceFile()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();
        var before = PolicyScriptCompiler.CacheKey(PolicySourceSet.Read(path));
        File.AppendAllText(Path.Combine(files.Policies, "lib", "rotate.lib.csx"), " ");

        Assert.NotEqual(before, PolicyScriptCompiler.CacheKey(PolicySourceSet.Read(path)));
    }

    [Fact]
    public void NullableWarnings_OnlyOnRequestAndInCheck_TheImageIsTheSameEitherWay()
    {
        using var files = new PolicyFiles();
        var path = files.Write("nullable.csx", PolicyFiles.PolicyScript("""
                public PolicyDecision Decide(PolicyContext context)
                {
                    string? reason = context.Step > 1_000_000 ? null : "kept";
                    return PolicyDecision.Keep(reason.Length > 0 ? reason : "empty");
                }
            """));
        var sources = PolicySourceSet.Read(path);

        var quiet = PolicyResolver.CreateCompiler(files.Options()).Compile(sources, useCache: false, Token);
        var warned = PolicyResolver.CreateCompiler(files.Options() with { NullableWarnings = true }).Compile(sources, useCache: false, Token);
        var check = PolicyCheck.Run(path, files.Options(), Token);

        Assert.True(quiet.Success && warned.Success && check.Success, string.Join("; ", check.Lines));
        Assert.DoesNotContain(quiet.Diagnostics, d => d.Id == "CS8602");
        Assert.Contains(warned.Diagnostics, d => d.Id == "CS8602"); // reason may be null where it is dereferenced
        Assert.Contains(check.Diagnostics, d => d.Id == "CS8602");
        Assert.Equal(MethodBodies(warned.Image!.Bytes), MethodBodies(quiet.Image!.Bytes)); // the same code (the PDBs record the option)
        Assert.NotEmpty(MethodBodies(quiet.Image.Bytes));
    }

    /// <summary>Each method of an image with its IL, in metadata order.</summary>
    private static List<string> MethodBodies(byte[] image)
    {
        using var pe = new PEReader(new MemoryStream(image, writable: false));
        var md = pe.GetMetadataReader();
        return
        [
            .. md.MethodDefinitions.Select(md.GetMethodDefinition).Where(m => m.RelativeVirtualAddress != 0)
                .Select(m => $"{md.GetString(m.Name)}: {Convert.ToHexString(pe.GetMethodBody(m.RelativeVirtualAddress).GetILBytes()!)}"),
        ];
    }
}
