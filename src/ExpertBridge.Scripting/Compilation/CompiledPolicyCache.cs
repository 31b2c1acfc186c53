using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>A compiled policy image: the assembly bytes (embedded PDB) and where its entry point is.</summary>
internal sealed record PolicyImage(byte[] Bytes, string EntryType, string EntryMethod);

/// <summary>
/// Compiled policies on disk, one file per cache key (<c>&lt;key&gt;.policy</c>): a magic, the entry point names,
/// the SHA-256 of the image and the image. Entries are written to a temporary file and renamed, so readers never see
/// half an entry; an entry that fails any check is ignored (and removed), and the caller compiles again. Cache
/// problems (a read-only disk, a full one) are logged and never fail a load.
/// </summary>
internal sealed class CompiledPolicyCache
{
    private const int MaxEntries = 256;
    private static readonly byte[] s_magic = "EBPOLICY"u8.ToArray();
    private const int FormatVersion = 1;

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

    public bool TryRead(string key, out PolicyImage image)
    {
        image = null!;
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
                var digest = reader.ReadBytes(32);
                var length = reader.ReadInt32();
                if (length <= 0 || length > stream.Length - stream.Position)
                {
                    return Discard(path, "truncated");
                }

                var bytes = reader.ReadBytes(length);
                if (!SHA256.HashData(bytes).AsSpan().SequenceEqual(digest) || entryType.Length == 0 || entryMethod.Length == 0)
                {
                    return Discard(path, "checksum mismatch");
                }

                image = new PolicyImage(bytes, entryType, entryMethod);
            }

            TryTouch(path);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.CacheUnavailable(_logger, path, ex.Message);
            return false;
        }
    }

    public void Write(string key, PolicyImage image)
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
                writer.Write(image.EntryType);
                writer.Write(image.EntryMethod);
                writer.Write(SHA256.HashData(image.Bytes));
                writer.Write(image.Bytes.Length);
                writer.Write(image.Bytes);
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
