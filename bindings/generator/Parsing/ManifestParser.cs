using System.Globalization;
using System.Text;
using ExpertBridge.Bindings.Generator.Clang;
using ExpertBridge.Bindings.Generator.Model;

namespace ExpertBridge.Bindings.Generator.Parsing;

/// <summary>
/// Reads an API manifest header with libclang into an <see cref="ApiModel"/>. Only declarations of the manifest
/// itself are taken (not of the headers it includes). Top-level cursors are visited once, without recursing into
/// typedefs, so a <c>typedef enum X {...} X;</c> yields one enum named by its typedef, not two.
/// </summary>
internal sealed class ManifestParser
{
    private const string MacroVariablePrefix = "__eb_macro_";

    // System typedefs whose meaning is the pointer size, not their canonical type.
    private static readonly Dictionary<string, PrimitiveType> s_nativeTypedefs = new(StringComparer.Ordinal)
    {
        ["size_t"] = new("nuint", 8),
        ["uintptr_t"] = new("nuint", 8),
        ["ssize_t"] = new("nint", 8),
        ["intptr_t"] = new("nint", 8),
        ["ptrdiff_t"] = new("nint", 8),
    };

    private readonly string _subject;
    private readonly ApiModel _model = new();
    private readonly List<(CXCursor Cursor, Decl Decl)> _records = [];

    private ManifestParser(string subject) => _subject = subject;

    /// <summary>The compiler arguments of a parse: the target's language, x86-64 Linux, and the generator's own
    /// freestanding <c>stddef.h</c>/<c>stdint.h</c> in place of the system's (the NuGet libclang ships no resource
    /// headers; this also keeps the output independent of the machine).</summary>
    public static List<string> Arguments(TargetSettings settings, string includeDir)
    {
        var args = new List<string>
        {
            "-x", settings.IsCpp ? "c++" : "c",
            settings.IsCpp ? "-std=c++17" : "-std=c11",
            "--target=x86_64-unknown-linux-gnu",
            "-nostdinc",
            "-isystem", includeDir,
            "-Wall",
            // A header parsed as the main file: its constants are meant to be unused here.
            "-Wno-unused-const-variable",
        };
        args.AddRange(settings.Defines.Select(d => "-D" + d));
        return args;
    }

    /// <param name="subject">The manifest as named in errors (relative to the repository).</param>
    /// <param name="path">The manifest's full path.</param>
    /// <param name="contents">The manifest's text (parsed from memory; the file need not exist).</param>
    /// <param name="arguments">From <see cref="Arguments"/>.</param>
    public static ApiModel Parse(string subject, string path, string contents, IReadOnlyList<string> arguments)
    {
        var parser = new ManifestParser(subject);
        List<string> macros;
        using (var unit = TranslationUnit.Parse(subject, path, arguments, [(path, contents)]))
        {
            macros = parser.Walk(unit);
        }
        if (macros.Count > 0) parser.EvaluateMacros(path, contents, arguments, macros);
        return parser._model;
    }

    private List<string> Walk(TranslationUnit unit)
    {
        var cursors = new List<CXCursor>();
        void Collect(CXCursor parent)
        {
            foreach (var c in TranslationUnit.Children(parent))
            {
                if (LibClang.Location_isFromMainFile(LibClang.getCursorLocation(c)) == 0) continue;
                if (c.Kind == CXCursorKind.LinkageSpec) Collect(c);
                else cursors.Add(c);
            }
        }
        Collect(unit.Cursor);

        var macros = new List<string>();
        foreach (var c in cursors)
        {
            switch (c.Kind)
            {
                case CXCursorKind.StructDecl:
                    AddStruct(c);
                    break;
                case CXCursorKind.EnumDecl:
                    AddEnum(c);
                    break;
                case CXCursorKind.TypedefDecl:
                    AddTypedef(c);
                    break;
                case CXCursorKind.FunctionDecl:
                    AddFunction(c);
                    break;
                case CXCursorKind.VarDecl:
                    AddVariable(c);
                    break;
                case CXCursorKind.MacroDefinition:
                    if (LibClang.Cursor_isMacroFunctionLike(c) != 0) break;
                    var tokens = unit.Tokens(c);
                    if (tokens.Count > 1) macros.Add(tokens[0]);
                    break;
                case CXCursorKind.UnionDecl:
                    throw Error(c, "unions are not supported (rule: blittable sequential structs only)");
                default:
                    break;
            }
        }
        return macros;
    }

    private GeneratorException Error(CXCursor c, string what) =>
        new($"{_subject} {TranslationUnit.Location(c)}: {Spelling(c)}: {what}");

    private static string Spelling(CXCursor c) => TranslationUnit.Str(LibClang.getCursorSpelling(c));

    private static string TypeSpelling(CXType t) => TranslationUnit.Str(LibClang.getTypeSpelling(t));

    private void Register(string key, Decl decl, CXCursor at)
    {
        if (!_model.Names.TryAdd(key, decl))
        {
            throw Error(at, $"'{key}' is declared twice (rule: one declaration per name)");
        }
    }

    private Decl? FindRecord(CXCursor declaration)
    {
        foreach (var (cursor, decl) in _records)
        {
            if (LibClang.equalCursors(cursor, declaration) != 0) return decl;
        }
        return null;
    }

    private void AddStruct(CXCursor c)
    {
        if (LibClang.isCursorDefinition(c) == 0) return; // a forward declaration: an opaque type
        var type = LibClang.getCursorType(c);
        var fields = new List<FieldDecl>();
        foreach (var f in TranslationUnit.Children(c))
        {
            if (f.Kind == CXCursorKind.FieldDecl)
            {
                var bits = LibClang.Cursor_getOffsetOfField(f);
                if (bits < 0 || bits % 8 != 0) throw Error(f, "bit-fields and unsized fields are not supported (rule: byte-aligned fields)");
                fields.Add(new FieldDecl(Spelling(f), Resolve(LibClang.getCursorType(f), f), bits / 8));
            }
            else if (f.Kind is CXCursorKind.StructDecl or CXCursorKind.UnionDecl)
            {
                throw Error(f, "nested records are not supported (rule: flat structs)");
            }
        }
        var tag = LibClang.Cursor_isAnonymous(c) != 0 ? "" : Spelling(c);
        var decl = new StructDecl(tag, TranslationUnit.Location(c), LibClang.Type_getSizeOf(type), LibClang.Type_getAlignOf(type), fields);
        _records.Add((c, decl));
        _model.Structs.Add(decl);
        if (tag.Length > 0) Register("struct " + tag, decl, c);
    }

    private void AddEnum(CXCursor c)
    {
        if (LibClang.isCursorDefinition(c) == 0) throw Error(c, "an enum must be defined where it is declared (rule: complete enums)");
        var members = new List<EnumMember>();
        foreach (var m in TranslationUnit.Children(c))
        {
            if (m.Kind == CXCursorKind.EnumConstantDecl) members.Add(new EnumMember(Spelling(m), LibClang.getEnumConstantDeclValue(m)));
        }
        var tag = LibClang.Cursor_isAnonymous(c) != 0 ? "" : Spelling(c);
        var decl = new EnumDecl(tag, TranslationUnit.Location(c), LibClang.Type_getSizeOf(LibClang.getCursorType(c)), members);
        _records.Add((c, decl));
        _model.Enums.Add(decl);
        if (tag.Length > 0) Register("enum " + tag, decl, c);
    }

    private void AddTypedef(CXCursor c)
    {
        var name = Spelling(c);
        var underlying = Unwrap(LibClang.getTypedefDeclUnderlyingType(c));
        if (underlying.Kind is CXTypeKind.Record or CXTypeKind.Enum)
        {
            var target = FindRecord(LibClang.getTypeDeclaration(underlying));
            if (target is not null)
            {
                // The typedef names the struct or enum: the typedef name is the C name (the last one wins).
                target.CName = name;
                Register(name, target, c);
                return;
            }
        }
        var decl = new TypedefDecl(name, TranslationUnit.Location(c), Resolve(underlying, c), TypeSpelling(underlying));
        _model.Typedefs.Add(decl);
        Register(name, decl, c);
    }

    private void AddFunction(CXCursor c)
    {
        var name = Spelling(c);
        if (LibClang.Cursor_isVariadic(c) != 0) throw Error(c, "variadic functions are not supported (rule: blittable signatures)");
        var parameters = new List<ParamDecl>();
        var n = LibClang.Cursor_getNumArguments(c);
        for (uint i = 0; i < n; i++)
        {
            var p = LibClang.Cursor_getArgument(c, i);
            var pname = Spelling(p);
            if (pname.Length == 0) throw Error(c, $"parameter {i + 1} has no name (rule: named parameters)");
            var ptype = LibClang.getCursorType(p);
            parameters.Add(new ParamDecl(pname, Resolve(ptype, p), TypeSpelling(ptype)));
        }
        var ret = LibClang.getCursorResultType(c);
        var decl = new FunctionDecl(name, TranslationUnit.Location(c), Resolve(ret, c), TypeSpelling(ret), parameters);
        _model.Functions.Add(decl);
        Register(name, decl, c);
    }

    private void AddVariable(CXCursor c)
    {
        if (LibClang.isConstQualifiedType(LibClang.getCursorType(c)) == 0)
            throw Error(c, "only const integer variables (constants) may be declared (rule: constants only)");
        var constant = Evaluate(c, Spelling(c), isMacro: false)
            ?? throw Error(c, "its value is not an integer constant (rule: integer constants only)");
        _model.Constants.Add(constant);
        Register(constant.CName, constant, c);
    }

    private ConstantDecl? Evaluate(CXCursor variable, string name, bool isMacro)
    {
        var type = Resolve(LibClang.getCanonicalType(LibClang.getCursorType(variable)), variable);
        if (type is not PrimitiveType primitive || primitive.CSharp is "float" or "double") return null;
        var result = LibClang.Cursor_Evaluate(variable);
        if (result == 0) return null;
        try
        {
            if (LibClang.EvalResult_getKind(result) != CXEvalResultKind.Int) return null;
            var value = LibClang.EvalResult_isUnsignedInt(result) != 0
                ? LibClang.EvalResult_getAsUnsigned(result).ToString(CultureInfo.InvariantCulture)
                : LibClang.EvalResult_getAsLongLong(result).ToString(CultureInfo.InvariantCulture);
            return new ConstantDecl(name, TranslationUnit.Location(variable), primitive, value, isMacro);
        }
        finally
        {
            LibClang.EvalResult_dispose(result);
        }
    }

    /// <summary>Object-like macros with a body are integer constants: each is evaluated by clang through a synthesised
    /// <c>static const __typeof__(NAME) __eb_macro_NAME = (NAME);</c>, so its C# type follows the C literal's type.</summary>
    private void EvaluateMacros(string path, string contents, IReadOnlyList<string> arguments, List<string> macros)
    {
        var dir = Path.GetDirectoryName(path) ?? ".";
        var wrapperPath = Path.Combine(dir, "__eb_macros" + Path.GetExtension(path));
        var sb = new StringBuilder();
        sb.Append("#include \"").Append(Path.GetFileName(path)).Append("\"\n");
        foreach (var m in macros)
        {
            sb.Append("static const __typeof__(").Append(m).Append(") ").Append(MacroVariablePrefix).Append(m)
                .Append(" = (").Append(m).Append(");\n");
        }
        using var unit = TranslationUnit.Parse(_subject + " (macro constants)", wrapperPath, arguments,
            [(path, contents), (wrapperPath, sb.ToString())]);
        var found = new Dictionary<string, ConstantDecl>(StringComparer.Ordinal);
        foreach (var c in TranslationUnit.Children(unit.Cursor))
        {
            if (c.Kind != CXCursorKind.VarDecl) continue;
            var spelling = Spelling(c);
            if (!spelling.StartsWith(MacroVariablePrefix, StringComparison.Ordinal)) continue;
            var name = spelling[MacroVariablePrefix.Length..];
            found[name] = Evaluate(c, name, isMacro: true)
                ?? throw new GeneratorException($"{_subject}: #define {name}: its value is not an integer constant (rule: macros are integer constants)");
        }
        foreach (var m in macros)
        {
            var constant = found[m];
            _model.Constants.Add(constant);
            if (!_model.Names.TryAdd(m, constant))
                throw new GeneratorException($"{_subject}: #define {m}: the name is declared twice (rule: one declaration per name)");
        }
    }

    private static CXType Unwrap(CXType t)
    {
        while (true)
        {
            switch (t.Kind)
            {
                case CXTypeKind.Elaborated:
                    t = LibClang.Type_getNamedType(t);
                    continue;
                case CXTypeKind.Attributed:
                    t = LibClang.Type_getModifiedType(t);
                    continue;
                default:
                    return t;
            }
        }
    }

    private TypeRef Resolve(CXType t, CXCursor at)
    {
        t = Unwrap(t);
        switch (t.Kind)
        {
            case CXTypeKind.Void:
                return VoidType.Instance;
            case CXTypeKind.Typedef:
            {
                var name = TranslationUnit.Str(LibClang.getTypedefName(t));
                if (s_nativeTypedefs.TryGetValue(name, out var native)) return native;
                var decl = LibClang.getTypeDeclaration(t);
                if (LibClang.Location_isFromMainFile(LibClang.getCursorLocation(decl)) != 0) return new NamedType(name);
                return Resolve(LibClang.getCanonicalType(t), at); // a system typedef such as uint64_t
            }
            case CXTypeKind.Pointer:
                return new PointerType(Resolve(LibClang.getPointeeType(t), at));
            case CXTypeKind.ConstantArray:
                return new ArrayType(Resolve(LibClang.getArrayElementType(t), at), LibClang.getArraySize(t));
            case CXTypeKind.Record:
            case CXTypeKind.Enum:
            {
                var decl = LibClang.getTypeDeclaration(t);
                if (LibClang.Cursor_isAnonymous(decl) != 0)
                {
                    var known = FindRecord(decl);
                    if (known is not null && known.CName.Length > 0) return new NamedType(known.CName);
                    throw Error(at, "anonymous records must be named by a typedef (rule: named types)");
                }
                return new NamedType((t.Kind == CXTypeKind.Record ? "struct " : "enum ") + Spelling(decl));
            }
            case CXTypeKind.Bool:
            case CXTypeKind.CharU:
            case CXTypeKind.UChar:
            case CXTypeKind.CharS:
                return new PrimitiveType("byte", 1);
            case CXTypeKind.SChar:
                return new PrimitiveType("sbyte", 1);
            case CXTypeKind.Short:
                return new PrimitiveType("short", 2);
            case CXTypeKind.UShort:
                return new PrimitiveType("ushort", 2);
            case CXTypeKind.Int:
                return new PrimitiveType("int", 4);
            case CXTypeKind.UInt:
                return new PrimitiveType("uint", 4);
            case CXTypeKind.Long:
            case CXTypeKind.LongLong:
                return new PrimitiveType("long", 8);
            case CXTypeKind.ULong:
            case CXTypeKind.ULongLong:
                return new PrimitiveType("ulong", 8);
            case CXTypeKind.Float:
                return new PrimitiveType("float", 4);
            case CXTypeKind.Double:
                return new PrimitiveType("double", 8);
            default:
                throw Error(at, $"the type '{TypeSpelling(t)}' ({t.Kind}) is not supported (rule: blittable C types)");
        }
    }
}
