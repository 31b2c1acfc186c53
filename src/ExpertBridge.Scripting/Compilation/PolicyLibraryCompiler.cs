using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// A policy's <c>#load</c>ed files compiled once, as ordinary C#, into an assembly of their own, which the script is
/// then compiled against. An operator tunes a policy by editing its script (header options, the constructor call),
/// rarely the library under it; compiling the 3,000-line OmniPlacement library again on each such edit made a warm
/// reload cost a second. With the library split off, a reload compiles only the script.
/// <para>
/// Only libraries that mean the same in both dialects are split off: every <c>#load</c>ed file holds nothing but
/// using directives, type declarations and <c>#load</c>s of more such files (no top-level statements, members,
/// attributes or <c>#r</c>), so a library may be split into files that load each other,
/// and the files compile, pass the API guard and emit on their own. Anything else (a library that reads the script's
/// globals, declares a top-level method, or does not compile) keeps the one script compilation of all files, whose
/// diagnostics an author already knows. Library types keep their accessibility: the library grants its internals to
/// the script assembly (<see cref="ScriptAssemblyName"/>).
/// </para>
/// <para>
/// Compiled libraries are kept by the compiler that built them (by a key over their files' paths and bytes and the
/// compile environment) and, with the cache on, on disk: a restarted host, or another host in the process
/// (<c>compare</c> loads several scripts over one library), that compiles an edited script skips the library too.
/// </para>
/// </summary>
internal sealed class PolicyLibraryCompiler
{
    /// <summary>The assembly name of every script compiled against a library: the name the library's internals are visible to.</summary>
    internal const string ScriptAssemblyName = "policy-script";

    private const int MemoryEntries = 16;

    private static readonly CSharpParseOptions s_parseOptions =
        CSharpParseOptions.Default.WithKind(SourceCodeKind.Regular).WithLanguageVersion(LanguageVersion.Latest);

    // Most recently used last; a failed library is remembered as null, so it is not compiled again on every reload.
    private readonly List<(string Key, PolicyLibrary? Library)> _memory = [];

    /// <summary>
    /// The library of <paramref name="sources"/>, when its <c>#load</c>ed files qualify and compile on their own (else
    /// null), and whether this call compiled it (found neither in memory nor on disk). A compiled library is written
    /// to <paramref name="cache"/>, which is read only with <paramref name="readCache"/> (the script compiler's
    /// <c>useCache</c>: <c>policy check</c> always compiles, and still fills the cache). Called under the script
    /// compiler's lock.
    /// </summary>
    public (PolicyLibrary? Library, bool Compiled) Get(
        PolicySourceSet sources, string environmentKey, ScriptCompileSettings settings, CompiledPolicyCache? cache, bool readCache, ILogger logger, ref long guardWalks, CancellationToken cancellation)
    {
        var compiled = false;
        var files = sources.Files.Skip(1).ToList();
        if (files.Count == 0 || !files.TrueForAll(IsLibraryFile))
        {
            return (null, false);
        }

        var key = Key(files, environmentKey);
        var at = _memory.FindIndex(e => e.Key == key);
        if (at >= 0)
        {
            var hit = _memory[at];
            _memory.RemoveAt(at);
            _memory.Add(hit);
            return (hit.Library, false);
        }

        PolicyLibrary? library;
        if (readCache && cache is not null && cache.TryReadLibrary(key, out var image) && image.AssemblyName == AssemblyName(key))
        {
            Log.CacheHit(logger, string.Join(", ", files.Select(f => f.Path)), key);
            library = new PolicyLibrary(key, image, [.. files.Select(f => f.Path)], []);
        }
        else
        {
            compiled = true;
            library = Compile(files, key, settings, ref guardWalks, cancellation);
            if (library is not null)
            {
                cache?.WriteLibrary(key, library.Image);
            }
        }

        _memory.Add((key, library));
        if (_memory.Count > MemoryEntries)
        {
            _memory.RemoveAt(0);
        }

        return (library, compiled);
    }

    /// <summary>
    /// True when <paramref name="file"/> reads the same as a script file and as ordinary C#. Its <c>#load</c>
    /// directives are allowed: the files they name are in the same closure and must qualify too, and the library's
    /// trees keep the script parse, in which a directive is trivia that the ordinary compilation ignores.
    /// </summary>
    internal static bool IsLibraryFile(PolicySourceFile file)
    {
        var unit = file.Tree.GetCompilationUnitRoot();
        return unit.AttributeLists.Count == 0
            && unit.Externs.Count == 0
            && unit.GetReferenceDirectives().Count == 0
            && unit.Members.All(m => m is BaseTypeDeclarationSyntax or DelegateDeclarationSyntax);
    }

    private static string AssemblyName(string key) => $"policy-lib-{key[..16]}";

    private static string Key(List<PolicySourceFile> files, string environmentKey)
    {
        var content = PolicySourceSet.HashFiles(files.Select(f => f.Path), path => files.Find(f => f.Path == path)!.Bytes);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"library\n{environmentKey}\n{content}")));
    }

    private static PolicyLibrary? Compile(List<PolicySourceFile> files, string key, ScriptCompileSettings settings, ref long guardWalks, CancellationToken cancellation)
    {
        // The script dialect's implicit imports, as global usings, and the script's access to internal types.
        var prelude = string.Concat(settings.Imports.Select(i => $"global using {i};\n"))
            + $"[assembly: System.Runtime.CompilerServices.InternalsVisibleTo(\"{ScriptAssemblyName}\")]\n";
        // The files' script parse is reused as ordinary C#: for a file of usings and type declarations (what
        // IsLibraryFile admits) the two dialects parse to the same tree, and a second parse of 3,000 lines is 20 to
        // 90 ms of a compile.
        var trees = files
            .Select(f => CSharpSyntaxTree.Create((CSharpSyntaxNode)f.Tree.GetRoot(cancellation), s_parseOptions, f.Path, f.Text.Encoding))
            .Prepend(CSharpSyntaxTree.ParseText(prelude, s_parseOptions, "", Encoding.UTF8, cancellation));
        var compilation = CSharpCompilation.Create(AssemblyName(key), trees, settings.References, settings.Options(OutputKind.DynamicallyLinkedLibrary, null));
        var (image, diagnostics) = PolicyScriptCompiler.EmitChecked(compilation, files, files[0].Path, walkFailures: false, ref guardWalks, cancellation);
        return image is null ? null : new PolicyLibrary(key, new PolicyLibraryImage(AssemblyName(key), image), [.. files.Select(f => f.Path)], diagnostics);
    }
}

/// <summary>A compiled policy library: the image, the reference scripts compile against, and its compiler warnings.</summary>
internal sealed class PolicyLibrary
{
    public PolicyLibrary(string key, PolicyLibraryImage image, IReadOnlyList<string> files, IReadOnlyList<ScriptDiagnostic> warnings)
    {
        Key = key;
        Image = image;
        Files = files;
        Warnings = warnings;
        Reference = MetadataReference.CreateFromImage(image.Bytes, filePath: image.AssemblyName + ".dll");
    }

    public string Key { get; }

    public PolicyLibraryImage Image { get; }

    /// <summary>The <c>#load</c>ed files it was compiled from (full paths).</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>Compiler warnings in the library's files (none when it came from the disk cache).</summary>
    public IReadOnlyList<ScriptDiagnostic> Warnings { get; }

    /// <summary>One reference per library, so that Roslyn reads its metadata once for every script compiled against it.</summary>
    public MetadataReference Reference { get; }
}

/// <summary>What scripts and libraries are compiled with: implicit imports, references, and the options.</summary>
internal sealed record ScriptCompileSettings(IReadOnlyList<string> Imports, ImmutableArray<MetadataReference> References)
{
    /// <summary>
    /// Nullable flow analysis and its warnings; without it the nullable annotations are still compiled (the code is
    /// the same), and the compile is shorter (<see cref="ScriptingOptions.NullableWarnings"/>).
    /// </summary>
    public bool NullableWarnings { get; init; }

    public CSharpCompilationOptions Options(OutputKind kind, string? scriptClassName) => new(
        kind,
        scriptClassName: scriptClassName ?? WellKnownMemberNames.DefaultScriptClassName,
        usings: scriptClassName is null ? null : Imports,
        optimizationLevel: OptimizationLevel.Release,
        checkOverflow: false,
        allowUnsafe: false,
        nullableContextOptions: NullableWarnings ? NullableContextOptions.Enable : NullableContextOptions.Annotations,
        deterministic: true);
}
