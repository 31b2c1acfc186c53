using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using ExpertBridge.Core.Policies;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Emit;
using Microsoft.CodeAnalysis.Text;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>The result of compiling a policy: an image to load, or the diagnostics that stop it.</summary>
internal sealed record PolicyCompilation(
    PolicySourceSet Sources,
    PolicyImage? Image,
    IReadOnlyList<ScriptDiagnostic> Diagnostics,
    bool FromCache,
    TimeSpan Elapsed)
{
    public bool Success => Image is not null;
}

/// <summary>
/// Compiles policy scripts with Roslyn to bytes: a script compilation (the <c>.csx</c> dialect, <c>#load</c>
/// resolved from the files already read) whose result is an <see cref="IPlacementPolicy"/> and whose globals are
/// <see cref="PolicyScriptGlobals"/>; Release, nullable annotations on (flow analysis and its warnings on request:
/// <see cref="ScriptingOptions.NullableWarnings"/>), no unsafe code, embedded PDB and sources (so stack
/// traces name script lines). References are fixed: the BCL and ExpertBridge.Core. The API guard runs on every
/// compilation. Images are cached on disk by a key over every source byte, the compiler, the runtime and the
/// contract and host assemblies. One compile at a time: Roslyn's allocations are large.
/// <para>
/// Why not <c>CSharpScript.Create</c>: its script objects carry an <c>InteractiveAssemblyLoader</c> whose load
/// context is not collectible; the host needs nothing from it but the compilation, which this builds directly.
/// </para>
/// </summary>
internal sealed class PolicyScriptCompiler
{
    internal const string ScriptClassName = "PolicyScript";

    private static readonly string[] s_imports = ["System", "System.Linq", "System.Collections.Generic", "ExpertBridge.Core", "ExpertBridge.Core.Policies"];

    // Compiler diagnostics that say nothing to a script author: assembly unification notes.
    private static readonly HashSet<string> s_ignored = new(StringComparer.Ordinal) { "CS1701", "CS1702", "CS1705" };

    // The compiler's "unsafe code needs /unsafe" errors, redundant once the guard has refused the unsafe code.
    private static readonly HashSet<string> s_unsafeIds = new(StringComparer.Ordinal) { "CS0227", "CS0214" };

    private static readonly Lazy<ScriptCompileSettings> s_settings = new(() => new ScriptCompileSettings(s_imports, BuildReferences()));
    private static readonly Lazy<string> s_environmentKey = new(BuildEnvironmentKey);

    private readonly CompiledPolicyCache? _cache;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly PolicyLibraryCompiler _libraries = new();
    private readonly ScriptCompileSettings _settings;
    private long _compilations;
    private long _libraryCompilations;
    private long _guardWalks;

    public PolicyScriptCompiler(CompiledPolicyCache? cache, ILogger logger, bool nullableWarnings = false)
    {
        _cache = cache;
        _logger = logger;
        _settings = s_settings.Value with { NullableWarnings = nullableWarnings };
    }

    /// <summary>Script compilations run so far (cache hits do not count; libraries are counted apart): what tests observe.</summary>
    public long Compilations => Interlocked.Read(ref _compilations);

    /// <summary>Policy libraries compiled so far (<see cref="PolicyLibraryCompiler"/>; memory and disk hits do not count).</summary>
    public long LibraryCompilations => Interlocked.Read(ref _libraryCompilations);

    /// <summary>Compilations (scripts and libraries) whose image referenced something refused, so the API guard walked the source.</summary>
    public long GuardWalks => Interlocked.Read(ref _guardWalks);

    public CompiledPolicyCache? Cache => _cache;

    /// <summary>16 hex digits over the compile environment: the compiler, the runtime, the contract and host assemblies.</summary>
    internal static string EnvironmentFingerprint =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s_environmentKey.Value)))[..16];

    /// <summary>The cache key of <paramref name="sources"/>: SHA-256 over its content hash and the environment.</summary>
    public static string CacheKey(PolicySourceSet sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        var text = $"{s_environmentKey.Value}\n{sources.ContentHash}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>Compiles <paramref name="sources"/> (or takes the cached image), reporting every problem.</summary>
    public PolicyCompilation Compile(PolicySourceSet sources, bool useCache, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(sources);
        var clock = Stopwatch.StartNew();
        if (sources.HasErrors)
        {
            return new PolicyCompilation(sources, null, sources.Diagnostics, false, clock.Elapsed);
        }

        var key = CacheKey(sources);
        if (useCache && _cache is not null && _cache.TryRead(key, out var cached))
        {
            Log.CacheHit(_logger, sources.MainPath, key);
            return new PolicyCompilation(sources, cached, sources.Diagnostics, true, clock.Elapsed);
        }

        lock (_gate)
        {
            Interlocked.Increment(ref _compilations);
            var (library, libraryCompiled) = _libraries.Get(sources, s_environmentKey.Value, _settings, _cache, useCache, _logger, ref _guardWalks, cancellation);
            if (libraryCompiled)
            {
                Interlocked.Increment(ref _libraryCompilations);
            }

            var (image, diagnostics) = CompileCore(sources, key, library, _settings, ref _guardWalks, cancellation);
            if (image is not null && _cache is not null)
            {
                _cache.Write(key, image);
            }

            return new PolicyCompilation(sources, image, [.. sources.Diagnostics, .. diagnostics], false, clock.Elapsed);
        }
    }

    /// <summary>
    /// One script compilation: of all the files, or, with <paramref name="library"/>, of the script alone against the
    /// library's assembly (its <c>#load</c> directives then read empty files).
    /// </summary>
    private static (PolicyImage? Image, List<ScriptDiagnostic> Diagnostics) CompileCore(
        PolicySourceSet sources, string key, PolicyLibrary? library, ScriptCompileSettings settings, ref long guardWalks, CancellationToken cancellation)
    {
        var options = settings.Options(OutputKind.DynamicallyLinkedLibrary, ScriptClassName)
            .WithSourceReferenceResolver(new PolicySourceResolver(sources, library));
        var compilation = CSharpCompilation.CreateScriptCompilation(
            library is null ? $"policy-{key[..16]}" : PolicyLibraryCompiler.ScriptAssemblyName,
            sources.Main.Tree,
            library is null ? settings.References : settings.References.Add(library.Reference),
            options,
            previousScriptCompilation: null,
            returnType: typeof(IPlacementPolicy),
            globalsType: typeof(PolicyScriptGlobals));

        var (image, diagnostics) = EmitChecked(compilation, library is null ? sources.Files : [sources.Main], sources.MainPath, walkFailures: true, ref guardWalks, cancellation);
        diagnostics.AddRange(library?.Warnings ?? []);
        var entry = image is null ? null : compilation.GetEntryPoint(cancellation);
        return (entry is null ? null : new PolicyImage(image!, entry.ContainingType.MetadataName, entry.MetadataName, library is null ? [] : [library.Image]), Sort(diagnostics));
    }

    /// <summary>
    /// Emits <paramref name="compilation"/> (Release image, embedded PDB, <paramref name="embedded"/> sources embedded)
    /// and applies the API guard: emit first, since its diagnostics are the compiler's full report and the image
    /// tells whether the (costly) source walk is needed at all (<see cref="PolicyApiGuard.MayBreakRules"/>). A failed
    /// emit is walked only with <paramref name="walkFailures"/> (so that the report names refused uses too). The image
    /// is null when anything is an error; the diagnostics are the guard's, then the compiler's.
    /// </summary>
    internal static (byte[]? Image, List<ScriptDiagnostic> Diagnostics) EmitChecked(
        Compilation compilation, IEnumerable<PolicySourceFile> embedded, string mainPath, bool walkFailures, ref long guardWalks, CancellationToken cancellation)
    {
        using var pe = new MemoryStream();
        var emit = compilation.Emit(
            pe,
            options: new EmitOptions(debugInformationFormat: DebugInformationFormat.Embedded),
            embeddedTexts: embedded.Select(f => EmbeddedText.FromSource(f.Path, f.Text)),
            cancellationToken: cancellation);
        var image = emit.Success ? pe.ToArray() : null;
        IReadOnlyList<ScriptDiagnostic> guard = [];
        if (image is null ? walkFailures : PolicyApiGuard.MayBreakRules(compilation, image))
        {
            Interlocked.Increment(ref guardWalks);
            guard = PolicyApiGuard.Check(compilation, cancellation);
        }

        var diagnostics = new List<ScriptDiagnostic>(guard);
        diagnostics.AddRange(ToScriptDiagnostics(emit.Diagnostics, mainPath, PolicyApiGuard.RefusedUnsafe(guard)));
        return (diagnostics.Exists(d => d.IsError) ? null : image, diagnostics);
    }

    internal static IEnumerable<ScriptDiagnostic> ToScriptDiagnostics(IEnumerable<Diagnostic> diagnostics, string mainPath, bool dropUnsafe)
    {
        foreach (var d in diagnostics)
        {
            if (d.Severity is not (DiagnosticSeverity.Error or DiagnosticSeverity.Warning) || s_ignored.Contains(d.Id) || (dropUnsafe && s_unsafeIds.Contains(d.Id)))
            {
                continue;
            }

            var span = d.Location.GetMappedLineSpan();
            var path = span.IsValid && !string.IsNullOrEmpty(span.Path) ? span.Path : mainPath;
            var severity = d.Severity == DiagnosticSeverity.Error || d.IsWarningAsError ? ScriptDiagnosticSeverity.Error : ScriptDiagnosticSeverity.Warning;
            yield return new ScriptDiagnostic(path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1, severity, d.Id, d.GetMessage(CultureInfo.InvariantCulture));
        }
    }

    private static List<ScriptDiagnostic> Sort(List<ScriptDiagnostic> diagnostics) =>
        [.. diagnostics.Distinct().OrderByDescending(d => d.IsError).ThenBy(d => d.File, StringComparer.Ordinal).ThenBy(d => d.Line).ThenBy(d => d.Column)];

    /// <summary>The BCL assemblies scripts compile against, plus ExpertBridge.Core (built once per process).</summary>
    private static ImmutableArray<MetadataReference> BuildReferences()
    {
        var framework = Path.GetDirectoryName(typeof(object).Assembly.Location);
        var contract = typeof(IPlacementPolicy).Assembly.Location;
        if (string.IsNullOrEmpty(framework) || string.IsNullOrEmpty(contract))
        {
            throw new InvalidOperationException("policy scripts need the framework and ExpertBridge.Core assemblies on disk: a single-file or Native AOT host cannot compile scripts (publish it framework-dependent or self-contained, not single-file)");
        }

        string[] names =
        [
            "System.Private.CoreLib", "System.Runtime", "System.Collections", "System.Collections.Immutable", "System.Linq",
            "System.Memory", "System.Numerics.Vectors", "System.Runtime.Intrinsics", "System.Runtime.Numerics",

            // Referenced only so that the guard can name what a script reached for ("System.Console is not
            // allowed ...") instead of the compiler's "the name 'Console' does not exist".
            "System.Console", "System.Diagnostics.Process", "System.ComponentModel.Primitives", "System.Net.Http",
            "System.Net.Primitives", "System.Net.Sockets",
        ];
        var contractDependencies = typeof(IPlacementPolicy).Assembly.GetReferencedAssemblies().Select(a => a.Name!);
        var paths = names.Concat(contractDependencies)
            .Select(n => Path.Combine(framework, n + ".dll"))
            .Where(File.Exists)
            .Append(contract)
            .Distinct(StringComparer.Ordinal);
        return [.. paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    }

    /// <summary>Everything besides the sources that changes what a compile produces.</summary>
    private static string BuildEnvironmentKey()
    {
        static string Describe(Assembly a) =>
            $"{a.GetName().Name} {a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion} {a.ManifestModule.ModuleVersionId}";

        return string.Join(
            '\n',
            "expertbridge-policy/1",
            PolicyApiGuard.Version,
            Describe(typeof(CSharpCompilation).Assembly),
            Describe(typeof(Compilation).Assembly),
            RuntimeInformation.FrameworkDescription,
            RuntimeInformation.RuntimeIdentifier,
            Describe(typeof(IPlacementPolicy).Assembly),
            Describe(typeof(PolicyScriptCompiler).Assembly));
    }

    /// <summary>
    /// Serves <c>#load</c> from the files <see cref="PolicySourceSet"/> already read (and checked); the files of a
    /// library compiled apart read empty, their types come from the library's assembly.
    /// </summary>
    private sealed class PolicySourceResolver : SourceReferenceResolver
    {
        private static readonly SourceText s_empty = SourceText.From("", Encoding.UTF8, SourceHashAlgorithm.Sha256);
        private readonly PolicySourceSet _sources;
        private readonly PolicyLibrary? _library;

        public PolicySourceResolver(PolicySourceSet sources, PolicyLibrary? library)
        {
            _sources = sources;
            _library = library;
        }

        public override string? NormalizePath(string path, string? baseFilePath) => PolicySourceSet.ResolveLoad(path, baseFilePath) ?? path;

        public override string? ResolveReference(string path, string? baseFilePath) =>
            PolicySourceSet.ResolveLoad(path, baseFilePath) is { } full && _sources.TryGet(full, out _) ? full : null;

        public override Stream OpenRead(string resolvedPath) => new MemoryStream(InLibrary(resolvedPath) ? [] : Get(resolvedPath).Bytes, writable: false);

        public override SourceText ReadText(string resolvedPath) => InLibrary(resolvedPath) ? s_empty : Get(resolvedPath).Text;

        public override bool Equals(object? obj) => obj is PolicySourceResolver other && ReferenceEquals(other._sources, _sources) && ReferenceEquals(other._library, _library);

        public override int GetHashCode() => HashCode.Combine(_sources, _library);

        private bool InLibrary(string path) => _library is not null && _library.Files.Contains(path, PolicySourceSet.PathComparer);

        private PolicySourceFile Get(string path) =>
            _sources.TryGet(path, out var file) ? file : throw new FileNotFoundException("not one of the policy's sources", path);
    }
}
