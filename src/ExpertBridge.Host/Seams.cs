using ExpertBridge.Core.Policies;
using ExpertBridge.Scripting;

namespace ExpertBridge.Host;

/// <summary>
/// Where the bridge gets its decisions: the scripting layer's <see cref="PolicyHost"/> (a built-in, or a hot-reloaded
/// script) in production, through <see cref="PolicySources"/>. The bridge calls <see cref="DecideAsync"/> off the
/// serving thread; a source enforces the time limit, captures failures and validates placements, and swaps reloaded
/// versions atomically so a call never sees half a reload.
/// </summary>
public interface IPolicySource : IDisposable
{
    /// <summary>What is loaded (a built-in name or a script path), for logs.</summary>
    string Description { get; }

    /// <summary>Reloads that put a new version in force (from the file watcher or <see cref="Reload"/>).</summary>
    long Reloads { get; }

    /// <summary>Reloads that failed (compile errors, a missing file); the running version was kept each time.</summary>
    long ReloadFailures { get; }

    /// <summary>Calls the policy under its time limit. A policy's failure is an outcome, never an exception.</summary>
    Task<PolicyOutcome> DecideAsync(PolicyContext context);

    /// <summary>Reloads now; throws <see cref="Core.InputException"/> naming the file, line and error when the new version fails.</summary>
    void Reload();
}

/// <summary>One tensor of one expert slot, as the server registers it.</summary>
/// <param name="Layer">Model layer.</param>
/// <param name="Slot">Physical slot (device-major).</param>
/// <param name="TensorIndex">Which tensor of the expert (w1, w2, w3, scales...): 0, 1, 2...</param>
/// <param name="Device">Device ordinal that holds the memory; must be the slot's device.</param>
/// <param name="Address">Address of the tensor's first byte, in the server's address space.</param>
/// <param name="Bytes">Size in bytes.</param>
public readonly record struct TensorRegistration(int Layer, int Slot, int TensorIndex, int Device, nint Address, long Bytes);

/// <summary>Weights of one layer copied into staging memory, waiting for a step boundary.</summary>
public abstract class StagedLayer
{
    protected StagedLayer(int layer, int expertsMoved, long bytesMoved)
    {
        Layer = layer;
        ExpertsMoved = expertsMoved;
        BytesMoved = bytesMoved;
    }

    public int Layer { get; }

    /// <summary>Slots that receive another expert.</summary>
    public int ExpertsMoved { get; }

    /// <summary>Bytes copied into staging (and again into the slots at commit).</summary>
    public long BytesMoved { get; }
}

/// <summary>
/// Moves expert weights with copy-then-commit. <see cref="Stage"/> runs on the bridge's worker while the server keeps
/// serving: it reads the source slots (which nobody writes) into staging memory. <see cref="Commit"/> runs on the
/// serving thread inside a step boundary, when no step is reading the slots, and writes the staged weights into them.
/// </summary>
public interface IExpertRelocator : IDisposable
{
    /// <summary>Records (or replaces) where one tensor lives. Waits for a staging copy of the same layer to finish.</summary>
    void Register(TensorRegistration tensor);

    /// <summary>Bytes of one expert of <paramref name="layer"/> (all its tensors), or 0 when unknown.</summary>
    long ExpertBytes(int layer);

    /// <summary>Copies what <paramref name="target"/> needs from the slots of <paramref name="current"/> into staging.</summary>
    StagedLayer Stage(int layer, ReadOnlySpan<int> current, ReadOnlySpan<int> target);

    /// <summary>Writes the staged weights into their slots and frees the staging memory.</summary>
    void Commit(StagedLayer staged);

    /// <summary>Frees the staging memory without touching any slot.</summary>
    void Discard(StagedLayer staged);
}
