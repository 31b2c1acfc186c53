using System.Reflection;
using System.Runtime.Loader;

namespace ExpertBridge.Scripting;

/// <summary>
/// One collectible load context per policy version. It loads the script's own image and the policy libraries the
/// script was compiled against (each version gets its own copy, so a library unloads with the version); every other
/// assembly (ExpertBridge.Core, the BCL) resolves in the context that loaded this host, so the contract and globals
/// types are shared and never collectible (roslyn#72366 shows what breaks otherwise). That context is the default one
/// in an application, and the component's isolated context when a native server hosts the bridge through hostfxr
/// (load_assembly_and_get_function_pointer), where deferring to the default context would not find ExpertBridge.Core.
/// </summary>
internal sealed class PolicyLoadContext : AssemblyLoadContext
{
    private static readonly AssemblyLoadContext s_host = GetLoadContext(typeof(PolicyLoadContext).Assembly) ?? Default;

    private readonly IReadOnlyList<PolicyLibraryImage> _libraries;

    public PolicyLoadContext(string name, IReadOnlyList<PolicyLibraryImage>? libraries = null)
        : base(name, isCollectible: true)
    {
        _libraries = libraries ?? [];
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        foreach (var library in _libraries)
        {
            if (string.Equals(library.AssemblyName, assemblyName.Name, StringComparison.Ordinal))
            {
                // The runtime asks once per name and context; it keeps what this returns.
                return LoadFromStream(new MemoryStream(library.Bytes, writable: false));
            }
        }

        return ReferenceEquals(s_host, Default) ? null : s_host.LoadFromAssemblyName(assemblyName);
    }
}
