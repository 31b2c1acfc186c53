// Compute loads for GpuBench's compute-slowdown measurement (`ExpertBridge.GpuBench compute --ptx busy.ptx`): a
// busy "inference" stream timed alone and while expert relocation runs beside it. run-devices.sh compiles this file on
// the GPU machine:  nvcc -ptx -arch=compute_90 -o busy.ptx tests/gpu/busy/busy_kernels.cu
// GpuBench loads the PTX with cuModuleLoadData and launches with cuLaunchKernel (extern "C": unmangled names).

// Arithmetic-bound: every element runs `iters` dependent FMA pairs in registers; memory traffic is negligible.
extern "C" __global__ void eb_busy_fma(float* data, unsigned long long n, unsigned int iters)
{
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        float x = data[i];
        float y = x * 0.5f + 1.0f;
        for (unsigned int k = 0; k < iters; ++k) {
            x = fmaf(x, 0.9999f, y);
            y = fmaf(y, 1.0001f, -x);
        }
        data[i] = x + y;
    }
}

// Memory-bound: streams `n` float4 from `in` to `out` (one read and one write of HBM per element), like the weight
// reads of a small-batch expert GEMM; this is the load that shares HBM bandwidth with relocation copies.
extern "C" __global__ void eb_busy_stream(const float4* in, float4* out, unsigned long long n)
{
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        float4 v = in[i];
        v.x = v.x * 1.0001f + 0.5f;
        v.y = v.y * 1.0001f + 0.5f;
        v.z = v.z * 1.0001f + 0.5f;
        v.w = v.w * 1.0001f + 0.5f;
        out[i] = v;
    }
}
