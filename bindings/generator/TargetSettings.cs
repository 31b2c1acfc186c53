using System.Text.Json;
using System.Text.Json.Serialization;

namespace ExpertBridge.Bindings.Generator;

/// <summary>How one target is generated: <c>bindings/&lt;target&gt;/settings.json</c>. Unknown keys are errors.</summary>
public sealed class TargetSettings
{
    /// <summary>The API manifest header, relative to the target folder.</summary>
    public string Manifest { get; set; } = "";

    /// <summary><c>c</c> (C11) or <c>c++</c> (C++17; for vendor headers that are C++ only).</summary>
    public string Language { get; set; } = "c";

    /// <summary>The library named in <c>DllImport</c>: the real soname, e.g. <c>libcuda.so.1</c>.</summary>
    public string Library { get; set; } = "";

    public string Namespace { get; set; } = "";

    /// <summary>The static class that holds the functions and constants, e.g. <c>Cuda</c>.</summary>
    public string Class { get; set; } = "";

    /// <summary>Prefixes stripped from function names, tried in order (<c>aclrt</c> before <c>acl</c>).</summary>
    public List<string> FunctionPrefixes { get; set; } = [];

    /// <summary>Extra preprocessor definitions for the parse (<c>NAME</c> or <c>NAME=VALUE</c>).</summary>
    public List<string> Defines { get; set; } = [];

    /// <summary>API name to exported symbol, where the vendor header renames it (CUDA's <c>_v2</c>).</summary>
    public Dictionary<string, string> EntryPoints { get; set; } = [];

    /// <summary>API name to the symbol to call where the library does not export the entry point (an older driver
    /// without <c>cuEventElapsedTime_v2</c>): such a function is resolved once at its first call, through a
    /// function pointer, instead of a <c>DllImport</c>.</summary>
    public Dictionary<string, string> EntryPointFallbacks { get; set; } = [];

    /// <summary>The status type every call returns; see <see cref="ResultSettings"/>.</summary>
    public ResultSettings? Result { get; set; }

    /// <summary>C name to C# name, for types and enum members.</summary>
    public Dictionary<string, string> Renames { get; set; } = [];

    /// <summary>C type name to an existing C# type (e.g. NCCL's <c>cudaStream_t</c> to the CUDA binding's handle).</summary>
    public Dictionary<string, string> TypeRemaps { get; set; } = [];

    /// <summary>Enums emitted with <c>[Flags]</c>.</summary>
    public List<string> FlagEnums { get; set; } = [];

    /// <summary>Headers of the vendor that the ABI check includes, e.g. <c>cuda.h</c>.</summary>
    public List<string> AbiCheckIncludes { get; set; } = [];

    /// <summary>Where the layout tests of the structs go, relative to the repository root.</summary>
    public string? LayoutTests { get; set; }

    /// <summary>The namespace of the layout tests.</summary>
    public string LayoutTestsNamespace { get; set; } = "ExpertBridge.Bindings.Tests.Generated";

    public bool IsCpp => Language == "c++";

    private static readonly JsonSerializerOptions s_options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public static TargetSettings Load(string path, string subject)
    {
        TargetSettings? s;
        try
        {
            s = JsonSerializer.Deserialize<TargetSettings>(File.ReadAllText(path), s_options);
        }
        catch (JsonException e)
        {
            throw new GeneratorException($"{subject}: {e.Message} (rule: settings schema)", e);
        }
        catch (IOException e)
        {
            throw new GeneratorException($"{subject}: {e.Message} (rule: readable settings file)", e);
        }
        if (s is null) throw new GeneratorException($"{subject}: empty settings (rule: settings schema)");
        s.Validate(subject);
        return s;
    }

    private void Validate(string subject)
    {
        void Require(string value, string key)
        {
            if (string.IsNullOrWhiteSpace(value))
                throw new GeneratorException($"{subject}: '{key}' is required (rule: settings schema)");
        }
        Require(Manifest, "manifest");
        Require(Library, "library");
        Require(Namespace, "namespace");
        Require(Class, "class");
        if (Language is not ("c" or "c++"))
            throw new GeneratorException($"{subject}: 'language' is '{Language}'; use \"c\" or \"c++\" (rule: settings schema)");
        if (AbiCheckIncludes.Count == 0)
            throw new GeneratorException($"{subject}: 'abiCheckIncludes' names no vendor header (rule: every target is ABI-checked)");
    }
}

/// <summary>The library's status type. Either an existing enum (<c>{"type": "CUresult"}</c>), or an integer typedef
/// whose codes are constants (<c>{"type": "aclError", "constants": ["ACL_SUCCESS", "ACL_ERROR_"]}</c>: exact names or
/// prefixes ending in <c>_</c>), gathered into an enum.</summary>
public sealed class ResultSettings
{
    public string Type { get; set; } = "";

    public List<string> Constants { get; set; } = [];
}
