// The example's CUDA mode (see gpu_experts.h). The expert FFN is the GPU benchmarks' (tests/gpu/common/expert_ffn.cuh):
// gate/up GEMM, SiLU*mul, down GEMM, bf16 with fp32 accumulation through cuBLAS.
#include "gpu_experts.h"

#include "expert_ffn.cuh"

#include <chrono>
#include <map>

namespace {

__host__ __device__ inline unsigned long long mix(unsigned word, unsigned long long index)
{
    unsigned long long x = (word + 1ull) * 0x9E3779B97F4A7C15ull ^ (index * 0xC2B2AE3D27D4EB4Full);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return x;
}

// Position-sensitive checksum of n 32-bit words: the sum of mix(word, index), accumulated into *out.
__global__ void checksum_words(const unsigned* p, size_t n, unsigned long long* out)
{
    unsigned long long acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        acc += mix(p[i], i);
    }
    atomicAdd(out, acc);
}

struct Gpu {
    cudaStream_t stream{};
    cublasHandle_t blas{};
    void* weights{};  // [layers][slots_per_device][gate/up | down]
    __nv_bfloat16 *x{}, *gu{}, *act{}, *y{};
    unsigned long long* sums{};  // [slots_per_device * kTensors]
};

}  // namespace

struct GpuExperts::Impl {
    int devices, slots_per_device, layers, hidden, inter, max_tokens;
    size_t bytes[kTensors];
    std::vector<Gpu> gpus;
    std::map<long long, unsigned long long> expected;  // (layer, expert, tensor) -> checksum

    size_t slot_bytes() const { return bytes[0] + bytes[1]; }

    long long key(int layer, int expert, int tensor) const { return ((long long)layer << 40) | ((long long)expert << 8) | tensor; }

    // C[t, n] = X[t, k] * W[n, k]^T, row-major bf16 (cuBLAS column-major: C^T = W^T' * X^T).
    static void gemm(cublasHandle_t blas, const void* w, const void* x, void* c, int n, int t, int k)
    {
        float alpha = 1.0f, beta = 0.0f;
        CHECK_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, t, k, &alpha, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k,
                                  &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }

    // Checksums of the kTensors tensors of every slot of `layer` on GPU d into host (slots_per_device * kTensors).
    void checksums(int d, int layer, std::vector<unsigned long long>& host)
    {
        Gpu& g = gpus[d];
        CHECK_CUDA(cudaSetDevice(d));
        CHECK_CUDA(cudaMemsetAsync(g.sums, 0, sizeof(unsigned long long) * slots_per_device * kTensors, g.stream));
        for (int local = 0; local < slots_per_device; ++local) {
            const char* base = static_cast<const char*>(g.weights) + ((size_t)layer * slots_per_device + local) * slot_bytes();
            for (int t = 0; t < kTensors; ++t) {
                const char* p = base + (t == 0 ? 0 : bytes[0]);
                checksum_words<<<264, 256, 0, g.stream>>>(reinterpret_cast<const unsigned*>(p), bytes[t] / 4, g.sums + local * kTensors + t);
                CHECK_CUDA(cudaGetLastError());
            }
        }
        host.resize((size_t)slots_per_device * kTensors);
        CHECK_CUDA(cudaMemcpyAsync(host.data(), g.sums, host.size() * sizeof(unsigned long long), cudaMemcpyDeviceToHost, g.stream));
        CHECK_CUDA(cudaStreamSynchronize(g.stream));
    }
};

GpuExperts::GpuExperts(int devices, int slots_per_device, int layers, int hidden, int inter, int max_tokens)
    : impl_(new Impl{devices, slots_per_device, layers, hidden, inter, max_tokens, {}, {}, {}})
{
    int count = 0;
    CHECK_CUDA(cudaGetDeviceCount(&count));
    if (count < devices) {
        std::fprintf(stderr, "error: --devices %d, but CUDA sees %d GPU(s)\n", devices, count);
        std::exit(2);
    }
    impl_->bytes[0] = (size_t)2 * inter * hidden * sizeof(__nv_bfloat16);
    impl_->bytes[1] = (size_t)hidden * inter * sizeof(__nv_bfloat16);
    impl_->gpus.resize(devices);
    for (int d = 0; d < devices; ++d) {
        Gpu& g = impl_->gpus[d];
        CHECK_CUDA(cudaSetDevice(d));
        CHECK_CUDA(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
        CHECK_CUBLAS(cublasCreate(&g.blas));
        CHECK_CUBLAS(cublasSetStream(g.blas, g.stream));
        CHECK_CUDA(cudaMalloc(&g.weights, (size_t)layers * slots_per_device * impl_->slot_bytes()));
        CHECK_CUDA(cudaMalloc(&g.x, (size_t)max_tokens * hidden * sizeof(__nv_bfloat16)));
        CHECK_CUDA(cudaMalloc(&g.gu, (size_t)max_tokens * 2 * inter * sizeof(__nv_bfloat16)));
        CHECK_CUDA(cudaMalloc(&g.act, (size_t)max_tokens * inter * sizeof(__nv_bfloat16)));
        CHECK_CUDA(cudaMalloc(&g.y, (size_t)max_tokens * hidden * sizeof(__nv_bfloat16)));
        CHECK_CUDA(cudaMalloc(&g.sums, sizeof(unsigned long long) * slots_per_device * kTensors));
        ebgpu::fill_random_bf16<<<1024, 256, 0, g.stream>>>(g.x, (size_t)max_tokens * hidden, 5u + d, 1.0f);
        CHECK_CUDA(cudaGetLastError());
        CHECK_CUDA(cudaStreamSynchronize(g.stream));
    }
}

GpuExperts::~GpuExperts()
{
    for (int d = 0; d < impl_->devices; ++d) {
        Gpu& g = impl_->gpus[d];
        cudaSetDevice(d);
        cudaStreamSynchronize(g.stream);
        cublasDestroy(g.blas);
        cudaStreamDestroy(g.stream);
        for (void* p : {g.weights, (void*)g.x, (void*)g.gu, (void*)g.act, (void*)g.y, (void*)g.sums}) cudaFree(p);
    }
}

size_t GpuExperts::tensor_bytes(int tensor) const { return impl_->bytes[tensor]; }

void* GpuExperts::tensor(int layer, int slot, int tensor) const
{
    int d = slot / impl_->slots_per_device, local = slot % impl_->slots_per_device;
    char* base = static_cast<char*>(impl_->gpus[d].weights) + ((size_t)layer * impl_->slots_per_device + local) * impl_->slot_bytes();
    return base + (tensor == 0 ? 0 : impl_->bytes[0]);
}

void GpuExperts::load(int layer, int slot, int expert)
{
    int d = slot / impl_->slots_per_device;
    Gpu& g = impl_->gpus[d];
    CHECK_CUDA(cudaSetDevice(d));
    for (int t = 0; t < kTensors; ++t) {
        unsigned seed = (unsigned)layer * 1000003u + (unsigned)expert * 7919u + (unsigned)t * 31u;
        ebgpu::fill_random_bf16<<<1024, 256, 0, g.stream>>>(static_cast<__nv_bfloat16*>(tensor(layer, slot, t)), impl_->bytes[t] / 2, seed, 0.125f);
        CHECK_CUDA(cudaGetLastError());
    }
    // Learn the expert's checksums from its first copy; later copies (replicas) must match them.
    std::vector<unsigned long long> sums;
    impl_->checksums(d, layer, sums);
    int local = slot % impl_->slots_per_device;
    for (int t = 0; t < kTensors; ++t) {
        impl_->expected.emplace(impl_->key(layer, expert, t), sums[local * kTensors + t]);
    }
}

double GpuExperts::step(const int32_t* slot_tokens)
{
    Impl& m = *impl_;
    int slots = m.devices * m.slots_per_device;
    auto t0 = std::chrono::steady_clock::now();
    for (int l = 0; l < m.layers; ++l) {
        for (int d = 0; d < m.devices; ++d) {  // interleaved: every GPU gets its layer's work before the next layer
            Gpu& g = m.gpus[d];
            CHECK_CUDA(cudaSetDevice(d));
            for (int local = 0; local < m.slots_per_device; ++local) {
                int slot = d * m.slots_per_device + local;
                int n = std::min(slot_tokens[(size_t)l * slots + slot], m.max_tokens);
                if (n == 0) continue;
                Impl::gemm(g.blas, tensor(l, slot, 0), g.x, g.gu, 2 * m.inter, n, m.hidden);
                int threads = 256, blocks = std::min(1024, (int)(((size_t)n * m.inter + threads - 1) / threads));
                ebgpu::silu_mul<<<blocks, threads, 0, g.stream>>>(g.gu, g.act, n, m.inter);
                CHECK_CUDA(cudaGetLastError());
                Impl::gemm(g.blas, tensor(l, slot, 1), g.act, g.y, m.hidden, n, m.inter);
            }
        }
    }
    for (int d = 0; d < m.devices; ++d) {
        CHECK_CUDA(cudaSetDevice(d));
        CHECK_CUDA(cudaStreamSynchronize(m.gpus[d].stream));
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

long GpuExperts::verify(int layer, const int32_t* phy2log_row)
{
    long mismatches = 0;
    std::vector<unsigned long long> sums;
    for (int d = 0; d < impl_->devices; ++d) {
        impl_->checksums(d, layer, sums);
        for (int local = 0; local < impl_->slots_per_device; ++local) {
            int expert = phy2log_row[d * impl_->slots_per_device + local];
            if (expert < 0) continue;
            for (int t = 0; t < kTensors; ++t) {
                auto it = impl_->expected.find(impl_->key(layer, expert, t));
                if (it == impl_->expected.end() || it->second != sums[local * kTensors + t]) ++mismatches;
            }
        }
    }
    return mismatches;
}
