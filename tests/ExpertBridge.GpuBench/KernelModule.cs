using System.Runtime.CompilerServices;
using System.Text;
using ExpertBridge.Devices;
using ExpertBridge.Interop.Cuda;

namespace ExpertBridge.GpuBench;

/// <summary>
/// The busy kernels of tests/gpu/busy/busy_kernels.cu, loaded from PTX (compiled by nvcc on the GPU machine) with
/// cuModuleLoadData and launched with cuLaunchKernel on a runtime's stream.
/// </summary>
internal sealed unsafe class KernelModule : IDisposable
{
    private readonly DeviceRuntime _runtime;
    private readonly int _device;
    private readonly CUmodule _module;
    private readonly CUfunction _fma;
    private readonly CUfunction _stream;

    public KernelModule(DeviceRuntime runtime, int device, string ptxPath)
    {
        _runtime = runtime;
        _device = device;
        var image = File.ReadAllBytes(ptxPath);
        Array.Resize(ref image, image.Length + 1); // PTX text must end with NUL
        runtime.Backend.MakeCurrent(device);
        CUmodule module;
        fixed (byte* p = image)
        {
            Check(Cuda.ModuleLoadData(&module, p));
        }

        _module = module;
        _fma = Function("eb_busy_fma");
        _stream = Function("eb_busy_stream");
        int sms;
        Check(Cuda.DeviceGetAttribute(&sms, CUdeviceAttribute.MultiprocessorCount, device));
        Multiprocessors = sms;
    }

    public int Multiprocessors { get; }

    /// <summary>Enqueues the arithmetic-bound kernel over <paramref name="data"/> (floats), <paramref name="iters"/> FMA pairs each.</summary>
    public void LaunchFma(DeviceStream stream, DeviceMemory data, uint iters)
    {
        var ptr = data.Address;
        var n = (ulong)(data.Length / sizeof(float));
        void** args = stackalloc void*[3] { &ptr, &n, &iters };
        Launch(_fma, stream, args);
    }

    /// <summary>Enqueues the memory-bound kernel: reads <paramref name="input"/>, writes <paramref name="output"/> (same length).</summary>
    public void LaunchStream(DeviceStream stream, DeviceMemory input, DeviceMemory output)
    {
        var src = input.Address;
        var dst = output.Address;
        var n = (ulong)(input.Length / 16);
        void** args = stackalloc void*[3] { &src, &dst, &n };
        Launch(_stream, stream, args);
    }

    public void Dispose()
    {
        _runtime.Backend.MakeCurrent(_device);
        _ = Cuda.ModuleUnload(_module);
    }

    private void Launch(CUfunction function, DeviceStream stream, void** args)
    {
        _runtime.Backend.MakeCurrent(stream.Device);
        Check(Cuda.LaunchKernel(function, (uint)(Multiprocessors * 4), 1, 1, 256, 1, 1, 0, new CUstream((nint)stream.Handle), args, null));
    }

    private CUfunction Function(string name)
    {
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        CUfunction f;
        fixed (byte* p = bytes)
        {
            Check(Cuda.ModuleGetFunction(&f, _module, p));
        }

        return f;
    }

    private static void Check(CUresult status, [CallerArgumentExpression(nameof(status))] string? expression = null) =>
        CudaException.ThrowIfFailed(status, expression);
}
