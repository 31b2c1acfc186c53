using Microsoft.CodeAnalysis.Text;

namespace ExpertBridge.Scripting.Tests;

public class HeaderTests
{
    private static PolicyHeader Parse(string text) => PolicyHeader.Parse("/p/x.csx", SourceText.From(text));

    [Fact]
    public void Parse_OptionsAndDescription_FromLeadingComments()
    {
        var header = Parse("""
            // omni: joint optimisation of replicas and devices
            //
            // @option move-budget = 16
            // @option objective = "p95"
            #load "lib/x.csx"
            // @option ignored = 1
            """);

        Assert.Equal("omni: joint optimisation of replicas and devices", header.Description);
        Assert.Equal(16, header.Options.GetInt("move-budget", 0));
        Assert.Equal("p95", header.Options.GetString("objective", ""));
        Assert.False(header.Options.Has("ignored"));
        Assert.Empty(header.Diagnostics);
        Assert.Equal("/p/x.csx header", header.Options.Source);
    }

    [Fact]
    public void Parse_ExplicitDescription_WinsOverFirstComment()
    {
        var header = Parse("// first line\n// @description the real one\nreturn null;\n");

        Assert.Equal("the real one", header.Description);
    }

    [Fact]
    public void Parse_DuplicateOption_ErrorNamesBothLines()
    {
        var header = Parse("// @option a = 1\n// @option A = 2\n");

        var d = Assert.Single(header.Diagnostics);
        Assert.True(d.IsError);
        Assert.Equal(2, d.Line);
        Assert.Contains("first on line 1", d.Message, StringComparison.Ordinal);
        Assert.Contains(PolicyHeader.RuleOption, d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MalformedOption_ErrorWithLineAndColumn()
    {
        var header = Parse("// x\n   // @option budget 16\n");

        var d = Assert.Single(header.Diagnostics);
        Assert.Equal(("/p/x.csx", 2, 7), (d.File, d.Line, d.Column));
        Assert.StartsWith("/p/x.csx:2:7: malformed header option", d.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownDirective_Warning()
    {
        var header = Parse("// @opton a = 1\n");

        var d = Assert.Single(header.Diagnostics);
        Assert.Equal(ScriptDiagnosticSeverity.Warning, d.Severity);
        Assert.Contains("@opton", d.Message, StringComparison.Ordinal);
    }
}
