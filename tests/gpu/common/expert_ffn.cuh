#pragma once
// Shared by the GPU benchmarks: one MoE expert's FFN (gate/up GEMM, SiLU*mul, down GEMM) in bf16 (cuBLAS) or
// fp8 e4m3 (cuBLASLt), over a set of expert weight slots on the current device.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#define CHECK_CUDA(x)                                                                                  \
    do {                                                                                               \
        cudaError_t err_ = (x);                                                                        \
        if (err_ != cudaSuccess) {                                                                     \
            std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(err_)); \
            std::exit(1);                                                                              \
        }                                                                                              \
    } while (0)
#define CHECK_CUBLAS(x)                                                                                \
    do {                                                                                               \
        cublasStatus_t st_ = (x);                                                                      \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                            \
            std::fprintf(stderr, "%s:%d: %s failed: status %d\n", __FILE__, __LINE__, #x, (int)st_);  \
            std::exit(1);                                                                              \
        }                                                                                              \
    } while (0)

namespace ebgpu {

__global__ void fill_random_bf16(__nv_bfloat16* p, size_t n, unsigned seed, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)(i * 2654435761u) ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = __float2bfloat16(((x & 0xffff) / 65535.0f - 0.5f) * scale);
    }
}

__global__ void fill_random_fp8(__nv_fp8_e4m3* p, size_t n, unsigned seed, float scale) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned x = (unsigned)(i * 2654435761u) ^ seed;
        x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
        p[i] = __nv_fp8_e4m3(((x & 0xffff) / 65535.0f - 0.5f) * scale);
    }
}

// gate_up is [t, 2I] (gate | up); act[t, I] = silu(gate) * up.
__global__ void silu_mul(const __nv_bfloat16* gate_up, __nv_bfloat16* act, int t, int inter) {
    size_t n = (size_t)t * inter;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t row = i / inter, col = i % inter;
        float g = __bfloat162float(gate_up[row * 2 * inter + col]);
        float u = __bfloat162float(gate_up[row * 2 * inter + inter + col]);
        act[i] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
    }
}

__global__ void silu_mul_fp8(const __nv_bfloat16* gate_up, __nv_fp8_e4m3* act, int t, int inter) {
    size_t n = (size_t)t * inter;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t row = i / inter, col = i % inter;
        float g = __bfloat162float(gate_up[row * 2 * inter + col]);
        float u = __bfloat162float(gate_up[row * 2 * inter + inter + col]);
        act[i] = __nv_fp8_e4m3(g / (1.0f + __expf(-g)) * u);
    }
}

// One expert's weights in the layout cuBLAS(Lt) wants for C = X * W^T ("TN"): W_gu [2I, H], W_d [H, I], row-major.
struct Expert {
    void* w_gu;
    void* w_d;
};

class Runner {
public:
    // experts: weight sets to allocate (slots); rotate through them to keep L2 out of the numbers.
    Runner(int hidden, int inter, bool fp8, int experts, int max_tokens) : fp8_(fp8), experts_count_(experts) {
        o_.hidden = hidden;
        o_.inter = inter;
        CHECK_CUBLAS(cublasCreate(&blas_));
        CHECK_CUBLAS(cublasLtCreate(&lt_));
        CHECK_CUDA(cudaStreamCreate(&stream_));
        CHECK_CUBLAS(cublasSetStream(blas_, stream_));
        size_t elt = fp8_ ? 1 : 2;
        for (int e = 0; e < experts_count_; e++) {
            Expert x{};
            CHECK_CUDA(cudaMalloc(&x.w_gu, (size_t)2 * o_.inter * o_.hidden * elt));
            CHECK_CUDA(cudaMalloc(&x.w_d, (size_t)o_.hidden * o_.inter * elt));
            fill(x.w_gu, (size_t)2 * o_.inter * o_.hidden, 17 + e);
            fill(x.w_d, (size_t)o_.hidden * o_.inter, 91 + e);
            experts_.push_back(x);
        }
        CHECK_CUDA(cudaMalloc(&x_, (size_t)max_tokens * o_.hidden * elt));
        fill(x_, (size_t)max_tokens * o_.hidden, 5);
        CHECK_CUDA(cudaMalloc(&gu_, (size_t)max_tokens * 2 * o_.inter * 2));
        CHECK_CUDA(cudaMalloc(&act_, (size_t)max_tokens * o_.inter * elt));
        CHECK_CUDA(cudaMalloc(&y_, (size_t)max_tokens * o_.hidden * 2));
        CHECK_CUDA(cudaMalloc(&workspace_, kWorkspace));
        float one = 1.0f;
        CHECK_CUDA(cudaMalloc(&scale_, sizeof(float)));
        CHECK_CUDA(cudaMemcpy(scale_, &one, sizeof(float), cudaMemcpyHostToDevice));
        CHECK_CUDA(cudaDeviceSynchronize());
    }

    static constexpr size_t kWorkspace = 64u << 20;

    // Runs one expert's FFN for t tokens on the stream.
    void ffn(int expert, int t) {
        const Expert& x = experts_[expert % experts_count_];
        gemm(x.w_gu, x_, gu_, 2 * o_.inter, t, o_.hidden);
        int threads = 256, blocks = std::min(1024, (int)(((size_t)t * o_.inter + threads - 1) / threads));
        if (fp8_) {
            silu_mul_fp8<<<blocks, threads, 0, stream_>>>((const __nv_bfloat16*)gu_, (__nv_fp8_e4m3*)act_, t, o_.inter);
        } else {
            silu_mul<<<blocks, threads, 0, stream_>>>((const __nv_bfloat16*)gu_, (__nv_bfloat16*)act_, t, o_.inter);
        }
        CHECK_CUDA(cudaGetLastError());
        gemm(x.w_d, act_, y_, o_.hidden, t, o_.inter);
    }

    cudaStream_t stream() const { return stream_; }

private:
    void fill(void* p, size_t n, unsigned seed) {
        if (fp8_) fill_random_fp8<<<1024, 256>>>((__nv_fp8_e4m3*)p, n, seed, 0.5f);
        else fill_random_bf16<<<1024, 256>>>((__nv_bfloat16*)p, n, seed, 0.5f);
        CHECK_CUDA(cudaGetLastError());
    }

    // C[t, n] (row-major, bf16) = X[t, k] * W[n, k]^T. Column-major view: C^T[n, t] = W[n,k] (as T of [k,n]) * X^T[k, t].
    void gemm(const void* w, const void* x, void* c, int n, int t, int k) {
        float alpha = 1.0f, beta = 0.0f;
        if (!fp8_) {
            CHECK_CUBLAS(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, n, t, k, &alpha, w, CUDA_R_16BF, k, x, CUDA_R_16BF, k,
                                      &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            return;
        }
        const LtPlan& plan = lt_plan(n, t, k);
        size_t ws = kWorkspace;
        CHECK_CUBLAS(cublasLtMatmul(lt_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, c, plan.c, c, plan.c, &plan.algo, workspace_, ws, stream_));
    }

    // cuBLASLt descriptors and the chosen algorithm per GEMM shape, built once: per-call descriptor creation and
    // heuristic queries would put host time into the measurement.
    struct LtPlan {
        cublasLtMatmulDesc_t desc{};
        cublasLtMatrixLayout_t a{}, b{}, c{};
        cublasLtMatmulAlgo_t algo{};
    };

    const LtPlan& lt_plan(int n, int t, int k) {
        long long key = ((long long)n << 40) ^ ((long long)t << 20) ^ (long long)k;
        auto it = plans_.find(key);
        if (it != plans_.end()) return it->second;
        LtPlan p;
        CHECK_CUBLAS(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale_, sizeof(scale_)));
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale_, sizeof(scale_)));
        CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, k, n, k));
        CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, k, t, k));
        CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, n, t, n));
        cublasLtMatmulPreference_t pref;
        CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
        size_t ws = kWorkspace;
        CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
        cublasLtMatmulHeuristicResult_t heur{};
        int found = 0;
        CHECK_CUBLAS(cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &heur, &found));
        cublasLtMatmulPreferenceDestroy(pref);
        if (found == 0) { std::fprintf(stderr, "no fp8 algorithm for n=%d t=%d k=%d\n", n, t, k); std::exit(3); }
        p.algo = heur.algo;
        return plans_.emplace(key, p).first->second;
    }

    struct Shape { int hidden = 0; int inter = 0; } o_;
    bool fp8_;
    int experts_count_;
    cublasHandle_t blas_{};
    cublasLtHandle_t lt_{};
    cudaStream_t stream_{};
    std::vector<Expert> experts_;
    std::map<long long, LtPlan> plans_;
    void* x_{}; void* gu_{}; void* act_{}; void* y_{}; void* workspace_{}; float* scale_{};
};

inline int arg_int(int argc, char** argv, int& i) {
    if (i + 1 >= argc) { std::fprintf(stderr, "missing value for %s\n", argv[i]); std::exit(2); }
    return std::atoi(argv[++i]);
}

inline float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace ebgpu
