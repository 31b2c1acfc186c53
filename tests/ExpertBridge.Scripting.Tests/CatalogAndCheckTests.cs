namespace ExpertBridge.Scripting.Tests;

public class CatalogAndCheckTests
{
    [Fact]
    public void List_Directory_ShowsBuiltInsThenScriptsWithHeaders()
    {
        using var files = new PolicyFiles();
        files.WriteSample();
        files.Write("broken.csx", "// broken header\n// @option budget\nreturn new TrivialPolicy();\n");
        files.Write("trivial.csx", "// a script named like a built-in\nreturn new TrivialPolicy();\n");

        var list = PolicyCatalog.List(files.Policies);

        var builtIn = Assert.Single(list, p => p.Kind == PolicyKind.BuiltIn && p.Name == "trivial");
        Assert.Null(builtIn.Path);
        var sample = Assert.Single(list, p => p.Name == "sample");
        Assert.Equal("sample: rotates device blocks (a test policy)", sample.Description);
        Assert.Equal("1", sample.Options["shift"]);
        Assert.Equal(PolicyKind.Script, sample.Kind);
        var broken = Assert.Single(list, p => p.Name == "broken");
        Assert.Contains(broken.Problems, d => d.IsError && d.Line == 2);
        Assert.Single(list, p => p.Name == "trivial.csx");
        Assert.DoesNotContain(list, p => p.Path?.Contains("lib", StringComparison.Ordinal) == true);
    }

    [Fact]
    public void List_MissingDirectory_ThrowsNamingIt()
    {
        var ex = Assert.Throws<ExpertBridge.Core.InputException>(() => PolicyCatalog.List("/no/such/policies"));

        Assert.Equal("/no/such/policies", ex.Subject);
    }

    [Fact]
    public void Check_ValidScript_PassesSyntheticCase()
    {
        using var files = new PolicyFiles();
        var path = files.WriteSample();

        var result = PolicyCheck.Run(path, files.Options(), TestContext.Current.CancellationToken);

        Assert.True(result.Success, string.Join("\n", result.Lines));
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("rotate", result.PolicyName);
        Assert.Equal(2, result.Outcomes.Count);
        Assert.All(result.Outcomes, o => Assert.Equal(PolicyOutcomeKind.Applied, o.Kind));
        Assert.StartsWith($"ok: {path}: policy 'rotate'", result.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_CompileErrors_FailWithFileLineColumnLines()
    {
        using var files = new PolicyFiles();
        var path = files.Write("bad.csx", "// bad\nSystem.IO.File.Delete(\"x\");\nreturn new TrivialPolicy() with { };\n");

        var result = PolicyCheck.Run(path, files.Options(), TestContext.Current.CancellationToken);

        Assert.False(result.Success);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{path}:2:1: System.IO.File is not allowed in policies (rule: {PolicyApiGuard.RuleFileSystem})", result.Lines);
        Assert.Contains(result.Lines, l => l.StartsWith($"{path}:3:", StringComparison.Ordinal));
        Assert.StartsWith($"failed: {path}", result.Lines.Last(), StringComparison.Ordinal);
    }

    [Fact]
    public void Check_PolicyReturningInvalidPlacement_Fails()
    {
        using var files = new PolicyFiles();
        var path = files.Write("invalid.csx", PolicyFiles.PolicyScript("""
                public PolicyDecision Decide(PolicyContext context) =>
                    PolicyDecision.Apply(new Placement(context.Topology, context.LogicalExperts, new int[context.Layers * context.Topology.Slots]));
            """));

        var result = PolicyCheck.Run(path, files.Options(), TestContext.Current.CancellationToken);

        Assert.False(result.Success);
        Assert.Equal(PolicyFailureReason.InvalidPlacement, result.Outcomes[0].Failure);
        Assert.Contains("failed (InvalidPlacement", result.Summary, StringComparison.Ordinal);
    }
}
