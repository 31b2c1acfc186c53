namespace ExpertBridge.Bindings.Generator.Model;

// The language-neutral model of one manifest: what the parser read, then refined by the passes, then emitted.

/// <summary>A C type as the manifest spells it, reduced to what a blittable C# signature needs.</summary>
internal abstract record TypeRef;

internal sealed record VoidType : TypeRef
{
    public static readonly VoidType Instance = new();
}

/// <summary>A C builtin (or a well-known system typedef such as <c>size_t</c>) with its C# spelling.</summary>
internal sealed record PrimitiveType(string CSharp, long Size) : TypeRef;

/// <summary>A reference by name to a declaration of the manifest: a typedef name, or <c>struct Tag</c> / <c>enum Tag</c>.</summary>
internal sealed record NamedType(string Key) : TypeRef;

internal sealed record PointerType(TypeRef Pointee) : TypeRef;

internal sealed record ArrayType(TypeRef Element, long Length) : TypeRef;

internal abstract class Decl(string cName, string location)
{
    /// <summary>The C name (a typedef name where there is one).</summary>
    public string CName { get; set; } = cName;

    /// <summary>Where the manifest declares it (for error messages).</summary>
    public string Location { get; } = location;

    /// <summary>The C# name, set by the naming pass.</summary>
    public string CsName { get; set; } = cName;
}

internal sealed class ParamDecl(string cName, TypeRef type, string cSpelling)
{
    public string CName { get; } = cName;
    public TypeRef Type { get; } = type;
    /// <summary>The C spelling of the type (for the ABI check), e.g. <c>const void *</c>.</summary>
    public string CSpelling { get; } = cSpelling;
    public string CsName { get; set; } = cName;
}

internal sealed class FunctionDecl(string cName, string location, TypeRef returnType, string returnSpelling,
    IReadOnlyList<ParamDecl> parameters) : Decl(cName, location)
{
    public TypeRef ReturnType { get; } = returnType;
    public string ReturnSpelling { get; } = returnSpelling;
    public IReadOnlyList<ParamDecl> Parameters { get; } = parameters;
    /// <summary>The exported symbol bound (a versioned one such as <c>cuMemAlloc_v2</c> where the API renames).</summary>
    public string EntryPoint { get; set; } = cName;
    /// <summary>The symbol to call where <see cref="EntryPoint"/> is not exported, or null.</summary>
    public string? FallbackEntryPoint { get; set; }
}

internal sealed class EnumMember(string cName, long value)
{
    public string CName { get; } = cName;
    public long Value { get; } = value;
    public string CsName { get; set; } = cName;
}

internal sealed class EnumDecl(string cName, string location, long size, IReadOnlyList<EnumMember> members)
    : Decl(cName, location)
{
    public long Size { get; } = size;
    public List<EnumMember> Members { get; } = [.. members];
    /// <summary>True for the library's status type (the result-code pass); it gets a name lookup for errors.</summary>
    public bool IsResult { get; set; }
    public bool IsFlags { get; set; }
    /// <summary>True when the C declaration is a set of constants gathered into an enum (no C enum type exists).</summary>
    public bool FromConstants { get; set; }
    /// <summary>The C spelling of the integer type it stands for, when <see cref="FromConstants"/>.</summary>
    public string? UnderlyingSpelling { get; set; }

    public string CSharpUnderlying
    {
        get
        {
            var min = Members.Count == 0 ? 0 : Members.Min(m => m.Value);
            var max = Members.Count == 0 ? 0 : Members.Max(m => m.Value);
            if (Size == 8) return min < 0 ? "long" : "ulong";
            return min >= int.MinValue && max <= int.MaxValue ? "int" : "uint";
        }
    }
}

internal sealed class FieldDecl(string cName, TypeRef type, long offset)
{
    public string CName { get; } = cName;
    public TypeRef Type { get; } = type;
    /// <summary>Byte offset computed by clang for x86-64 Linux.</summary>
    public long Offset { get; } = offset;
    public string CsName { get; set; } = cName;
}

internal sealed class StructDecl(string cName, string location, long size, long align, IReadOnlyList<FieldDecl> fields)
    : Decl(cName, location)
{
    public long Size { get; } = size;
    public long Align { get; } = align;
    public IReadOnlyList<FieldDecl> Fields { get; } = fields;
}

/// <summary>A typedef the passes have not turned into something else: a transparent alias of <see cref="Underlying"/>.</summary>
internal sealed class TypedefDecl(string cName, string location, TypeRef underlying, string underlyingSpelling)
    : Decl(cName, location)
{
    public TypeRef Underlying { get; } = underlying;
    public string UnderlyingSpelling { get; } = underlyingSpelling;
}

/// <summary>An opaque pointer typedef (<c>typedef struct CUctx_st *CUcontext</c>): a typed handle struct in C#.</summary>
internal sealed class HandleDecl(string cName, string location, string underlyingSpelling) : Decl(cName, location)
{
    public string UnderlyingSpelling { get; } = underlyingSpelling;
}

/// <summary>An integer constant: a <c>#define</c> or a <c>const</c> variable.</summary>
internal sealed class ConstantDecl(string cName, string location, PrimitiveType type, string value, bool isMacro)
    : Decl(cName, location)
{
    public PrimitiveType Type { get; } = type;
    /// <summary>The value as a C# literal (decimal).</summary>
    public string Value { get; } = value;
    public bool IsMacro { get; } = isMacro;
}

internal sealed class ApiModel
{
    public List<FunctionDecl> Functions { get; } = [];
    public List<EnumDecl> Enums { get; } = [];
    public List<StructDecl> Structs { get; } = [];
    public List<HandleDecl> Handles { get; } = [];
    public List<TypedefDecl> Typedefs { get; } = [];
    public List<ConstantDecl> Constants { get; } = [];

    /// <summary>Every name a <see cref="NamedType"/> can refer to, mapped to its declaration.</summary>
    public Dictionary<string, Decl> Names { get; } = new(StringComparer.Ordinal);

    /// <summary>The declaration a named type finally stands for (typedef chains to structs or enums are followed).</summary>
    public Decl Resolve(string key, string context)
    {
        for (var hops = 0; hops < 16; hops++)
        {
            if (!Names.TryGetValue(key, out var decl))
            {
                throw new GeneratorException($"{context}: the type '{key}' is not declared in the manifest (rule: self-contained manifest)");
            }
            if (decl is TypedefDecl { Underlying: NamedType next }) { key = next.Key; continue; }
            return decl;
        }
        throw new GeneratorException($"{context}: the typedef chain of '{key}' does not end (rule: acyclic typedefs)");
    }
}
