using ExpertBridge.Core;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Output;

/// <summary>How a placement's metrics (<see cref="PlacementReport"/>) read in tables and JSON, shared by verbs.</summary>
internal static class MetricsOutput
{
    /// <summary>The summary fields: imbalanceMean, imbalanceMax, balancednessMean, maxLoadSum, bestEpSum.</summary>
    public static void AddSummary(JObject json, PlacementReport report)
    {
        json["imbalanceMean"] = report.ImbalanceMean;
        json["imbalanceMax"] = report.ImbalanceMax;
        json["balancednessMean"] = report.BalancednessMean;
        json["maxLoadSum"] = report.MaxLoadSum;
        json["bestEpSum"] = report.BestEpSum;
    }

    /// <summary>Per layer: layer, maxDeviceLoad, meanDeviceLoad, imbalance, balancedness, replicas.</summary>
    public static JArray Layers(PlacementReport report) =>
        new(report.Layers.Select(l => new JObject
        {
            ["layer"] = l.Layer,
            ["maxDeviceLoad"] = l.MaxDeviceLoad,
            ["meanDeviceLoad"] = l.MeanDeviceLoad,
            ["imbalance"] = l.Imbalance,
            ["balancedness"] = l.Balancedness,
            ["replicas"] = l.Replicas,
        }));

    /// <summary>One row per named report: mean and worst imbalance, balancedness, and the busiest-device sum against BestEP.</summary>
    public static void WriteSummaryTable(TextWriter output, params (string Name, PlacementReport Report)[] rows)
    {
        var table = new TextTable("placement", "imbalance", "worst layer", "balancedness", "max-load sum", "BestEP sum", "over BestEP");
        foreach (var (name, r) in rows)
        {
            var over = r.BestEpSum > 0 ? (r.MaxLoadSum / r.BestEpSum) - 1 : 0;
            table.Add(name, Fmt.Num(r.ImbalanceMean), Fmt.Num(r.ImbalanceMax), Fmt.Num(r.BalancednessMean), Fmt.Num(r.MaxLoadSum, "0"), Fmt.Num(r.BestEpSum, "0"), Fmt.Num(over * 100, "0.0") + "%");
        }

        table.WriteTo(output);
    }
}
