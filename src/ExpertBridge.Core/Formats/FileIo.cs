namespace ExpertBridge.Core.Formats;

/// <summary>
/// Opens files for the format readers and writers, turning the I/O mistakes a user makes (missing file, missing
/// directory, no permission) into one-line <see cref="InputException"/>s naming the path.
/// Writes go to a temporary file beside the target and are renamed over it, so a watcher never sees half a file.
/// </summary>
internal static class FileIo
{
    public const string RuleReadable = "file exists and is readable";
    public const string RuleWritable = "output path is writable";

    public static FileStream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InputException(path, RuleReadable, "no such file");
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new InputException(path, RuleReadable, $"cannot open: {ex.Message}");
        }
    }

    /// <summary>Runs <paramref name="write"/> on a temporary file, then renames it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(directory))
        {
            throw new InputException(path, RuleWritable, $"directory {directory} does not exist");
        }

        var temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw new InputException(path, RuleWritable, $"cannot write: {ex.Message}");
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>The extension of <paramref name="path"/>, lower case, with the dot ("" when none).</summary>
    public static string Extension(string path) => Path.GetExtension(path).ToLowerInvariant();
}
