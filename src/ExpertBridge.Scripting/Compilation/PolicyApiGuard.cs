using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ExpertBridge.Scripting;

/// <summary>
/// Refuses, at compile time, scripts that reach outside a pure placement function: the file system, processes, the
/// network, reflection and run-time code generation, unsafe code and native interop, threads and timers, the
/// environment and the console. It walks every name in the script and its <c>#load</c>ed files through the
/// semantic model, so aliases, <c>using static</c>, <c>var</c> and extension methods are seen as the symbols they
/// bind to. A guard rail for operator-trusted code, not a sandbox (docs/policies.md says why).
/// <para>
/// The walk binds every name again, which costs as much as compiling. So the compiler first emits, and
/// <see cref="MayBreakRules"/> reads the image's references: every use of a refused type or member leaves a type or
/// member reference there (unsafe and extern constructs are found in the syntax, without binding). Only an image that
/// references something refused (compiler-generated code can: collection expressions use CollectionsMarshal) or a
/// failed compile gets the walk, which then says precisely what the source wrote, and where.
/// </para>
/// </summary>
internal static class PolicyApiGuard
{
    internal const string RuleFileSystem = "no file system access";
    internal const string RuleProcesses = "no processes";
    internal const string RuleNetwork = "no network access";
    internal const string RuleReflection = "no reflection or run-time code generation";
    internal const string RuleUnsafe = "no unsafe code, P/Invoke or native memory";
    internal const string RuleThreads = "no threads, timers or background work";
    internal const string RuleEnvironment = "no environment, console or runtime control";

    /// <summary>Bumped whenever the rules change, so cached compilations are checked again.</summary>
    internal const string Version = "guard/2";

    // Namespaces refused with everything under them.
    private static readonly (string Namespace, string Rule)[] s_namespaces =
    [
        ("System.IO", RuleFileSystem),
        ("System.Net", RuleNetwork),
        ("System.Reflection", RuleReflection),
        ("System.Runtime.Loader", RuleReflection),
        ("System.Linq.Expressions", RuleReflection),
        ("System.Runtime.InteropServices", RuleUnsafe),
        ("Microsoft.Win32", RuleUnsafe),
        ("System.Timers", RuleThreads),
    ];

    // Types refused (with their members and nested types), by metadata name.
    private static readonly Dictionary<string, string> s_types = new(StringComparer.Ordinal)
    {
        ["System.Diagnostics.Process"] = RuleProcesses,
        ["System.Diagnostics.ProcessStartInfo"] = RuleProcesses,
        ["System.Diagnostics.ProcessModule"] = RuleProcesses,
        ["System.Diagnostics.ProcessThread"] = RuleProcesses,
        ["System.Diagnostics.Debugger"] = RuleProcesses,
        ["System.Activator"] = RuleReflection,
        ["System.Type"] = RuleReflection,
        ["System.TypedReference"] = RuleReflection,
        ["System.RuntimeTypeHandle"] = RuleReflection,
        ["System.RuntimeMethodHandle"] = RuleReflection,
        ["System.RuntimeFieldHandle"] = RuleReflection,
        ["System.ModuleHandle"] = RuleReflection,
        ["System.Runtime.CompilerServices.Unsafe"] = RuleUnsafe,
        ["System.ArgIterator"] = RuleUnsafe,
        ["System.RuntimeArgumentHandle"] = RuleUnsafe,
        ["System.Threading.Thread"] = RuleThreads,
        ["System.Threading.ThreadPool"] = RuleThreads,
        ["System.Threading.Timer"] = RuleThreads,
        ["System.Threading.PeriodicTimer"] = RuleThreads,
        ["System.Threading.ThreadLocal`1"] = RuleThreads,
        ["System.Threading.RegisteredWaitHandle"] = RuleThreads,
        ["System.Threading.ExecutionContext"] = RuleThreads,
        ["System.Threading.SynchronizationContext"] = RuleThreads,
        ["System.Threading.Tasks.Parallel"] = RuleThreads,
        ["System.Threading.Tasks.TaskFactory"] = RuleThreads,
        ["System.Threading.Tasks.TaskFactory`1"] = RuleThreads,
        ["System.Threading.Tasks.TaskScheduler"] = RuleThreads,
        ["System.Environment"] = RuleEnvironment,
        ["System.AppContext"] = RuleEnvironment,
        ["System.AppDomain"] = RuleEnvironment,
        ["System.GC"] = RuleEnvironment,
        ["System.Console"] = RuleEnvironment,
    };

    // Members refused on otherwise allowed types, by "type metadata name.member name".
    private static readonly Dictionary<string, string> s_members = new(StringComparer.Ordinal)
    {
        ["System.Threading.Tasks.Task.Run"] = RuleThreads,
        ["System.Threading.Tasks.Task.Delay"] = RuleThreads,
        ["System.Threading.Tasks.Task.Factory"] = RuleThreads,
        ["System.Threading.Tasks.Task.Start"] = RuleThreads,
        ["System.Threading.Tasks.Task.Yield"] = RuleThreads,
        ["System.Threading.Tasks.Task`1.Factory"] = RuleThreads,
        ["System.Delegate.DynamicInvoke"] = RuleReflection,
        ["System.Delegate.CreateDelegate"] = RuleReflection,
        ["System.Delegate.Method"] = RuleReflection,
    };

    private sealed record Violation(SyntaxNode Node, SyntaxNode Chain, string Name, string Rule, bool IsNamespace, bool IsVar);

    /// <summary>
    /// Every refused use in <paramref name="compilation"/>, in source order: one per rule and statement, placed at
    /// the start of the dotted name (<c>System.IO.File.ReadAllText</c> reads "System.IO.File is not allowed").
    /// </summary>
    public static IReadOnlyList<ScriptDiagnostic> Check(Compilation compilation, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(compilation);
        var result = new List<ScriptDiagnostic>();
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            var violations = new List<Violation>();
            var unsafeSpans = new List<Microsoft.CodeAnalysis.Text.TextSpan>();
            foreach (var node in tree.GetRoot(cancellation).DescendantNodes())
            {
                cancellation.ThrowIfCancellationRequested();
                if (UnsafeConstruct(node) is { } construct)
                {
                    // Report the outermost unsafe construct only (an unsafe block, not each pointer in it).
                    if (!unsafeSpans.Exists(s => s.Contains(node.Span)))
                    {
                        unsafeSpans.Add(node.Span);
                        violations.Add(new Violation(node, node, construct, RuleUnsafe, false, false));
                    }

                    continue;
                }

                if (node is not (SimpleNameSyntax or ImplicitObjectCreationExpressionSyntax))
                {
                    continue;
                }

                var info = model.GetSymbolInfo(node, cancellation);
                var symbol = info.Symbol ?? info.CandidateSymbols.FirstOrDefault();
                var hit = symbol is not null ? Classify(symbol) : node is SimpleNameSyntax name ? ClassifyUnresolved(name) : null;
                if (hit is { } h)
                {
                    var isVar = node is IdentifierNameSyntax { IsVar: true };
                    violations.Add(new Violation(node, ChainOf(node), h.Name, h.Rule, symbol is INamespaceSymbol, isVar));
                }
            }

            // The first type or member of each dotted name (else its first namespace); then, per statement, one
            // report per rule, preferring what the script wrote over what `var` inferred.
            var perChain = violations.GroupBy(v => v.Chain).Select(chain => chain.FirstOrDefault(v => !v.IsNamespace) ?? chain.First());
            var picked = perChain
                .GroupBy(v => (Statement: StatementOf(v.Node), v.Rule))
                .Select(g => g.OrderBy(v => v.IsVar).ThenBy(v => v.Node.SpanStart).First())
                .OrderBy(v => v.Chain.SpanStart);
            foreach (var v in picked)
            {
                var span = v.Chain.GetLocation().GetLineSpan();
                result.Add(new ScriptDiagnostic(
                    span.Path,
                    span.StartLinePosition.Line + 1,
                    span.StartLinePosition.Character + 1,
                    ScriptDiagnosticSeverity.Error,
                    ScriptDiagnostic.ForbiddenApiId,
                    $"{v.Name} is not allowed in policies (rule: {v.Rule})"));
            }
        }

        return result;
    }

    /// <summary>
    /// False when <paramref name="compilation"/> has no unsafe or extern construct and its emitted
    /// <paramref name="image"/> references nothing a policy may not touch, so the source walk can be skipped; true
    /// when it may (then <see cref="Check"/> decides, from the source).
    /// </summary>
    public static bool MayBreakRules(Compilation compilation, byte[] image)
    {
        ArgumentNullException.ThrowIfNull(compilation);
        ArgumentNullException.ThrowIfNull(image);
        if (compilation.SyntaxTrees.Any(t => t.GetRoot().DescendantNodes().Any(n => UnsafeConstruct(n) is not null)))
        {
            return true;
        }

        using var pe = new PEReader(new MemoryStream(image, writable: false));
        var md = pe.GetMetadataReader();
        if (md.GetTableRowCount(TableIndex.ImplMap) > 0)
        {
            return true;
        }

        foreach (var handle in md.TypeReferences)
        {
            if (ReferencedTypeRule(TypeReferenceName(md, handle)) is not null)
            {
                return true;
            }
        }

        foreach (var handle in md.MemberReferences)
        {
            var member = md.GetMemberReference(handle);
            var owner = member.Parent.Kind switch
            {
                HandleKind.TypeReference => TypeReferenceName(md, (TypeReferenceHandle)member.Parent),
                HandleKind.TypeSpecification => GenericDefinitionName(md, (TypeSpecificationHandle)member.Parent),
                _ => null,
            };
            if (owner is not null && s_members.ContainsKey($"{owner}.{AccessorFree(md.GetString(member.Name))}"))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The rule a referenced type (metadata name, <c>Ns.Outer+Inner`1</c>) breaks, or null.</summary>
    private static string? ReferencedTypeRule(string metadataName)
    {
        for (var end = metadataName.Length; end > 0; end = metadataName.LastIndexOf('+', end - 1))
        {
            if (s_types.TryGetValue(metadataName[..end], out var rule))
            {
                return rule;
            }
        }

        var outer = metadataName.Split('+')[0];
        var dot = outer.LastIndexOf('.');
        return dot > 0 ? NamespaceRule(outer[..dot]) : null;
    }

    private static string TypeReferenceName(MetadataReader md, TypeReferenceHandle handle)
    {
        var type = md.GetTypeReference(handle);
        var name = md.GetString(type.Name);
        if (type.ResolutionScope.Kind == HandleKind.TypeReference)
        {
            return $"{TypeReferenceName(md, (TypeReferenceHandle)type.ResolutionScope)}+{name}";
        }

        var ns = md.GetString(type.Namespace);
        return ns.Length == 0 ? name : $"{ns}.{name}";
    }

    /// <summary>The generic type a type specification instantiates (<c>Task`1</c> for <c>Task&lt;int&gt;</c>), or null.</summary>
    private static string? GenericDefinitionName(MetadataReader md, TypeSpecificationHandle handle)
    {
        var blob = md.GetBlobReader(md.GetTypeSpecification(handle).Signature);
        if (blob.ReadSignatureTypeCode() != SignatureTypeCode.GenericTypeInstance)
        {
            return null;
        }

        blob.ReadSignatureTypeCode(); // class or value type
        var definition = blob.ReadTypeHandle();
        return definition.Kind == HandleKind.TypeReference ? TypeReferenceName(md, (TypeReferenceHandle)definition) : null;
    }

    private static string AccessorFree(string name)
    {
        foreach (var prefix in (ReadOnlySpan<string>)["get_", "set_", "add_", "remove_"])
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                return name[prefix.Length..];
            }
        }

        return name;
    }

    /// <summary>True when a diagnostic list from <see cref="Check"/> refused unsafe code (the compiler's own
    /// "unsafe code needs /unsafe" errors then say nothing more).</summary>
    internal static bool RefusedUnsafe(IEnumerable<ScriptDiagnostic> diagnostics) =>
        diagnostics.Any(d => d.Id == ScriptDiagnostic.ForbiddenApiId && d.Message.EndsWith($"(rule: {RuleUnsafe})", StringComparison.Ordinal));

    private static (string Name, string Rule)? Classify(ISymbol symbol)
    {
        switch (symbol)
        {
            case IAliasSymbol alias:
                return Classify(alias.Target);
            case INamespaceSymbol ns:
                var name = ns.ToDisplayString();
                return NamespaceRule(name) is { } rule ? (name, rule) : null;
            case IDynamicTypeSymbol:
                return ("dynamic", RuleReflection);
            case ITypeSymbol type:
                return ClassifyType(type);
            case IMethodSymbol or IPropertySymbol or IFieldSymbol or IEventSymbol:
                var member = symbol is IMethodSymbol { ReducedFrom: { } reduced } ? reduced : symbol;
                if (member.ContainingType is not { } owner)
                {
                    return null;
                }

                var ownerDefinition = owner.OriginalDefinition;
                var display = member is IMethodSymbol { MethodKind: MethodKind.Constructor or MethodKind.StaticConstructor }
                    ? ownerDefinition.ToDisplayString()
                    : $"{ownerDefinition.ToDisplayString()}.{member.Name}";
                if (s_members.TryGetValue($"{MetadataName(ownerDefinition)}.{member.Name}", out var memberRule))
                {
                    return (display, memberRule);
                }

                return ClassifyType(owner) is { } ownerHit ? (display, ownerHit.Rule) : null;
            default:
                return null;
        }
    }

    private static (string Name, string Rule)? ClassifyType(ITypeSymbol type)
    {
        switch (type)
        {
            case IArrayTypeSymbol array:
                return ClassifyType(array.ElementType);
            case IPointerTypeSymbol or IFunctionPointerTypeSymbol:
                return (type.ToDisplayString(), RuleUnsafe);
            case INamedTypeSymbol named:
                var definition = named.OriginalDefinition;
                for (var t = definition; t is not null; t = t.ContainingType)
                {
                    if (s_types.TryGetValue(MetadataName(t), out var rule))
                    {
                        return (definition.ToDisplayString(), rule);
                    }
                }

                var ns = definition.ContainingNamespace?.ToDisplayString();
                return ns is not null && NamespaceRule(ns) is { } nsRule ? (definition.ToDisplayString(), nsRule) : null;
            default:
                return null;
        }
    }

    /// <summary>
    /// A dotted name the compiler could not bind (its assembly is not referenced, e.g. <c>System.Diagnostics.Process</c>
    /// or <c>System.Net.Http</c>), judged by its text so that the author still learns which rule it breaks.
    /// </summary>
    private static (string Name, string Rule)? ClassifyUnresolved(SimpleNameSyntax name)
    {
        var dotted = name.Parent switch
        {
            QualifiedNameSyntax q when q.Right == name => q.ToString(),
            MemberAccessExpressionSyntax m when m.Name == name && IsDottedName(m.Expression) => m.ToString(),
            _ => null,
        };
        if (dotted is null)
        {
            return null;
        }

        dotted = string.Concat(dotted.Where(c => !char.IsWhiteSpace(c)));
        if (s_types.TryGetValue(dotted, out var rule))
        {
            return (dotted, rule);
        }

        return NamespaceRule(dotted) is { } nsRule ? (dotted, nsRule) : null;
    }

    private static bool IsDottedName(ExpressionSyntax e) => e switch
    {
        IdentifierNameSyntax => true,
        MemberAccessExpressionSyntax m => m.Name is IdentifierNameSyntax && IsDottedName(m.Expression),
        _ => false,
    };

    /// <summary>The statement (or member, or using directive) a node belongs to, for de-duplicating reports.</summary>
    private static SyntaxNode StatementOf(SyntaxNode node) =>
        node.AncestorsAndSelf().FirstOrDefault(n => n is (StatementSyntax and not BlockSyntax) or MemberDeclarationSyntax or UsingDirectiveSyntax) ?? node;

    private static string? NamespaceRule(string ns)
    {
        foreach (var (prefix, rule) in s_namespaces)
        {
            if (ns.Length >= prefix.Length && ns.StartsWith(prefix, StringComparison.Ordinal) && (ns.Length == prefix.Length || ns[prefix.Length] == '.'))
            {
                return rule;
            }
        }

        return null;
    }

    private static string MetadataName(INamedTypeSymbol type) =>
        type.ContainingType is { } outer
            ? $"{MetadataName(outer)}+{type.MetadataName}"
            : type.ContainingNamespace is { IsGlobalNamespace: false } ns ? $"{ns.ToDisplayString()}.{type.MetadataName}" : type.MetadataName;

    /// <summary>The whole dotted name a simple name is part of (<c>System.IO.File.ReadAllText</c>).</summary>
    private static SyntaxNode ChainOf(SyntaxNode node)
    {
        var top = node;
        while (top.Parent is MemberAccessExpressionSyntax or QualifiedNameSyntax or AliasQualifiedNameSyntax or MemberBindingExpressionSyntax)
        {
            top = top.Parent;
        }

        return top;
    }

    /// <summary>Unsafe constructs that have no symbol to check: what they are, or null.</summary>
    private static string? UnsafeConstruct(SyntaxNode node) => node switch
    {
        UnsafeStatementSyntax => "an unsafe block",
        MemberDeclarationSyntax m when m.Modifiers.Any(SyntaxKind.UnsafeKeyword) => "the unsafe modifier",
        LocalFunctionStatementSyntax f when f.Modifiers.Any(SyntaxKind.UnsafeKeyword) => "the unsafe modifier",
        MemberDeclarationSyntax m when m.Modifiers.Any(SyntaxKind.ExternKeyword) => "an extern method (P/Invoke)",
        LocalFunctionStatementSyntax f when f.Modifiers.Any(SyntaxKind.ExternKeyword) => "an extern method (P/Invoke)",
        PointerTypeSyntax => "a pointer type",
        FunctionPointerTypeSyntax => "a function pointer",
        FixedStatementSyntax => "a fixed statement",
        MakeRefExpressionSyntax or RefTypeExpressionSyntax or RefValueExpressionSyntax => "a typed reference (__makeref)",
        ExpressionSyntax e when e.IsKind(SyntaxKind.ArgListExpression) => "__arglist",
        _ => null,
    };
}
