using System.Security.Cryptography;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace ExpertBridge.Scripting;

/// <summary>One file of a policy: the script or a file it <c>#load</c>s, read once.</summary>
internal sealed record PolicySourceFile(string Path, byte[] Bytes, SourceText Text, SyntaxTree Tree);

/// <summary>
/// A policy script and the closure of its <c>#load</c> directives, read once from disk, so that the content hash,
/// the cache key and the compilation all see the same bytes. <c>#load</c> paths resolve relative to the file that
/// holds the directive and must stay inside the script's directory tree (symbolic links included); <c>#r</c> is
/// refused. Problems are diagnostics at the directive, never exceptions.
/// </summary>
internal sealed class PolicySourceSet
{
    internal const string RuleLoadInsideTree = "#load stays inside the script's directory tree";
    internal const string RuleNoReferences = "policies reference only ExpertBridge.Core and the BCL; #r is not allowed";

    internal static readonly CSharpParseOptions ParseOptions =
        CSharpParseOptions.Default.WithKind(SourceCodeKind.Script).WithLanguageVersion(LanguageVersion.Latest);

    private static readonly StringComparison s_pathComparison =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private readonly Dictionary<string, PolicySourceFile> _byPath;

    private PolicySourceSet(string mainPath, string root, List<PolicySourceFile> files, List<string> watched, PolicyHeader header, List<ScriptDiagnostic> diagnostics)
    {
        MainPath = mainPath;
        RootDirectory = root;
        Files = files;
        WatchedPaths = watched;
        Header = header;
        Diagnostics = diagnostics;
        _byPath = files.ToDictionary(f => f.Path, PathComparer);
        ContentHash = HashFiles(watched, path => _byPath.TryGetValue(path, out var f) ? f.Bytes : null);
    }

    internal static StringComparer PathComparer { get; } =
        s_pathComparison == StringComparison.Ordinal ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase;

    /// <summary>Full path of the script.</summary>
    public string MainPath { get; }

    /// <summary>The script's directory: <c>#load</c> may not leave it.</summary>
    public string RootDirectory { get; }

    /// <summary>The script first, then every <c>#load</c>ed file once, in directive order.</summary>
    public IReadOnlyList<PolicySourceFile> Files { get; }

    /// <summary>The files whose content decides this policy: <see cref="Files"/> plus <c>#load</c> targets not found.</summary>
    public IReadOnlyList<string> WatchedPaths { get; }

    public PolicyHeader Header { get; }

    /// <summary>Header, directive and read problems (the compiler's come later).</summary>
    public IReadOnlyList<ScriptDiagnostic> Diagnostics { get; }

    public bool HasErrors => Diagnostics.Any(d => d.IsError);

    /// <summary>SHA-256 (hex) over the path and bytes of every watched file.</summary>
    public string ContentHash { get; }

    public PolicySourceFile Main => Files[0];

    public bool TryGet(string path, out PolicySourceFile file) => _byPath.TryGetValue(path, out file!);

    /// <summary>Reads <paramref name="scriptPath"/> and everything it <c>#load</c>s.</summary>
    public static PolicySourceSet Read(string scriptPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scriptPath);
        var mainPath = Path.GetFullPath(scriptPath);
        var root = Path.GetDirectoryName(mainPath)!;
        var realRoot = RealPath(root);
        var files = new List<PolicySourceFile>();
        var watched = new List<string> { mainPath };
        var diagnostics = new List<ScriptDiagnostic>();
        var queued = new HashSet<string>(PathComparer) { mainPath };
        var pending = new Queue<string>();
        pending.Enqueue(mainPath);
        while (pending.Count > 0)
        {
            var path = pending.Dequeue();
            if (!TryReadFile(path, out var file, out var readError))
            {
                // The script itself unreadable: one diagnostic at 1:1. A #load target: reported at its directive.
                if (files.Count == 0)
                {
                    diagnostics.Add(new ScriptDiagnostic(path, 1, 1, ScriptDiagnosticSeverity.Error, ScriptDiagnostic.ScriptId, $"cannot read the script: {readError}"));
                    return new PolicySourceSet(mainPath, root, files, watched, new PolicyHeader("", Core.Policies.PolicyOptions.Empty, []), diagnostics);
                }

                continue;
            }

            files.Add(file);
            var unit = file.Tree.GetCompilationUnitRoot();
            foreach (var r in unit.GetReferenceDirectives())
            {
                diagnostics.Add(At(r, ScriptDiagnostic.DirectiveId, $"#r {r.File.Text} is not allowed in policies (rule: {RuleNoReferences})"));
            }

            foreach (var load in unit.GetLoadDirectives())
            {
                var reference = load.File.ValueText;
                var target = ResolveLoad(reference, path);
                if (target is null || !IsInside(realRoot, RealPath(target)) || !IsInside(root, target))
                {
                    diagnostics.Add(At(load, ScriptDiagnostic.DirectiveId, $"#load \"{reference}\" escapes the policy directory {root} (rule: {RuleLoadInsideTree})"));
                    continue;
                }

                if (!queued.Add(target))
                {
                    continue;
                }

                watched.Add(target);
                if (!File.Exists(target))
                {
                    diagnostics.Add(At(load, ScriptDiagnostic.DirectiveId, $"#load \"{reference}\" not found: {target}"));
                    continue;
                }

                pending.Enqueue(target);
            }
        }

        var header = PolicyHeader.Parse(mainPath, files[0].Text);
        diagnostics.InsertRange(0, header.Diagnostics);
        return new PolicySourceSet(mainPath, root, files, watched, header, diagnostics);
    }

    /// <summary>The full path a <c>#load "reference"</c> in <paramref name="includingFile"/> names, or null.</summary>
    internal static string? ResolveLoad(string reference, string? includingFile)
    {
        if (string.IsNullOrWhiteSpace(reference) || includingFile is null)
        {
            return null;
        }

        try
        {
            return Path.GetFullPath(Path.Combine(Path.GetDirectoryName(includingFile)!, reference));
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>SHA-256 (hex) over each path and its bytes (or a marker when the file is missing), in order.</summary>
    internal static string HashFiles(IEnumerable<string> paths, Func<string, byte[]?> content)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> length = stackalloc byte[8];
        foreach (var path in paths)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(path));
            var bytes = content(path);
            BitConverter.TryWriteBytes(length, bytes is null ? -1L : bytes.LongLength);
            hash.AppendData(length);
            if (bytes is not null)
            {
                hash.AppendData(bytes);
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Reads a file that an editor or a deployer may be writing: shared access, a few retries.</summary>
    internal static byte[]? ReadShared(string path, out string? error)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                error = null;
                return buffer.ToArray();
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
            {
                error = ex.Message;
                return null;
            }
            catch (IOException) when (attempt < 4)
            {
                Thread.Sleep(25 * (attempt + 1));
            }
            catch (IOException ex)
            {
                error = ex.Message;
                return null;
            }
        }
    }

    private static bool TryReadFile(string path, out PolicySourceFile file, out string? error)
    {
        file = null!;
        var bytes = ReadShared(path, out error);
        if (bytes is null)
        {
            return false;
        }

        SourceText text;
        try
        {
            text = SourceText.From(bytes, bytes.Length, encoding: null, SourceHashAlgorithm.Sha256, throwIfBinaryDetected: true, canBeEmbedded: true);
        }
        catch (InvalidDataException)
        {
            error = "the file is binary, not C# source";
            return false;
        }

        file = new PolicySourceFile(path, bytes, text, CSharpSyntaxTree.ParseText(text, ParseOptions, path));
        return true;
    }

    private static ScriptDiagnostic At(DirectiveTriviaSyntax directive, string id, string message)
    {
        var span = directive.GetLocation().GetLineSpan();
        return new ScriptDiagnostic(span.Path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1, ScriptDiagnosticSeverity.Error, id, message);
    }

    private static bool IsInside(string root, string path) =>
        path.Length > root.Length
        && path.StartsWith(root, s_pathComparison)
        && (path[root.Length] == Path.DirectorySeparatorChar || path[root.Length] == Path.AltDirectorySeparatorChar || Path.EndsInDirectorySeparator(root));

    /// <summary>
    /// <paramref name="path"/> with every symbolic link on it resolved (what <c>realpath</c> gives), so that a link
    /// inside the policy directory that points outside it cannot smuggle a file in. Missing parts are kept as they are.
    /// </summary>
    internal static string RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        var current = Path.GetPathRoot(full)!;
        var parts = full[current.Length..].Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);
        foreach (var part in parts)
        {
            var candidate = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(candidate) ? new DirectoryInfo(candidate) : new FileInfo(candidate);
            try
            {
                var target = info.LinkTarget is null ? null : info.ResolveLinkTarget(returnFinalTarget: true);
                current = target is null ? candidate : Path.GetFullPath(target.FullName);
            }
            catch (IOException)
            {
                current = candidate;
            }
        }

        return current;
    }
}
