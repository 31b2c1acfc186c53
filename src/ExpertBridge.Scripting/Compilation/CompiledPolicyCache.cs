using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// A compiled policy image: the script's assembly bytes (embedded PDB), where its entry point is, and the policy
/// libraries it was compiled against (<see cref="PolicyLibraryCompiler"/>), which load beside it.
/// </summary>
internal sealed record PolicyImage(byte[] Bytes, string EntryType, string EntryMethod, IReadOnlyList<PolicyLibraryImage> Libraries);

/// <summary>A compiled policy library: its assembly name and bytes (embedded PDB).</summary>
internal sealed record PolicyLibraryImage(string AssemblyName, byte[] Bytes);

internal sealed class CompiledPolicyCache
{
    private const int MaxEntries = 256;
    private static readonly byte[] s_magic = "EBPOLICY"u8.ToArray();
    private const int FormatVersion = 2;

    private readonly ILogger _logger;

    public CompiledPolicyCache(string directory, ILogger logger)
    {
        Directory = Path.GetFullPath(directory);
        _logger = logger;
    }

    public string Directory { get; }

    /// <summary>$XDG_CACHE_HOME/expertbridge/scripts, else ~/.cache/expertbridge/scripts.</summary>
    public static string DefaultDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var baseDir = !string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(baseDir, "expertbridge", "scripts");
    }

    public string PathOf(string key) => Path.Combine(Directory, key + ".policy");

    /// <summary>The script image cached under <paramref name="key"/>, if a valid one is there.</summary>
    public bool TryRead(string key, out PolicyImage image)
    {
        image = null!;
        if (!TryReadEntry(key, out var entry) || entry.EntryType.Length == 0 || entry.Images[0].Name.Length != 0)
        {
            return false;
        }

        image = new PolicyImage(entry.Images[0].Bytes, entry.EntryType, entry.EntryMethod, [.. entry.Images.Skip(1).Select(i => new PolicyLibraryImage(i.Name, i.Bytes))]);
        return true;
    }

    /// <summary>The library image cached under <paramref name="key"/>, if a valid one is there.</summary>
    public bool TryReadLibrary(string key, out PolicyLibraryImage library)
    {
        library = null!;
        if (!TryReadEntry(key, out var entry) || entry.EntryType.Length != 0 || entry.Images.Count != 1 || entry.Images[0].Name.Length == 0)
        {
            return false;
        }

        library = new PolicyLibraryImage(entry.Images[0].Name, entry.Images[0].Bytes);
        return true;
    }

    public void Write(string key, PolicyImage image) =>
        WriteEntry(key, new Entry(image.EntryType, image.EntryMethod, [("", image.Bytes), .. image.Libraries.Select(l => (l.AssemblyName, l.Bytes))]));

    public void WriteLibrary(string key, PolicyLibraryImage library) =>
        WriteEntry(key, new Entry("", "", [(library.AssemblyName, library.Bytes)]));

    private sealed record Entry(string EntryType, string EntryMethod, IReadOnlyList<(string Name, byte[] Bytes)> Images);

    private bool TryReadEntry(string key, out Entry entry)
    {
        entry = null!;
        var path = PathOf(key);
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete))
            using (var reader = new BinaryReader(stream, Encoding.UTF8))
            {
                if (!reader.ReadBytes(s_magic.Length).AsSpan().SequenceEqual(s_magic) || reader.ReadInt32() != FormatVersion)
                {
                    return Discard(path, "not a policy cache entry of this version");
                }

                var entryType = reader.ReadString();
                var entryMethod = reader.ReadString();
                var count = reader.ReadInt32();
                if (count <= 0 || count > 64 || (entryType.Length == 0) != (entryMethod.Length == 0))
                {
                    return Discard(path, "malformed");
                }

                var images = new List<(string, byte[])>(count);
                for (var i = 0; i < count; i++)
                {
                    var name = reader.ReadString();
                    var digest = reader.ReadBytes(32);
                    var length = reader.ReadInt32();
                    if (length <= 0 || length > stream.Length - stream.Position)
                    {
                        return Discard(path, "truncated");
                    }

                    var bytes = reader.ReadBytes(length);
                    if (!SHA256.HashData(bytes).AsSpan().SequenceEqual(digest))
                    {
                        return Discard(path, "checksum mismatch");
                    }

                    images.Add((name, bytes));
                }

                entry = new Entry(entryType, entryMethod, images);
            }

            TryTouch(path);
            return true;
        }
        catch (EndOfStreamException)
        {
            return Discard(path, "truncated");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.CacheUnavailable(_logger, path, ex.Message);
            return false;
        }
    }

    private void WriteEntry(string key, Entry entry)
    {
        var path = PathOf(key);
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new BinaryWriter(stream, Encoding.UTF8))
            {
                writer.Write(s_magic);
                writer.Write(FormatVersion);
                writer.Write(entry.EntryType);
                writer.Write(entry.EntryMethod);
                writer.Write(entry.Images.Count);
                foreach (var (name, bytes) in entry.Images)
                {
                    writer.Write(name);
                    writer.Write(SHA256.HashData(bytes));
                    writer.Write(bytes.Length);
                    writer.Write(bytes);
                }
            }

            File.Move(temp, path, overwrite: true);
            Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.CacheUnavailable(_logger, path, ex.Message);
            TryDelete(temp);
        }
    }

    private bool Discard(string path, string why)
    {
        Log.CacheEntryIgnored(_logger, path, why);
        TryDelete(path);
        return false;
    }

    /// <summary>Keeps the newest <see cref="MaxEntries"/> entries (reads refresh an entry's time).</summary>
    private void Trim()
    {
        var entries = new DirectoryInfo(Directory).GetFiles("*.policy");
        if (entries.Length <= MaxEntries)
        {
            return;
        }

        foreach (var old in entries.OrderByDescending(f => f.LastWriteTimeUtc).Skip(MaxEntries))
        {
            TryDelete(old.FullName);
        }
    }

    private static void TryTouch(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A read-only cache still serves hits.
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the next writer to replace.
        }
    }
}
