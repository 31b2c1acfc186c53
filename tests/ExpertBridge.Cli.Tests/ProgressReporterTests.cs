using ExpertBridge.Cli.Output;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Cli.Tests;

public class ProgressReporterTests
{
    [Fact]
    public void Bar_RedrawsInPlaceAndEndsTheLineOnDispose()
    {
        using var output = new StringWriter();
        using (var bar = new ProgressReporter(output, ProgressMode.Bar, "replay eplb"))
        {
            bar.Report(new ReplayProgress("eplb", 1, 4));
            bar.Report(new ReplayProgress("eplb", 4, 4));
        }

        var text = output.ToString();
        Assert.StartsWith("\rreplay eplb [", text, StringComparison.Ordinal);
        Assert.Contains("] 100% step 4/4", text, StringComparison.Ordinal);
        Assert.EndsWith(Environment.NewLine, text, StringComparison.Ordinal);
        Assert.Single(text.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Lines_OneLinePerTenthAndNoneWhenQuiet()
    {
        using var lines = new StringWriter();
        using var quiet = new StringWriter();
        var shown = new ProgressReporter(lines, ProgressMode.Lines, "replay x");
        var hidden = new ProgressReporter(quiet, ProgressMode.None, "replay x");
        for (var step = 1; step <= 100; step++)
        {
            shown.Report(new ReplayProgress("x", step, 100));
            hidden.Report(new ReplayProgress("x", step, 100));
        }

        var printed = lines.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(10, printed.Length);
        Assert.StartsWith("replay x: 10% (step 10/100", printed[0], StringComparison.Ordinal);
        Assert.Empty(quiet.ToString());
    }
}
