using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public sealed class PolicyOptionsTests
{
    private static PolicyOptions Of(string source, params (string Key, string Value)[] values) =>
        new(values.Select(v => new KeyValuePair<string, string>(v.Key, v.Value)), source);

    [Fact]
    public void Unread_KeysNothingAskedFor_InOrder()
    {
        var options = Of("cli", ("window", "100"), ("zeta", "1"), ("alpha", "2"));

        Assert.Equal(100, options.GetInt("window", 1));
        Assert.False(options.Has("absent"));

        Assert.Equal(["alpha", "zeta"], options.Unread);
    }

    [Fact]
    public void Unread_ReadsOfAMergedSetCountForBothSources()
    {
        // A script's header under the command line's options: the policy reads the merge, and each source learns which
        // of its own keys were read (a key asked for but absent from a source does not appear in it).
        var header = Of("header", ("ema-alpha", "0.05"), ("scenarios", "4"));
        var cli = Of("--option", ("scenarios", "2"), ("moev-budget", "0.1"));
        var merged = header.With(cli, "--option over header");

        Assert.Equal(2, merged.GetInt("scenarios", 0));
        Assert.Equal(0.05, merged.GetDouble("ema-alpha", 0));
        Assert.Equal(0.5, merged.GetDouble("move-budget", 0.5));

        Assert.Equal("--option over header", merged.Source);
        Assert.Equal(["moev-budget"], cli.Unread);
        Assert.Empty(header.Unread);
        Assert.Equal(["moev-budget"], merged.Unread);
    }

    [Fact]
    public void Get_BadValue_StillCountsAsReadAndNamesTheSource()
    {
        var options = Of("bridge.json: policyOptions", ("scenarios", "many"));

        var ex = Assert.Throws<InputException>(() => options.GetInt("scenarios", 4));

        Assert.Equal("bridge.json: policyOptions: scenarios", ex.Subject);
        Assert.Empty(options.Unread);
    }
}
