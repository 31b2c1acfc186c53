using ExpertBridge.Core;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices;

/// <summary>How to open a <see cref="CollectiveTransport"/>: the job's ranks, this process's share, and how the
/// job's unique id reaches this process (exactly one of <see cref="UniqueId"/> and <see cref="RendezvousFile"/>).</summary>
public sealed record CollectiveTransportOptions
{
    /// <summary>Ranks of the communicator: every global device (EP rank) of the job.</summary>
    public int Ranks { get; init; }

    /// <summary>Global rank of each local device (index = device ordinal of this process's runtime); -1, or a list
    /// shorter than the device count, for devices that take no part.</summary>
    public IReadOnlyList<int> LocalRanks { get; init; } = [];

    /// <summary>The job's unique id from <see cref="CollectiveTransport.CreateUniqueId"/> in the process holding rank 0,
    /// passed here by the caller (pipe, socket, launcher). That process passes its own id too.</summary>
    public IReadOnlyList<byte>? UniqueId { get; init; }

    /// <summary>
    /// Or a file on storage every process of the job sees: the process holding rank 0 creates the id and writes it
    /// (atomically, by rename); the others wait for it. Use a fresh path per job: a stale file from an earlier job
    /// would send the others to a communicator that no longer exists.
    /// </summary>
    public string? RendezvousFile { get; init; }

    /// <summary>How long opening waits for the id file and for every rank to join.</summary>
    public TimeSpan InitTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The ranks of process <paramref name="process"/> when global device g lives at <paramref name="locations"/>[g]
    /// (the same list as <see cref="RelocationOptions.Locations"/>): rank = global device.
    /// </summary>
    public static CollectiveTransportOptions ForProcess(IReadOnlyList<DeviceLocation> locations, int process, IReadOnlyList<byte>? uniqueId = null, string? rendezvousFile = null)
    {
        ArgumentNullException.ThrowIfNull(locations);
        var local = new List<int>();
        for (var g = 0; g < locations.Count; g++)
        {
            if (locations[g].Process != process)
            {
                continue;
            }

            var d = locations[g].LocalDevice;
            if (d < 0)
            {
                throw new InputException($"device location {g}", "local device ordinals are >= 0", $"got {d}");
            }

            while (local.Count <= d)
            {
                local.Add(-1);
            }

            if (local[d] >= 0)
            {
                throw new InputException($"device location {g}", "each local device holds one global device",
                    $"local device {d} of process {process} is also global device {local[d]}");
            }

            local[d] = g;
        }

        if (local.Count == 0)
        {
            throw new InputException("device locations", $"process {process} holds at least one device", "no location names it");
        }

        return new CollectiveTransportOptions { Ranks = locations.Count, LocalRanks = local, UniqueId = uniqueId, RendezvousFile = rendezvousFile };
    }

    internal void Validate(int localDevices)
    {
        CheckRanks(Ranks, LocalRanks, localDevices);
        if ((UniqueId is null) == (RendezvousFile is null))
        {
            throw new InputException("collective transport", "exactly one of a unique id and a rendezvous file",
                UniqueId is null ? "neither is given" : "both are given");
        }

        if (RendezvousFile is not null && string.IsNullOrWhiteSpace(RendezvousFile))
        {
            throw new InputException("collective transport rendezvous file", "a file path", "the path is empty");
        }

        if (InitTimeout <= TimeSpan.Zero)
        {
            throw new InputException("collective transport init timeout", "a positive time", $"got {InitTimeout}");
        }
    }

    internal static void CheckRanks(int ranks, IReadOnlyList<int> localRanks, int localDevices)
    {
        if (ranks < 2)
        {
            throw new InputException("collective transport ranks", "at least 2 ranks (a transport connects processes)", $"got {ranks}");
        }

        if (localRanks.Count > localDevices)
        {
            throw new InputException("collective transport local ranks", $"at most one rank per local device ({localDevices} here)", $"got {localRanks.Count} entries");
        }

        var seen = new HashSet<int>();
        for (var d = 0; d < localRanks.Count; d++)
        {
            var r = localRanks[d];
            if (r < -1 || r >= ranks)
            {
                throw new InputException($"collective transport local rank of device {d}", $"-1 or a rank in 0..{ranks - 1}", $"got {r}");
            }

            if (r >= 0 && !seen.Add(r))
            {
                throw new InputException($"collective transport local rank of device {d}", "each rank on one device", $"rank {r} appears twice");
            }
        }

        if (seen.Count == 0)
        {
            throw new InputException("collective transport local ranks", "this process holds at least one rank", "every local device is -1");
        }
    }
}
