using System.Runtime.InteropServices;

namespace ExpertBridge.Bindings.Generator.Clang;

// The generator's own minimal raw layer over libclang's C API (clang-c/Index.h, LLVM 22). Only what the manifest
// walk needs; every signature is blittable (the assembly disables runtime marshalling). Layouts as in Index.h:
// CXString 16 bytes, CXCursor 32, CXType 24 on x86-64.

internal enum CXErrorCode
{
    Success = 0,
    Failure = 1,
    Crashed = 2,
    InvalidArguments = 3,
    AstReadError = 4,
}

internal enum CXChildVisitResult
{
    Break = 0,
    Continue = 1,
    Recurse = 2,
}

internal enum CXDiagnosticSeverity
{
    Ignored = 0,
    Note = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

internal enum CXCursorKind
{
    StructDecl = 2,
    UnionDecl = 3,
    EnumDecl = 5,
    FieldDecl = 6,
    EnumConstantDecl = 7,
    FunctionDecl = 8,
    VarDecl = 9,
    ParmDecl = 10,
    TypedefDecl = 20,
    LinkageSpec = 23,
    TranslationUnit = 350,
    MacroDefinition = 501,
    MacroExpansion = 502,
    InclusionDirective = 503,
}

internal enum CXTypeKind
{
    Invalid = 0,
    Void = 2,
    Bool = 3,
    CharU = 4,
    UChar = 5,
    UShort = 8,
    UInt = 9,
    ULong = 10,
    ULongLong = 11,
    CharS = 13,
    SChar = 14,
    Short = 16,
    Int = 17,
    Long = 18,
    LongLong = 19,
    Float = 21,
    Double = 22,
    Pointer = 101,
    Record = 105,
    Enum = 106,
    Typedef = 107,
    FunctionNoProto = 110,
    FunctionProto = 111,
    ConstantArray = 112,
    IncompleteArray = 114,
    Elaborated = 119,
    Attributed = 163,
}

internal enum CXEvalResultKind
{
    Int = 1,
    Float = 2,
}

[Flags]
internal enum CXTranslationUnitFlags
{
    None = 0x0,
    DetailedPreprocessingRecord = 0x01,
    SkipFunctionBodies = 0x40,
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXString
{
    public nint Data;
    public uint PrivateFlags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXCursor
{
    public CXCursorKind Kind;
    public int Xdata;
    public nint Data0;
    public nint Data1;
    public nint Data2;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXType
{
    public CXTypeKind Kind;
    public nint Data0;
    public nint Data1;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceLocation
{
    public nint PtrData0;
    public nint PtrData1;
    public uint IntData;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CXUnsavedFile
{
    public byte* Filename;
    public byte* Contents;
    public nuint Length;
}

internal static unsafe partial class LibClang
{
    public const string LibraryName = "libclang";

    [DllImport(LibraryName, EntryPoint = "clang_getClangVersion", ExactSpelling = true)]
    public static extern CXString getClangVersion();

    [DllImport(LibraryName, EntryPoint = "clang_getCString", ExactSpelling = true)]
    public static extern byte* getCString(CXString str);

    [DllImport(LibraryName, EntryPoint = "clang_disposeString", ExactSpelling = true)]
    public static extern void disposeString(CXString str);

    [DllImport(LibraryName, EntryPoint = "clang_createIndex", ExactSpelling = true)]
    public static extern nint createIndex(int excludeDeclarationsFromPch, int displayDiagnostics);

    [DllImport(LibraryName, EntryPoint = "clang_disposeIndex", ExactSpelling = true)]
    public static extern void disposeIndex(nint index);

    [DllImport(LibraryName, EntryPoint = "clang_parseTranslationUnit2", ExactSpelling = true)]
    public static extern CXErrorCode parseTranslationUnit2(nint index, byte* sourceFilename, byte** commandLineArgs,
        int numCommandLineArgs, CXUnsavedFile* unsavedFiles, uint numUnsavedFiles, CXTranslationUnitFlags options,
        nint* translationUnit);

    [DllImport(LibraryName, EntryPoint = "clang_disposeTranslationUnit", ExactSpelling = true)]
    public static extern void disposeTranslationUnit(nint translationUnit);

    [DllImport(LibraryName, EntryPoint = "clang_getTranslationUnitCursor", ExactSpelling = true)]
    public static extern CXCursor getTranslationUnitCursor(nint translationUnit);

    [DllImport(LibraryName, EntryPoint = "clang_getNumDiagnostics", ExactSpelling = true)]
    public static extern uint getNumDiagnostics(nint translationUnit);

    [DllImport(LibraryName, EntryPoint = "clang_getDiagnostic", ExactSpelling = true)]
    public static extern nint getDiagnostic(nint translationUnit, uint index);

    [DllImport(LibraryName, EntryPoint = "clang_getDiagnosticSeverity", ExactSpelling = true)]
    public static extern CXDiagnosticSeverity getDiagnosticSeverity(nint diagnostic);

    [DllImport(LibraryName, EntryPoint = "clang_formatDiagnostic", ExactSpelling = true)]
    public static extern CXString formatDiagnostic(nint diagnostic, uint options);

    [DllImport(LibraryName, EntryPoint = "clang_disposeDiagnostic", ExactSpelling = true)]
    public static extern void disposeDiagnostic(nint diagnostic);

    [DllImport(LibraryName, EntryPoint = "clang_visitChildren", ExactSpelling = true)]
    public static extern uint visitChildren(CXCursor parent,
        delegate* unmanaged[Cdecl]<CXCursor, CXCursor, void*, CXChildVisitResult> visitor, void* clientData);

    [DllImport(LibraryName, EntryPoint = "clang_getCursorSpelling", ExactSpelling = true)]
    public static extern CXString getCursorSpelling(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getCursorType", ExactSpelling = true)]
    public static extern CXType getCursorType(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getCursorResultType", ExactSpelling = true)]
    public static extern CXType getCursorResultType(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getCursorLocation", ExactSpelling = true)]
    public static extern CXSourceLocation getCursorLocation(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_Location_isFromMainFile", ExactSpelling = true)]
    public static extern int Location_isFromMainFile(CXSourceLocation location);

    [DllImport(LibraryName, EntryPoint = "clang_getSpellingLocation", ExactSpelling = true)]
    public static extern void getSpellingLocation(CXSourceLocation location, nint* file, uint* line, uint* column,
        uint* offset);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_getNumArguments", ExactSpelling = true)]
    public static extern int Cursor_getNumArguments(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_getArgument", ExactSpelling = true)]
    public static extern CXCursor Cursor_getArgument(CXCursor cursor, uint index);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_isVariadic", ExactSpelling = true)]
    public static extern uint Cursor_isVariadic(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_isMacroFunctionLike", ExactSpelling = true)]
    public static extern uint Cursor_isMacroFunctionLike(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_isAnonymous", ExactSpelling = true)]
    public static extern uint Cursor_isAnonymous(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getTypedefDeclUnderlyingType", ExactSpelling = true)]
    public static extern CXType getTypedefDeclUnderlyingType(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getEnumDeclIntegerType", ExactSpelling = true)]
    public static extern CXType getEnumDeclIntegerType(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getEnumConstantDeclValue", ExactSpelling = true)]
    public static extern long getEnumConstantDeclValue(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_getOffsetOfField", ExactSpelling = true)]
    public static extern long Cursor_getOffsetOfField(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_Evaluate", ExactSpelling = true)]
    public static extern nint Cursor_Evaluate(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_EvalResult_getKind", ExactSpelling = true)]
    public static extern CXEvalResultKind EvalResult_getKind(nint result);

    [DllImport(LibraryName, EntryPoint = "clang_EvalResult_isUnsignedInt", ExactSpelling = true)]
    public static extern uint EvalResult_isUnsignedInt(nint result);

    [DllImport(LibraryName, EntryPoint = "clang_EvalResult_getAsLongLong", ExactSpelling = true)]
    public static extern long EvalResult_getAsLongLong(nint result);

    [DllImport(LibraryName, EntryPoint = "clang_EvalResult_getAsUnsigned", ExactSpelling = true)]
    public static extern ulong EvalResult_getAsUnsigned(nint result);

    [DllImport(LibraryName, EntryPoint = "clang_EvalResult_dispose", ExactSpelling = true)]
    public static extern void EvalResult_dispose(nint result);

    [DllImport(LibraryName, EntryPoint = "clang_equalCursors", ExactSpelling = true)]
    public static extern uint equalCursors(CXCursor a, CXCursor b);

    [DllImport(LibraryName, EntryPoint = "clang_Cursor_isNull", ExactSpelling = true)]
    public static extern int Cursor_isNull(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_isCursorDefinition", ExactSpelling = true)]
    public static extern uint isCursorDefinition(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_getTypeSpelling", ExactSpelling = true)]
    public static extern CXString getTypeSpelling(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_getCanonicalType", ExactSpelling = true)]
    public static extern CXType getCanonicalType(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_getPointeeType", ExactSpelling = true)]
    public static extern CXType getPointeeType(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_getArrayElementType", ExactSpelling = true)]
    public static extern CXType getArrayElementType(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_getArraySize", ExactSpelling = true)]
    public static extern long getArraySize(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_getTypeDeclaration", ExactSpelling = true)]
    public static extern CXCursor getTypeDeclaration(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_getTypedefName", ExactSpelling = true)]
    public static extern CXString getTypedefName(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_isConstQualifiedType", ExactSpelling = true)]
    public static extern uint isConstQualifiedType(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_Type_getNamedType", ExactSpelling = true)]
    public static extern CXType Type_getNamedType(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_Type_getModifiedType", ExactSpelling = true)]
    public static extern CXType Type_getModifiedType(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_Type_getSizeOf", ExactSpelling = true)]
    public static extern long Type_getSizeOf(CXType type);

    [DllImport(LibraryName, EntryPoint = "clang_Type_getAlignOf", ExactSpelling = true)]
    public static extern long Type_getAlignOf(CXType type);
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXSourceRange
{
    public nint PtrData0;
    public nint PtrData1;
    public uint BeginIntData;
    public uint EndIntData;
}

[StructLayout(LayoutKind.Sequential)]
internal struct CXToken
{
    public uint IntData0;
    public uint IntData1;
    public uint IntData2;
    public uint IntData3;
    public nint PtrData;
}

internal static unsafe partial class LibClang
{
    [DllImport(LibraryName, EntryPoint = "clang_getCursorExtent", ExactSpelling = true)]
    public static extern CXSourceRange getCursorExtent(CXCursor cursor);

    [DllImport(LibraryName, EntryPoint = "clang_tokenize", ExactSpelling = true)]
    public static extern void tokenize(nint translationUnit, CXSourceRange range, CXToken** tokens, uint* numTokens);

    [DllImport(LibraryName, EntryPoint = "clang_getTokenSpelling", ExactSpelling = true)]
    public static extern CXString getTokenSpelling(nint translationUnit, CXToken token);

    [DllImport(LibraryName, EntryPoint = "clang_disposeTokens", ExactSpelling = true)]
    public static extern void disposeTokens(nint translationUnit, CXToken* tokens, uint numTokens);
}
