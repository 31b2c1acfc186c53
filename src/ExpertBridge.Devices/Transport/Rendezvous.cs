using System.Diagnostics;
using ExpertBridge.Core;

namespace ExpertBridge.Devices.Transport;

/// <summary>
/// Hands a job's unique id from the process holding rank 0 to the others through a file: written under a temporary
/// name and renamed, so a reader never sees a partial id; readers poll until the file exists.
/// </summary>
internal static class Rendezvous
{
    public static void Publish(string path, ReadOnlySpan<byte> id)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(id);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Waits for <paramref name="path"/> and returns its <paramref name="size"/> bytes.</summary>
    public static byte[] Await(string path, int size, TimeSpan timeout, string library)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var bytes = File.ReadAllBytes(path);
                if (bytes.Length != size)
                {
                    throw new InputException(path, $"a rendezvous file holds the {size}-byte unique id of {library}", $"it has {bytes.Length} bytes");
                }

                return bytes;
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                if (clock.Elapsed >= timeout)
                {
                    throw new DeviceException(DeviceErrorKind.Timeout, library, "rendezvous", 0, "TIMEOUT",
                        $"{path} did not appear within {timeout.TotalSeconds:0.#} s; the process holding rank 0 writes it");
                }

                Thread.Sleep(20);
            }
        }
    }
}
