using System.Reflection;
using System.Runtime.Loader;

namespace ExpertBridge.Scripting;

/// <summary>
/// One collectible load context per policy version. It loads only the script's own image; every other assembly
/// (ExpertBridge.Core, the BCL) resolves in the default context, so the contract and globals types are shared and
/// never collectible (roslyn#72366 shows what breaks otherwise).
/// </summary>
internal sealed class PolicyLoadContext : AssemblyLoadContext
{
    public PolicyLoadContext(string name)
        : base(name, isCollectible: true)
    {
    }

    protected override Assembly? Load(AssemblyName assemblyName) => null;
}
