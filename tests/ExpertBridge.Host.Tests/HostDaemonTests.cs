using ExpertBridge.Core;
using ExpertBridge.Host;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Host.Tests;

public sealed class HostDaemonTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("eb-daemon-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string WriteConfig(string backend)
    {
        var path = Path.Combine(_dir.FullName, "bridge.json");
        File.WriteAllText(path, $$"""
            { "model": { "layers": 1, "experts": 4 }, "topology": { "devices": 2, "slotsPerDevice": 3 },
              "backend": "{{backend}}", "rebalance": { "imbalanceTrigger": 0, "warmupSteps": 0 } }
            """);
        return path;
    }

    private static BridgeServices Services => new()
    {
        LoggerFactory = NullLoggerFactory.Instance,
        PolicySourceFactory = c => PolicySources.ForPolicy(new GreedyTestPolicy(), c, NullLoggerFactory.Instance),
    };

    [Fact]
    public void Run_JsonLines_RecordsDecidesAndPublishesTheMapping()
    {
        // Expert 0 is hot: 60 tokens against 5 for the others (slots 4 and 5 hold replicas of experts 0 and 1).
        var step = "{\"op\":\"step\",\"epoch\":0,\"tokens\":[30,5,5,5,30,5]}";
        var input = string.Join('\n', Enumerable.Repeat(step, 20).Concat([
            "{\"op\":\"rebalance\",\"waitMs\":20000}",
            "{\"op\":\"boundary\"}",
            "{\"op\":\"mapping\"}",
            "{\"op\":\"stats\"}",
            "{\"op\":\"dance\"}",
            "not json",
        ]));
        using var output = new StringWriter();

        var code = HostDaemon.Run(WriteConfig("none"), new StringReader(input), output, Services, TestContext.Current.CancellationToken);

        var replies = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(JObject.Parse).ToArray();
        Assert.Equal(0, code);
        Assert.Equal(26, replies.Length);
        Assert.All(replies[..20], r => Assert.True(r.Value<bool>("ok")));
        Assert.Equal("staged", replies[20].Value<string>("result"));
        Assert.Equal(1, replies[21].Value<long>("epoch"));
        Assert.Equal([0], replies[21]["changed"]!.Values<int>());
        var phy2log = replies[22]["phy2log"]!.Values<int>().ToArray();
        Assert.Equal(2, phy2log.Count(e => e == 0)); // the hot expert got the spare slots
        Assert.Equal(20, replies[23].Value<long>("Steps"));
        Assert.Contains("dance", replies[24].Value<string>("error"), StringComparison.Ordinal);
        Assert.NotNull(replies[25].Value<string>("error"));
    }

    [Theory]
    [InlineData("not json", "request line 1: not JSON")]
    [InlineData("[1, 2]", "request line 1: got array (rule: one JSON object per line)")]
    [InlineData("{}", "request.op: missing")]
    [InlineData("{\"op\":5}", "request.op: got 5")]
    [InlineData("{\"op\":\"reload\",\"policy\":\"other.csx\"}", "reload.policy: unknown key; known keys here: op (rule: a known key)")]
    [InlineData("{\"op\":\"step\",\"token\":[1,2,3,4,5,6]}", "step.token: unknown key; known keys here: op, tokens, epoch (rule: a known key)")]
    [InlineData("{\"op\":\"step\",\"tokens\":\"many\"}", "step.tokens: found String \"many\" (rule: an array)")]
    [InlineData("{\"op\":\"step\",\"tokens\":[1,2,3,4,5,\"x\"]}", "step.tokens[5]: found String \"x\" (rule: a whole number)")]
    [InlineData("{\"op\":\"step\",\"tokens\":[1,2,3,4,5,99999999999]}", "step.tokens[5]: got 99999999999 (rule: 0 <= value <= 2147483647)")]
    [InlineData("{\"op\":\"step\",\"tokens\":[1,2,3,4,5,1.5]}", "step.tokens[5]: found Float 1.5 (rule: a whole number)")]
    [InlineData("{\"op\":\"step\",\"tokens\":[1,2,3,4,5,-1]}", "step.tokens[5]: got -1 (rule: >= 0)")]
    [InlineData("{\"op\":\"step\",\"tokens\":[1,2,3,4,5,6],\"epoch\":\"now\"}", "step.epoch: found String \"now\" (rule: a whole number)")]
    [InlineData("{\"op\":\"mapping\",\"layer\":3}", "mapping.layer: got 3 (rule: -1 <= value <= 0)")]
    [InlineData("{\"op\":\"rebalance\",\"waitMs\":-4}", "rebalance.waitMs: got -4 (rule: >= 0)")]
    public void Run_BadRequest_OneErrorReplyNamingTheFieldAndTheDaemonGoesOn(string request, string expected)
    {
        // A mistake in one request (wrong type, out of range, a key the op does not take) gets one error reply naming
        // the field and the rule, is not half-applied (no step recorded), and the next request is served.
        using var output = new StringWriter();

        HostDaemon.Run(WriteConfig("none"), new StringReader(request + "\n{\"op\":\"stats\"}"), output, Services, TestContext.Current.CancellationToken);

        var replies = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(JObject.Parse).ToArray();
        Assert.Equal(2, replies.Length);
        Assert.Contains(expected, replies[0].Value<string>("error"), StringComparison.Ordinal);
        Assert.Equal(0, replies[1].Value<long>("Steps"));
    }

    [Fact]
    public void Run_HostBackend_IsRefusedNamingTheKey()
    {
        using var output = new StringWriter();

        var ex = Assert.Throws<InputException>(() => HostDaemon.Run(WriteConfig("host"), new StringReader(""), output, Services, TestContext.Current.CancellationToken));

        Assert.EndsWith("bridge.json: backend", ex.Subject, StringComparison.Ordinal);
    }
}
