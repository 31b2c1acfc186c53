using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace ExpertBridge.Bindings.Generator.Clang;

/// <summary>One parsed translation unit. Parsing fails on any warning or error: libclang reports success even when
/// a fatal diagnostic (a missing header) left the tree empty, so the diagnostics are the real verdict.</summary>
internal sealed unsafe class TranslationUnit : IDisposable
{
    private nint _index;
    private nint _unit;

    private TranslationUnit(nint index, nint unit)
    {
        _index = index;
        _unit = unit;
    }

    public nint Handle => _unit;

    public CXCursor Cursor => LibClang.getTranslationUnitCursor(_unit);

    /// <param name="subject">What to name in errors (the manifest path relative to the repository).</param>
    /// <param name="path">The file to parse.</param>
    /// <param name="arguments">Compiler arguments.</param>
    /// <param name="unsaved">In-memory files (path, contents), e.g. the file itself when it is synthesised.</param>
    public static TranslationUnit Parse(string subject, string path, IReadOnlyList<string> arguments,
        IReadOnlyList<(string Path, string Contents)> unsaved)
    {
        LibClangLoader.EnsureRegistered();
        var index = LibClang.createIndex(0, 0);
        var pinned = new List<nint>();
        try
        {
            nint Utf8(string s)
            {
                var bytes = Encoding.UTF8.GetBytes(s + "\0");
                var p = Marshal.AllocHGlobal(bytes.Length);
                Marshal.Copy(bytes, 0, p, bytes.Length);
                pinned.Add(p);
                return p;
            }
            var args = stackalloc byte*[arguments.Count];
            for (var i = 0; i < arguments.Count; i++) args[i] = (byte*)Utf8(arguments[i]);
            var files = stackalloc CXUnsavedFile[Math.Max(1, unsaved.Count)];
            for (var i = 0; i < unsaved.Count; i++)
            {
                var contents = Encoding.UTF8.GetBytes(unsaved[i].Contents);
                files[i].Filename = (byte*)Utf8(unsaved[i].Path);
                var c = Marshal.AllocHGlobal(Math.Max(1, contents.Length));
                Marshal.Copy(contents, 0, c, contents.Length);
                pinned.Add(c);
                files[i].Contents = (byte*)c;
                files[i].Length = (nuint)contents.Length;
            }
            nint unit;
            var code = LibClang.parseTranslationUnit2(index, (byte*)Utf8(path), args, arguments.Count, files,
                (uint)unsaved.Count, CXTranslationUnitFlags.DetailedPreprocessingRecord | CXTranslationUnitFlags.SkipFunctionBodies,
                &unit);
            if (code != CXErrorCode.Success || unit == 0)
            {
                throw new GeneratorException($"{subject}: libclang could not parse it ({code})");
            }
            var result = new TranslationUnit(index, unit);
            index = 0;
            result.ThrowOnDiagnostics(subject);
            return result;
        }
        finally
        {
            foreach (var p in pinned) Marshal.FreeHGlobal(p);
            if (index != 0) LibClang.disposeIndex(index);
        }
    }

    private void ThrowOnDiagnostics(string subject)
    {
        var n = LibClang.getNumDiagnostics(_unit);
        var messages = new List<string>();
        for (uint i = 0; i < n; i++)
        {
            var d = LibClang.getDiagnostic(_unit, i);
            try
            {
                if (LibClang.getDiagnosticSeverity(d) >= CXDiagnosticSeverity.Warning)
                {
                    // DisplaySourceLocation | DisplayColumn | DisplayOption
                    messages.Add(Str(LibClang.formatDiagnostic(d, 0x01 | 0x02 | 0x08)));
                }
            }
            finally
            {
                LibClang.disposeDiagnostic(d);
            }
        }
        if (messages.Count > 0)
        {
            Dispose();
            throw new GeneratorException(
                $"{subject}: the manifest must parse without warnings or errors (rule: clean parse); clang said:\n  " +
                string.Join("\n  ", messages));
        }
    }

    public static string Str(CXString s)
    {
        try
        {
            var p = LibClang.getCString(s);
            return p == null ? "" : Marshal.PtrToStringUTF8((nint)p) ?? "";
        }
        finally
        {
            LibClang.disposeString(s);
        }
    }

    public static List<CXCursor> Children(CXCursor parent)
    {
        var list = new List<CXCursor>();
        var handle = GCHandle.Alloc(list);
        try
        {
            _ = LibClang.visitChildren(parent, &Visit, (void*)GCHandle.ToIntPtr(handle)); // non-zero only when a visit breaks
        }
        finally
        {
            handle.Free();
        }
        return list;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static CXChildVisitResult Visit(CXCursor cursor, CXCursor parent, void* data)
    {
        var list = (List<CXCursor>)GCHandle.FromIntPtr((nint)data).Target!;
        list.Add(cursor);
        return CXChildVisitResult.Continue;
    }

    /// <summary>The spelling of each token of a cursor's extent (a macro definition: its name, then its body).</summary>
    public List<string> Tokens(CXCursor cursor)
    {
        CXToken* tokens;
        uint count;
        LibClang.tokenize(_unit, LibClang.getCursorExtent(cursor), &tokens, &count);
        var result = new List<string>((int)count);
        try
        {
            for (var i = 0; i < count; i++) result.Add(Str(LibClang.getTokenSpelling(_unit, tokens[i])));
        }
        finally
        {
            if (tokens != null) LibClang.disposeTokens(_unit, tokens, count);
        }
        return result;
    }

    public static string Location(CXCursor cursor)
    {
        nint file;
        uint line, column, offset;
        LibClang.getSpellingLocation(LibClang.getCursorLocation(cursor), &file, &line, &column, &offset);
        return $"line {line}";
    }

    public void Dispose()
    {
        if (_unit != 0)
        {
            LibClang.disposeTranslationUnit(_unit);
            _unit = 0;
        }
        if (_index != 0)
        {
            LibClang.disposeIndex(_index);
            _index = 0;
        }
    }
}
