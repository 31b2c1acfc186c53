using System.Reflection;
using System.Runtime.Loader;

namespace ExpertBridge.Scripting;

/// <summary>
/// One collectible load context per policy version. It loads only the script's own image; every other assembly
/// (ExpertBridge.Core, the BCL) resolves in the context that loaded this host, so the contract and globals types are
/// shared and never collectible (roslyn#72366 shows what breaks otherwise). That context is the default one in an
/// application, and the component's isolated context when a native server hosts the bridge through hostfxr
/// (load_assembly_and_get_function_pointer), where deferring to the default context would not find ExpertBridge.Core.
/// </summary>
internal sealed class PolicyLoadContext : AssemblyLoadContext
{
    private static readonly AssemblyLoadContext s_host = GetLoadContext(typeof(PolicyLoadContext).Assembly) ?? Default;

    public PolicyLoadContext(string name)
        : base(name, isCollectible: true)
    {
    }

    protected override Assembly? Load(AssemblyName assemblyName) =>
        ReferenceEquals(s_host, Default) ? null : s_host.LoadFromAssemblyName(assemblyName);
}
