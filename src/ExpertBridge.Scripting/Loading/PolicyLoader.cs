using System.Reflection;
using System.Runtime.CompilerServices;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// Loads a compiled policy into a fresh collectible load context and runs the script's top level, which returns the
/// policy instance. The top level runs on a worker with a time limit; a failure unloads the context and becomes a
/// diagnostic at the script line it came from.
/// </summary>
internal static class PolicyLoader
{
    internal const string RuleReturnsPolicy = "a policy script ends with 'return new SomePolicy(Options);'";

    public static (PolicyVersion? Version, ScriptDiagnostic? Error) Load(PolicyCompilation compiled, PolicyOptions overrides, int number, TimeSpan entryTimeout, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(compiled);
        var image = compiled.Image ?? throw new ArgumentException("the compilation failed; nothing to load", nameof(compiled));
        var sources = compiled.Sources;
        var main = sources.MainPath;
        var files = sources.Files.Select(f => f.Path).ToArray();
        var header = sources.Header.Options;
        var options = overrides.Values.Count == 0
            ? header
            : header.With(overrides, $"{overrides.Source} over {header.Source}");
        var globals = new PolicyScriptGlobals(options, main);
        var context = new PolicyLoadContext($"policy {Path.GetFileName(main)} v{number}", image.Libraries);
        IPlacementPolicy? policy;
        try
        {
            var entry = Task.Run(() => RunEntry(context, image, globals));
            if (!entry.Wait(entryTimeout))
            {
                context.Unload();
                return (null, Error(main, 1, 1, $"the script's top level did not finish within {entryTimeout.TotalSeconds:0.###} s (rule: a policy script only builds its policy; the time limit is ScriptingOptions.EntryTimeout)"));
            }

            policy = entry.Result;
        }
        catch (AggregateException ex)
        {
            context.Unload();
            var inner = ScriptFailure.Unwrap(ex);
            var at = ScriptFailure.ScriptFrame(inner, files) ?? (main, 1, 1);
            if (inner is InputException input)
            {
                // A user mistake the script detected (an option value it refuses): reported as that mistake.
                return (null, Error(at.File, at.Line, at.Column, $"the script's top level refused its input: {input.Message}") with { Cause = input });
            }

            return (null, Error(at.File, at.Line, at.Column, $"the script's top level threw {inner.GetType().Name}: {inner.Message}"));
        }

        if (policy is null)
        {
            context.Unload();
            return (null, Error(main, 1, 1, $"the script did not return a policy (rule: {RuleReturnsPolicy})"));
        }

        string name;
        try
        {
            name = string.IsNullOrWhiteSpace(policy.Name) ? Path.GetFileNameWithoutExtension(main) : policy.Name;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            context.Unload();
            return (null, Error(main, 1, 1, $"the policy's Name threw {ScriptFailure.Describe(ex, files)}"));
        }

        return (new PolicyVersion(policy, number, name, main, sources.ContentHash, files, context, logger), null);
    }

    /// <summary>
    /// Loads the image and calls the script's factory. Not inlined, so that the assembly, type and delegate it touches
    /// are unreachable once it returns: only the policy instance keeps the context alive.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Task<IPlacementPolicy> RunEntry(PolicyLoadContext context, PolicyImage image, PolicyScriptGlobals globals)
    {
        using var scope = context.EnterContextualReflection();
        var assembly = context.LoadFromStream(new MemoryStream(image.Bytes, writable: false));
        var type = assembly.GetType(image.EntryType, throwOnError: true)!;
        var method = type.GetMethod(image.EntryMethod, BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            ?? throw new MissingMethodException(image.EntryType, image.EntryMethod);
        var factory = method.CreateDelegate<Func<object?[], Task<IPlacementPolicy>>>();

        // Slot 0 holds the globals, slot 1 this submission's state (the script compiler's calling convention).
        return factory([globals, null]);
    }

    private static ScriptDiagnostic Error(string file, int line, int column, string message) =>
        new(file, line, column, ScriptDiagnosticSeverity.Error, ScriptDiagnostic.ScriptId, message);
}
