// ExpertBridge GEMM calibration: time of one MoE expert's FFN (gate/up GEMM, SiLU*mul, down GEMM) against the
// number of tokens routed to it, on the card this runs on. The latency model (`expertbridge simulate`) uses the
// table as its compute term. Built and run on the GPU machine by tests/gpu/run-calibrate.sh.
//
//   gemm_calibrate --hidden 7168 --intermediate 2048 --dtype bf16|fp8 --out table.json
//
// Method (docs/latency-model.md): weights of 8 experts are rotated so repeated calls do not hit L2; inputs are random;
// each point is the median of per-call times measured with CUDA events after warm-up. A second pass checks that k
// experts run back to back cost about k times one (the model adds per-expert times on a device).
#include "../common/expert_ffn.cuh"

#include <cstring>
#include <string>

namespace {

struct Options {
    int hidden = 7168;
    int inter = 2048;
    std::string dtype = "bf16";
    std::string out = "gemm_table.json";
    int reps = 30;
};

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--hidden")) o.hidden = ebgpu::arg_int(argc, argv, i);
        else if (!std::strcmp(argv[i], "--intermediate")) o.inter = ebgpu::arg_int(argc, argv, i);
        else if (!std::strcmp(argv[i], "--reps")) o.reps = ebgpu::arg_int(argc, argv, i);
        else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) o.dtype = argv[++i];
        else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) o.out = argv[++i];
        else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (o.dtype != "bf16" && o.dtype != "fp8") { std::fprintf(stderr, "--dtype must be bf16 or fp8\n"); return 2; }

    const std::vector<int> tokens = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384};
    int max_t = tokens.back();
    cudaDeviceProp prop{};
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    ebgpu::Runner r(o.hidden, o.inter, o.dtype == "fp8", 8, max_t);
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
        float ms = ebgpu::median(v);
        double flops = 2.0 * t * (2.0 * o.inter * o.hidden + (double)o.hidden * o.inter);
        std::printf("%-8d %-12.4f %-12.1f\n", t, ms, flops / (ms * 1e-3) / 1e12);
        std::fprintf(f, "    {\"tokens\": %d, \"ms\": %.6f}%s\n", t, ms, i + 1 < tokens.size() ? "," : "");
    }
    // Additivity: k experts back to back vs k x one expert, from memory-bound to compute-bound token counts (the
    // latency model reads the saving per following expert, (k x one - together) / (k - 1), against tokens).
    std::fprintf(f, "  ],\n  \"additivity\": [\n");
    const int ks[] = {9, 9, 9, 9, 9, 9, 9};
    const int ts[] = {4, 64, 256, 512, 1024, 2048, 4096};
    const int na = (int)(sizeof(ts) / sizeof(ts[0]));
    for (int j = 0; j < na; j++) {
        std::vector<float> one, many;
        for (int rep = 0; rep < o.reps; rep++) { one.push_back(time_call(rep, ts[j], 1)); many.push_back(time_call(rep, ts[j], ks[j])); }
        float m1 = ebgpu::median(one), mk = ebgpu::median(many);
        std::printf("additivity: %d experts x %d tokens: %.4f ms vs %d x %.4f = %.4f ms (ratio %.3f)\n", ks[j], ts[j], mk, ks[j], m1, ks[j] * m1, mk / (ks[j] * m1));
        std::fprintf(f, "    {\"experts\": %d, \"tokens\": %d, \"msTogether\": %.6f, \"msOne\": %.6f}%s\n", ks[j], ts[j], mk, m1, j + 1 < na ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
    return 0;
}
