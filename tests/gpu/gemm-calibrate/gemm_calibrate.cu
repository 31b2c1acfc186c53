// ExpertBridge GEMM calibration: time of one MoE expert's FFN (gate/up GEMM, SiLU*mul, down GEMM) against the
// number of tokens routed to it, on the card this runs on. The latency model (`expertbridge simulate`) uses the
// table as its compute term. Built and run on the GPU machine by tests/gpu/run-calibrate.sh.
//
//   gemm_calibrate --hidden 7168 --intermediate 2048 --dtype bf16|fp8 --out table.json
//
// Method (docs/latency-model.md): weights of 8 experts are rotated so repeated calls do not hit L2; inputs are random;
// each point is the median of per-call times measured with CUDA events after warm-up. A second pass checks that k
// experts run back to back cost about k times one (the model adds per-expert times on a device).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
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

namespace {

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

struct Options {
    int hidden = 7168;
    int inter = 2048;
    std::string dtype = "bf16";
    std::string out = "gemm_table.json";
    int reps = 30;
};

int arg_int(int argc, char** argv, int& i) {
    if (i + 1 >= argc) { std::fprintf(stderr, "missing value for %s\n", argv[i]); std::exit(2); }
    return std::atoi(argv[++i]);
}

float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// One expert's weights in the layout cuBLAS(Lt) wants for C = X * W^T ("TN"): W_gu [2I, H], W_d [H, I], row-major.
struct Expert {
    void* w_gu;
    void* w_d;
};

class Runner {
public:
    Runner(const Options& o, int max_tokens) : o_(o), fp8_(o.dtype == "fp8") {
        CHECK_CUBLAS(cublasCreate(&blas_));
        CHECK_CUBLAS(cublasLtCreate(&lt_));
        CHECK_CUDA(cudaStreamCreate(&stream_));
        CHECK_CUBLAS(cublasSetStream(blas_, stream_));
        size_t elt = fp8_ ? 1 : 2;
        for (int e = 0; e < kExperts; e++) {
            Expert x{};
            CHECK_CUDA(cudaMalloc(&x.w_gu, (size_t)2 * o.inter * o.hidden * elt));
            CHECK_CUDA(cudaMalloc(&x.w_d, (size_t)o.hidden * o.inter * elt));
            fill(x.w_gu, (size_t)2 * o.inter * o.hidden, 17 + e);
            fill(x.w_d, (size_t)o.hidden * o.inter, 91 + e);
            experts_.push_back(x);
        }
        CHECK_CUDA(cudaMalloc(&x_, (size_t)max_tokens * o.hidden * elt));
        fill(x_, (size_t)max_tokens * o.hidden, 5);
        CHECK_CUDA(cudaMalloc(&gu_, (size_t)max_tokens * 2 * o.inter * 2));
        CHECK_CUDA(cudaMalloc(&act_, (size_t)max_tokens * o.inter * elt));
        CHECK_CUDA(cudaMalloc(&y_, (size_t)max_tokens * o.hidden * 2));
        CHECK_CUDA(cudaMalloc(&workspace_, kWorkspace));
        float one = 1.0f;
        CHECK_CUDA(cudaMalloc(&scale_, sizeof(float)));
        CHECK_CUDA(cudaMemcpy(scale_, &one, sizeof(float), cudaMemcpyHostToDevice));
        CHECK_CUDA(cudaDeviceSynchronize());
    }

    static constexpr int kExperts = 8;
    static constexpr size_t kWorkspace = 64u << 20;

    // Runs one expert's FFN for t tokens on the stream.
    void ffn(int expert, int t) {
        const Expert& x = experts_[expert % kExperts];
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
        cublasLtMatmulDesc_t desc;
        CHECK_CUBLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale_, sizeof(scale_)));
        CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale_, sizeof(scale_)));
        cublasLtMatrixLayout_t la, lb, lc;
        CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, k, n, k));
        CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, k, t, k));
        CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, t, n));
        cublasLtMatmulPreference_t pref;
        CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
        size_t ws = kWorkspace;
        CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
        cublasLtMatmulHeuristicResult_t heur{};
        int found = 0;
        CHECK_CUBLAS(cublasLtMatmulAlgoGetHeuristic(lt_, desc, la, lb, lc, lc, pref, 1, &heur, &found));
        if (found == 0) { std::fprintf(stderr, "no fp8 algorithm for n=%d t=%d k=%d\n", n, t, k); std::exit(3); }
        CHECK_CUBLAS(cublasLtMatmul(lt_, desc, &alpha, w, la, x, lb, &beta, c, lc, c, lc, &heur.algo, workspace_, ws, stream_));
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb); cublasLtMatrixLayoutDestroy(lc);
        cublasLtMatmulDescDestroy(desc);
    }

    Options o_;
    bool fp8_;
    cublasHandle_t blas_{};
    cublasLtHandle_t lt_{};
    cudaStream_t stream_{};
    std::vector<Expert> experts_;
    void* x_{}; void* gu_{}; void* act_{}; void* y_{}; void* workspace_{}; float* scale_{};
};

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--hidden")) o.hidden = arg_int(argc, argv, i);
        else if (!std::strcmp(argv[i], "--intermediate")) o.inter = arg_int(argc, argv, i);
        else if (!std::strcmp(argv[i], "--reps")) o.reps = arg_int(argc, argv, i);
        else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) o.dtype = argv[++i];
        else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) o.out = argv[++i];
        else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (o.dtype != "bf16" && o.dtype != "fp8") { std::fprintf(stderr, "--dtype must be bf16 or fp8\n"); return 2; }

    const std::vector<int> tokens = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096};
    int max_t = tokens.back();
    cudaDeviceProp prop{};
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    Runner r(o, max_t);
    cudaEvent_t a, b;
    CHECK_CUDA(cudaEventCreate(&a));
    CHECK_CUDA(cudaEventCreate(&b));

    auto time_call = [&](int expert, int t, int count) {
        CHECK_CUDA(cudaEventRecord(a, r.stream()));
        for (int k = 0; k < count; k++) r.ffn(expert + k, t);
        CHECK_CUDA(cudaEventRecord(b, r.stream()));
        CHECK_CUDA(cudaEventSynchronize(b));
        float ms = 0;
        CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
        return ms;
    };

    FILE* f = std::fopen(o.out.c_str(), "w");
    if (!f) { std::perror(o.out.c_str()); return 1; }
    std::fprintf(f, "{\n  \"card\": \"%s\",\n  \"dtype\": \"%s\",\n  \"hidden\": %d,\n  \"intermediate\": %d,\n  \"reps\": %d,\n  \"points\": [\n",
                 prop.name, o.dtype.c_str(), o.hidden, o.inter, o.reps);
    std::printf("%-8s %-12s %-12s\n", "tokens", "ms (median)", "TFLOP/s");
    for (size_t i = 0; i < tokens.size(); i++) {
        int t = tokens[i];
        for (int w = 0; w < 3; w++) time_call(w, t, 1);
        std::vector<float> v;
        for (int rep = 0; rep < o.reps; rep++) v.push_back(time_call(rep, t, 1));
        float ms = median(v);
        double flops = 2.0 * t * (2.0 * o.inter * o.hidden + (double)o.hidden * o.inter);
        std::printf("%-8d %-12.4f %-12.1f\n", t, ms, flops / (ms * 1e-3) / 1e12);
        std::fprintf(f, "    {\"tokens\": %d, \"ms\": %.6f}%s\n", t, ms, i + 1 < tokens.size() ? "," : "");
    }
    // Additivity: k experts back to back vs k x one expert, at a few token counts.
    std::fprintf(f, "  ],\n  \"additivity\": [\n");
    const int ks[] = {9, 9, 9};
    const int ts[] = {4, 64, 512};
    for (int j = 0; j < 3; j++) {
        std::vector<float> one, many;
        for (int rep = 0; rep < o.reps; rep++) { one.push_back(time_call(rep, ts[j], 1)); many.push_back(time_call(rep, ts[j], ks[j])); }
        float m1 = median(one), mk = median(many);
        std::printf("additivity: %d experts x %d tokens: %.4f ms vs %d x %.4f = %.4f ms (ratio %.3f)\n", ks[j], ts[j], mk, ks[j], m1, ks[j] * m1, mk / (ks[j] * m1));
        std::fprintf(f, "    {\"experts\": %d, \"tokens\": %d, \"msTogether\": %.6f, \"msOne\": %.6f}%s\n", ks[j], ts[j], mk, m1, j < 2 ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
    return 0;
}
