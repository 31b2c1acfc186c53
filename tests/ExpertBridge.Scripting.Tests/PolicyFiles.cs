using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Scripting.Tests;

/// <summary>A temporary policy directory (with its own compile cache) and small helpers to write scripts into it.</summary>
internal sealed class PolicyFiles : IDisposable
{
    public PolicyFiles()
    {
        Root = Path.Combine(Path.GetTempPath(), "eb-scripting-tests", Guid.NewGuid().ToString("N"));
        Policies = Path.Combine(Root, "policies");
        Cache = Path.Combine(Root, "cache");
        Directory.CreateDirectory(Path.Combine(Policies, "lib"));
    }

    public string Root { get; }

    public string Policies { get; }

    public string Cache { get; }

    /// <summary>Writes <paramref name="text"/> to <paramref name="relative"/> under the policy directory; returns the full path.</summary>
    public string Write(string relative, string text)
    {
        var path = Path.Combine(Policies, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    public ScriptingOptions Options(TimeSpan? timeout = null, bool watch = false, PolicyOptions? overrides = null, TimeSpan? debounce = null) => new()
    {
        CacheDirectory = Cache,
        DecisionTimeout = timeout ?? TimeSpan.FromSeconds(2),
        Watch = watch,
        WatchDebounce = debounce ?? TimeSpan.FromMilliseconds(200),
        Options = overrides ?? PolicyOptions.Empty,
        PolicyDirectory = Policies,
    };

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    /// <summary>A library that rotates device blocks by a shift: valid whenever the input is.</summary>
    public const string RotateLibrary = """
        using ExpertBridge.Core;
        using ExpertBridge.Core.Policies;

        public sealed class RotatePolicy : IPlacementPolicy
        {
            private readonly int _shift;

            public RotatePolicy(int shift) => _shift = shift;

            public string Name => "rotate";

            public PolicyDecision Decide(PolicyContext context)
            {
                var current = context.Current;
                var perDevice = current.Topology.SlotsPerDevice;
                var devices = current.Topology.Devices;
                var slots = current.Slots;
                var next = new int[current.Layers * slots];
                for (var l = 0; l < current.Layers; l++)
                {
                    for (var s = 0; s < slots; s++)
                    {
                        var device = ((s / perDevice) + _shift) % devices;
                        next[(l * slots) + (device * perDevice) + (s % perDevice)] = current[l, s];
                    }
                }

                return PolicyDecision.Apply(new Placement(current.Topology, current.LogicalExperts, next), $"rotated by {_shift}");
            }
        }
        """;

    /// <summary>The sample script: header option, #load of the library, returns the policy.</summary>
    public const string SampleScript = """
        // sample: rotates device blocks (a test policy)
        // @option shift = 1
        #load "lib/rotate.lib.csx"

        return new RotatePolicy(Options.GetInt("shift", 0, min: 0));
        """;

    public string WriteSample()
    {
        Write("lib/rotate.lib.csx", RotateLibrary);
        return Write("sample.csx", SampleScript);
    }

    /// <summary>A script whose policy is the given class body (implementing IPlacementPolicy as <c>P</c>).</summary>
    public static string PolicyScript(string members, string header = "// test policy") => $$"""
        {{header}}
        public sealed class P : IPlacementPolicy
        {
            public string Name => "p";
        {{members}}
        }

        return new P();
        """;

    /// <summary>A small model: 4 devices x 3 slots, 2 layers of 8 experts, 4 steps of skewed load.</summary>
    public static PolicyContext Context(Placement? current = null) => Build(current, CancellationToken.None);

    /// <summary><see cref="Context"/> with a caller's cancellation token.</summary>
    public static PolicyContext CancellableContext(CancellationToken cancellation) => Build(null, cancellation);

    private static PolicyContext Build(Placement? current, CancellationToken cancellation)
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 3);
        var history = new LoadHistory(2, 8, 4);
        for (var s = 0; s < 4; s++)
        {
            history.Record([8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        }

        return new PolicyContext(topology, history, current ?? TrivialPolicy.Build(topology, 2, 8), cancellation: cancellation);
    }
}
