using ExpertBridge.Bindings.Generator.Model;

namespace ExpertBridge.Bindings.Generator.Passes;

/// <summary>One step of the pipeline over the model, in the spirit of CppSharp's translation-unit passes.</summary>
internal interface IModelPass
{
    void Run(ApiModel model, TargetSettings settings, string subject);
}

/// <summary>The passes in the order they run.</summary>
internal static class Pipeline
{
    public static IReadOnlyList<IModelPass> Passes { get; } =
    [
        new HandlePass(),
        new ResultCodePass(),
        new EntryPointPass(),
        new NamingPass(),
        new TypeCheckPass(),
    ];

    public static void Run(ApiModel model, TargetSettings settings, string subject)
    {
        foreach (var pass in Passes) pass.Run(model, settings, subject);
    }
}

/// <summary>A typedef of a pointer to <c>void</c> or to a struct the manifest never defines is an opaque handle:
/// it becomes a typed handle struct, so a stream cannot be passed where a context is expected.</summary>
internal sealed class HandlePass : IModelPass
{
    public void Run(ApiModel model, TargetSettings settings, string subject)
    {
        foreach (var t in model.Typedefs.ToList())
        {
            if (t.Underlying is not PointerType { Pointee: var pointee }) continue;
            var opaque = pointee switch
            {
                VoidType => true,
                NamedType n => !model.Names.ContainsKey(n.Key),
                _ => false,
            };
            if (!opaque) continue;
            var handle = new HandleDecl(t.CName, t.Location, t.UnderlyingSpelling);
            model.Typedefs.Remove(t);
            model.Handles.Add(handle);
            model.Names[t.CName] = handle;
        }
    }
}

/// <summary>Marks the status type. Where the vendor declares codes as constants of an integer typedef (AscendCL's
/// <c>aclError</c>), the constants are gathered into an enum of that name.</summary>
internal sealed class ResultCodePass : IModelPass
{
    public void Run(ApiModel model, TargetSettings settings, string subject)
    {
        if (settings.Result is not { } result) return;
        if (!model.Names.TryGetValue(result.Type, out var decl))
            throw new GeneratorException($"{subject}: result.type '{result.Type}' is not declared in the manifest (rule: settings name manifest declarations)");
        if (decl is EnumDecl e)
        {
            if (result.Constants.Count > 0)
                throw new GeneratorException($"{subject}: result.constants is only for integer typedefs; '{result.Type}' is an enum (rule: settings schema)");
            e.IsResult = true;
            return;
        }
        if (decl is not TypedefDecl { Underlying: PrimitiveType primitive } typedef)
            throw new GeneratorException($"{subject}: result.type '{result.Type}' is neither an enum nor an integer typedef (rule: status types are integers)");
        bool Matches(string name) => result.Constants.Any(p =>
            p.EndsWith('_') ? name.StartsWith(p, StringComparison.Ordinal) : name == p);
        var codes = model.Constants.Where(c => Matches(c.CName)).ToList();
        if (codes.Count == 0)
            throw new GeneratorException($"{subject}: result.constants match no constant of the manifest (rule: a status type has codes)");
        var members = codes.Select(c => new EnumMember(c.CName, long.Parse(c.Value, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        var gathered = new EnumDecl(typedef.CName, typedef.Location, primitive.Size, members)
        {
            IsResult = true,
            FromConstants = true,
            UnderlyingSpelling = typedef.UnderlyingSpelling,
        };
        foreach (var c in codes)
        {
            model.Constants.Remove(c);
            model.Names.Remove(c.CName);
        }
        model.Typedefs.Remove(typedef);
        model.Enums.Add(gathered);
        model.Names[typedef.CName] = gathered;
    }
}

/// <summary>Binds each function to its exported symbol. CUDA's header renames most entry points (<c>cuMemAlloc</c> to
/// <c>cuMemAlloc_v2</c>) and the plain names are the legacy ABI that still loads and silently corrupts memory, so
/// the map is explicit in the settings and the ABI check proves it against the vendor header.</summary>
internal sealed class EntryPointPass : IModelPass
{
    public void Run(ApiModel model, TargetSettings settings, string subject)
    {
        foreach (var (api, symbol) in settings.EntryPoints)
        {
            var f = model.Functions.FirstOrDefault(x => x.CName == api)
                ?? throw new GeneratorException($"{subject}: entryPoints.{api}: no such function in the manifest (rule: settings name manifest declarations)");
            if (string.IsNullOrWhiteSpace(symbol))
                throw new GeneratorException($"{subject}: entryPoints.{api}: empty symbol (rule: settings schema)");
            f.EntryPoint = symbol;
        }
        foreach (var (api, symbol) in settings.EntryPointFallbacks)
        {
            var f = model.Functions.FirstOrDefault(x => x.CName == api)
                ?? throw new GeneratorException($"{subject}: entryPointFallbacks.{api}: no such function in the manifest (rule: settings name manifest declarations)");
            if (string.IsNullOrWhiteSpace(symbol) || symbol == f.EntryPoint)
                throw new GeneratorException($"{subject}: entryPointFallbacks.{api}: '{symbol}' must be another symbol than the entry point '{f.EntryPoint}' (rule: settings schema)");
            f.FallbackEntryPoint = symbol;
        }
    }
}

/// <summary>C# names: functions lose the library prefix (<c>cuMemAlloc</c> to <c>MemAlloc</c>), types follow
/// <see cref="Naming.TypeName"/>, enum members drop their shared prefix; settings renames win; keywords are escaped.
/// Two declarations with one C# name are an error.</summary>
internal sealed class NamingPass : IModelPass
{
    public void Run(ApiModel model, TargetSettings settings, string subject)
    {
        var used = new Dictionary<string, string>(StringComparer.Ordinal);
        void Claim(string cs, string c, string scope)
        {
            if (!used.TryAdd(scope + cs, c))
                throw new GeneratorException($"{subject}: '{c}' and '{used[scope + cs]}' would both be named '{cs}' in C# (rule: unique names; add a rename)");
        }
        string Rename(string c, Func<string> fallback) => settings.Renames.TryGetValue(c, out var r) ? r : fallback();

        foreach (var f in model.Functions)
        {
            f.CsName = Rename(f.CName, () =>
            {
                var prefix = settings.FunctionPrefixes.FirstOrDefault(p => f.CName.StartsWith(p, StringComparison.Ordinal) && f.CName.Length > p.Length);
                var rest = prefix is null ? f.CName : f.CName[prefix.Length..];
                return char.ToUpperInvariant(rest[0]) + rest[1..];
            });
            Claim(f.CsName, f.CName, "class:");
            foreach (var p in f.Parameters) p.CsName = Naming.Escape(p.CName);
        }
        foreach (var c in model.Constants) Claim(c.CsName, c.CName, "class:");

        foreach (var d in model.Enums.Cast<Decl>().Concat(model.Structs).Concat(model.Handles))
        {
            if (settings.TypeRemaps.TryGetValue(d.CName, out var external))
            {
                d.CsName = external; // declared by another binding; not emitted here
                continue;
            }
            if (d.CName.Length == 0)
                throw new GeneratorException($"{subject} {d.Location}: an anonymous struct or enum has no typedef name (rule: named types)");
            d.CsName = Rename(d.CName, () => Naming.TypeName(d.CName));
            Claim(d.CsName, d.CName, "type:");
        }
        if (used.ContainsKey("type:" + settings.Class))
            throw new GeneratorException($"{subject}: a type would take the class name '{settings.Class}' (rule: unique names; add a rename)");

        foreach (var e in model.Enums)
        {
            var names = Naming.MemberNames(e.Members.Select(m => m.CName).ToList());
            var seen = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < e.Members.Count; i++)
            {
                var m = e.Members[i];
                m.CsName = Rename(m.CName, () => names[i]);
                if (!seen.TryAdd(m.CsName, m.CName))
                    throw new GeneratorException($"{subject}: enum {e.CName}: '{m.CName}' and '{seen[m.CsName]}' would both be named '{m.CsName}' (rule: unique names; add a rename)");
            }
            e.IsFlags = settings.FlagEnums.Contains(e.CName);
        }
        foreach (var s in model.Structs)
        {
            foreach (var f in s.Fields) f.CsName = Naming.Escape(f.CName);
        }
        foreach (var name in settings.FlagEnums.Where(n => model.Enums.All(e => e.CName != n)))
            throw new GeneratorException($"{subject}: flagEnums names '{name}', which is no enum of the manifest (rule: settings name manifest declarations)");
        foreach (var name in settings.TypeRemaps.Keys.Where(n => !model.Names.ContainsKey(n)))
            throw new GeneratorException($"{subject}: typeRemaps names '{name}', which the manifest does not declare (rule: settings name manifest declarations)");
        foreach (var name in settings.Renames.Keys.Where(n => !IsDeclared(model, n)))
            throw new GeneratorException($"{subject}: renames names '{name}', which the manifest does not declare (rule: settings name manifest declarations)");
    }

    private static bool IsDeclared(ApiModel model, string name) =>
        model.Names.ContainsKey(name) || model.Enums.Any(e => e.Members.Any(m => m.CName == name));
}

/// <summary>Every type a signature or struct uses must map to a blittable C# type; struct fields that are arrays must
/// be arrays of primitives (C# fixed buffers).</summary>
internal sealed class TypeCheckPass : IModelPass
{
    public void Run(ApiModel model, TargetSettings settings, string subject)
    {
        var mapper = new TypeMapper(model, settings);
        foreach (var f in model.Functions)
        {
            mapper.Map(f.ReturnType, $"{subject}: {f.CName} return type");
            foreach (var p in f.Parameters)
            {
                if (p.Type is ArrayType) throw new GeneratorException($"{subject}: {f.CName}({p.CName}): array parameters are not supported; declare a pointer (rule: blittable signatures)");
                mapper.Map(p.Type, $"{subject}: {f.CName}({p.CName})");
            }
        }
        foreach (var s in model.Structs)
        {
            foreach (var field in s.Fields)
            {
                if (field.Type is ArrayType { Element: not PrimitiveType })
                    throw new GeneratorException($"{subject}: {s.CName}.{field.CName}: only arrays of integers are supported in structs (rule: fixed buffers)");
                mapper.Map(field.Type is ArrayType a ? a.Element : field.Type, $"{subject}: {s.CName}.{field.CName}");
            }
        }
    }
}

/// <summary>The C# spelling of a model type.</summary>
internal sealed class TypeMapper(ApiModel model, TargetSettings settings)
{
    public string Map(TypeRef type, string context) => type switch
    {
        VoidType => "void",
        PrimitiveType p => p.CSharp,
        PointerType p when IsOpaqueStruct(p.Pointee) => "void*",
        PointerType p => Map(p.Pointee, context) + "*",
        ArrayType => throw new GeneratorException($"{context}: arrays only appear as struct fields (rule: blittable signatures)"),
        NamedType n when settings.TypeRemaps.TryGetValue(n.Key, out var remap) => remap,
        NamedType n => model.Resolve(n.Key, context) switch
        {
            TypedefDecl t => Map(t.Underlying, context),
            FunctionDecl or ConstantDecl => throw new GeneratorException($"{context}: '{n.Key}' is not a type (rule: types)"),
            var d => d.CsName,
        },
        _ => throw new GeneratorException($"{context}: unsupported type (rule: blittable C types)"),
    };

    /// <summary>A struct the manifest only names (<c>typedef struct X_st X;</c>): usable behind a pointer, as <c>void*</c>.</summary>
    private bool IsOpaqueStruct(TypeRef type)
    {
        for (var hops = 0; hops < 16 && type is NamedType n; hops++)
        {
            if (settings.TypeRemaps.ContainsKey(n.Key)) return false;
            if (!model.Names.TryGetValue(n.Key, out var decl)) return n.Key.StartsWith("struct ", StringComparison.Ordinal);
            if (decl is not TypedefDecl t) return false;
            type = t.Underlying;
        }
        return false;
    }
}
