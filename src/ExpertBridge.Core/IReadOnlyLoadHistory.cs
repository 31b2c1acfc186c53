namespace ExpertBridge.Core;

/// <summary>The per-step load series a policy reads: [steps, layers, experts], oldest step first.</summary>
public interface IReadOnlyLoadHistory
{
    int Layers { get; }

    int Experts { get; }

    /// <summary>Steps held.</summary>
    int Count { get; }

    /// <summary>Step <paramref name="index"/> (0 = oldest held), [layers, experts] row-major.</summary>
    ReadOnlySpan<float> GetStep(int index);

    /// <summary>One layer of step <paramref name="index"/>.</summary>
    ReadOnlySpan<float> GetStep(int index, int layer);

    /// <summary>Sum of the newest <paramref name="window"/> steps.</summary>
    LoadMatrix WindowSum(int window);

    /// <summary>Exponential moving average (per-step scale), oldest first.</summary>
    LoadMatrix Ema(double alpha);
}
