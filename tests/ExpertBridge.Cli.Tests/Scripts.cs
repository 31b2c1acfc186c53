namespace ExpertBridge.Cli.Tests;

/// <summary>Small policy scripts for the CLI tests: one valid policy and one of each way a script goes wrong.</summary>
internal static class Scripts
{
    /// <summary>Valid: shifts each device's block of slots to the device <c>shift</c> further on; its name says the shift.</summary>
    public const string Shift = """
        // shift: moves every device's experts to the device `shift` further on (a test policy)
        // @option shift = 1
        public sealed class Shift : IPlacementPolicy
        {
            private readonly int _shift;

            public Shift(int shift) => _shift = shift;

            public string Name => $"shift{_shift}";

            public PolicyDecision Decide(PolicyContext context)
            {
                var current = context.Current;
                var perDevice = current.Topology.SlotsPerDevice;
                var devices = current.Topology.Devices;
                var next = new int[current.Layers * current.Slots];
                for (var l = 0; l < current.Layers; l++)
                {
                    for (var s = 0; s < current.Slots; s++)
                    {
                        var device = ((s / perDevice) + _shift) % devices;
                        next[(l * current.Slots) + (device * perDevice) + (s % perDevice)] = current[l, s];
                    }
                }

                return PolicyDecision.Apply(new Placement(current.Topology, current.LogicalExperts, next), $"shifted by {_shift}");
            }
        }

        return new Shift(Options.GetInt("shift", 1, min: 0));
        """;

    /// <summary>Valid: Core's EPLB, built by the script.</summary>
    public const string Eplb = """
        // eplb through a script
        return BuiltInPolicies.TryCreate("eplb")!;
        """;

    /// <summary>A compile error on line 2, column 12 (an unknown type).</summary>
    public const string CompileError = """
        // does not compile
        return new NoSuchPolicy();
        """;

    /// <summary>The API guard refuses line 2, column 1 (file system access).</summary>
    public const string ForbiddenApi = """
        // touches the file system
        System.IO.File.Delete("x");
        return BuiltInPolicies.TryCreate("trivial")!;
        """;

    /// <summary>Compiles, but every placement it returns leaves experts unplaced.</summary>
    public const string InvalidPlacement = """
        // returns an invalid placement
        public sealed class Zeros : IPlacementPolicy
        {
            public string Name => "zeros";

            public PolicyDecision Decide(PolicyContext context) =>
                PolicyDecision.Apply(new Placement(context.Topology, context.LogicalExperts, new int[context.Layers * context.Topology.Slots]));
        }

        return new Zeros();
        """;

    /// <summary>Compiles, and throws on line 7 at every decision.</summary>
    public const string Throws = """
        // throws at every decision
        public sealed class Boom : IPlacementPolicy
        {
            public string Name => "boom";

            public PolicyDecision Decide(PolicyContext context) =>
                throw new InvalidOperationException("boom at step " + context.Step);
        }

        return new Boom();
        """;

    /// <summary>Valid but slow: every decision spins for about 300 ms (stopping early when cancelled), then keeps.</summary>
    public const string Slow = """
        // slow: spins about 300 ms per decision
        public sealed class Slow : IPlacementPolicy
        {
            public string Name => "slow";

            public PolicyDecision Decide(PolicyContext context)
            {
                var end = DateTime.UtcNow.AddMilliseconds(300);
                while (DateTime.UtcNow < end && !context.Cancellation.IsCancellationRequested)
                {
                }

                return PolicyDecision.Keep("slow");
            }
        }

        return new Slow();
        """;
}
