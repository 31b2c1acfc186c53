using ExpertBridge.Core.Replay;
using ScottPlot;

namespace ExpertBridge.Cli.Reports;

/// <summary>
/// The report's figures, drawn with ScottPlot and saved as PNG. Every figure has a title, labelled axes and, where
/// several series share it, a legend; policies keep one colour across figures.
/// </summary>
internal static class ReportPlots
{
    private const int Width = 1100;
    private const int Height = 560;

    // ScottPlot's own sans-serif choice falls back to Skia's default typeface (a serif on many Linux machines).
    private static readonly Lazy<string> s_sansFont = new(() =>
    {
        string[] preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica", "Segoe UI"];
        var installed = SkiaSharp.SKFontManager.Default.FontFamilies;
        return preferred.FirstOrDefault(f => installed.Contains(f, StringComparer.OrdinalIgnoreCase)) ?? Fonts.Sans;
    });

    /// <summary>Why figures would have no text here (Skia finds no font), or null when fonts are installed.</summary>
    public static string? MissingFonts =>
        SkiaSharp.SKFontManager.Default.FontFamilies.Any() ? null
            : "no fonts found, so the figures will have no titles or labels (install a TrueType font under /usr/share/fonts, e.g. Debian's fonts-dejavu-core)";

    /// <summary>
    /// Per layer, the busiest device's load averaged over the scored steps, one line per policy, against BestEP (the
    /// mean device load, what a perfect balance would give): the figure OmniPlacement's report draws against EPLB.
    /// </summary>
    public static void LayerMaxLoad(string path, IReadOnlyList<ReportSeries> series)
    {
        var plot = NewPlot("Busiest device per layer (mean over scored steps)", "layer", "tokens on the busiest device per step");
        IntegerTicks(plot.Axes.Bottom);
        var first = series[0].Result;
        var layers = Enumerable.Range(0, first.Layers).Select(l => (double)l).ToArray();
        foreach (var s in series)
        {
            var line = plot.Add.Scatter(layers, s.Result.LayerMaxLoadMean.ToArray(), s.Color);
            line.LegendText = s.Label;
            line.LineWidth = 2;
            line.MarkerSize = 6;
        }

        var bestEp = plot.Add.Scatter(layers, first.LayerBestEpMean.ToArray(), Colors.Black);
        bestEp.LegendText = "BestEP (mean device load)";
        bestEp.LinePattern = LinePattern.Dashed;
        bestEp.LineWidth = 2;
        bestEp.MarkerSize = 0;
        plot.Axes.SetLimitsY(0, Math.Max(1, series.Max(s => s.Result.LayerMaxLoadMean.DefaultIfEmpty(0).Max())) * 1.08);
        Save(plot, path, Width, Height);
    }

    /// <summary>Imbalance (busiest / mean device load, averaged over layers) at every scored step, one line per policy.</summary>
    public static void ImbalanceOverTime(string path, IReadOnlyList<ReportSeries> series)
    {
        var plot = NewPlot("Imbalance over time (busiest / mean device load, mean over layers)", "step", "imbalance (1 = perfect)");
        foreach (var s in series)
        {
            var r = s.Result;
            var steps = Enumerable.Range(r.Window, r.StepImbalance.Count).Select(t => (double)t).ToArray();
            var line = plot.Add.Scatter(steps, r.StepImbalance.ToArray(), s.Color);
            line.LegendText = s.Label;
            line.LineWidth = 1.5f;
            line.MarkerSize = 0;
        }

        var peak = series.Max(s => s.Result.StepImbalance.DefaultIfEmpty(1).Max());
        plot.Axes.SetLimitsY(1, Math.Max(1.05, peak * 1.05));
        Save(plot, path, Width, Height);
    }

    /// <summary>Experts moved at every decision (0 for a keep), one line per policy.</summary>
    public static void MovesOverTime(string path, IReadOnlyList<ReportSeries> series)
    {
        var plot = NewPlot("Expert moves per decision", "decision step", "(layer, slot) pairs whose expert changed");
        foreach (var s in series)
        {
            var decisions = s.Result.Decisions;
            var steps = decisions.Select(d => (double)d.Step).ToArray();
            var moved = decisions.Select(d => d.Applied ? (double)d.ExpertsMoved : 0).ToArray();
            var line = plot.Add.Scatter(steps, moved, s.Color);
            line.LegendText = $"{s.Label} ({s.Result.ExpertsMoved} in all)";
            line.LineWidth = 1.5f;
            line.MarkerSize = 7;
        }

        var most = series.Max(s => s.Result.Decisions.Select(d => d.Applied ? d.ExpertsMoved : 0).DefaultIfEmpty(0).Max());
        plot.Axes.SetLimitsY(0, Math.Max(1, most) * 1.1);
        Save(plot, path, Width, Height);
    }

    /// <summary>
    /// Device-by-layer load of one policy, as a multiple of the layer's mean device load (1 = its fair share), on a
    /// colour scale from 0 to <paramref name="scaleMax"/> (shared by all policies of a report, so their maps compare).
    /// </summary>
    public static void DeviceLayerHeatmap(string path, ReportSeries series, double scaleMax)
    {
        var r = series.Result;
        var plot = NewPlot($"Device load per layer: {series.Label}", "layer", "device");
        var heatmap = plot.Add.Heatmap(RelativeDeviceLoad(r));
        heatmap.FlipVertically = true; // row 0 (device 0) at the bottom, where the axis starts
        heatmap.Colormap = new ScottPlot.Colormaps.Turbo();
        heatmap.ManualRange = new ScottPlot.Range(0, scaleMax);
        var bar = plot.Add.ColorBar(heatmap);
        bar.Label = "load / layer's mean device load";
        IntegerTicks(plot.Axes.Bottom);
        IntegerTicks(plot.Axes.Left);
        plot.Axes.Margins(0, 0);
        var height = Math.Clamp(140 + (r.Devices * 14), 360, 1000);
        Save(plot, path, Width, height);
    }

    /// <summary>[device, layer]: the device's load in the layer over the layer's mean device load (0 where the layer had none).</summary>
    internal static double[,] RelativeDeviceLoad(ReplayResult r)
    {
        var map = new double[r.Devices, r.Layers];
        for (var l = 0; l < r.Layers; l++)
        {
            var mean = r.LayerBestEpMean[l] * r.ScoredSteps;
            for (var d = 0; d < r.Devices; d++)
            {
                map[d, l] = mean > 0 ? r.DeviceLoad(d, l) / mean : 0;
            }
        }

        return map;
    }

    private static void IntegerTicks(ScottPlot.IAxis axis) =>
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    private static Plot NewPlot(string title, string x, string y)
    {
        var plot = new Plot();
        plot.Font.Set(s_sansFont.Value);
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        return plot;
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        if (plot.GetPlottables().Count() > 1)
        {
            plot.ShowLegend(Edge.Right); // outside the data area: never hides a line
        }

        plot.SavePng(path, width, height);
    }
}

/// <summary>One policy's results as the report draws them: its label and colour.</summary>
internal sealed record ReportSeries(string Label, ReplayResult Result, Color Color);
