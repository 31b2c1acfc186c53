// ExpertBridge real MoE benchmark: one MoE layer in expert parallelism across the GPUs of one machine.
// Each GPU holds its slots' expert weights (DeepSeek-V3 expert shape, fp8 or bf16); per step and layer, every GPU
// runs the FFN of each of its slots for the tokens the placement routes there; the layer ends when the slowest GPU
// finishes. The workload (tokens per slot per step and layer, for each placement policy) is exported by
// `expertbridge simulate --export-workload F`, together with the latency model's compute-only prediction, so the
// measurement and the model are compared on exactly the same tokens.
//
//   moe_bench --workload F --out results.json [--dtype fp8|bf16]
//
// Workload file (text):
//   ebmoe 1
//   shape <devices> <slotsPerDevice> <layers> <steps> <hidden> <intermediate>
//   policy <name> <predictedStepMs>
//   <steps x layers lines, each devices*slotsPerDevice token counts>
//   policy ...
#include "../common/expert_ffn.cuh"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

namespace {

struct Policy {
    std::string name;
    double predicted_ms = 0;
    std::vector<int> tokens;  // [steps][layers][slots]
};

struct Workload {
    int devices = 0, slots_per_device = 0, layers = 0, steps = 0, hidden = 0, inter = 0;
    std::vector<Policy> policies;
};

Workload read_workload(const std::string& path) {
    std::ifstream in(path);
    if (!in) { std::fprintf(stderr, "%s: cannot open\n", path.c_str()); std::exit(2); }
    Workload w;
    std::string tag;
    int version = 0;
    in >> tag >> version;
    if (tag != "ebmoe" || version != 1) { std::fprintf(stderr, "%s: not an ebmoe 1 workload\n", path.c_str()); std::exit(2); }
    in >> tag >> w.devices >> w.slots_per_device >> w.layers >> w.steps >> w.hidden >> w.inter;
    if (tag != "shape" || w.devices < 1) { std::fprintf(stderr, "%s: bad shape line\n", path.c_str()); std::exit(2); }
    size_t per_policy = (size_t)w.steps * w.layers * w.devices * w.slots_per_device;
    while (in >> tag) {
        if (tag != "policy") { std::fprintf(stderr, "%s: expected 'policy', got '%s'\n", path.c_str(), tag.c_str()); std::exit(2); }
        Policy p;
        in >> p.name >> p.predicted_ms;
        p.tokens.resize(per_policy);
        for (size_t i = 0; i < per_policy; i++) {
            if (!(in >> p.tokens[i]) || p.tokens[i] < 0) { std::fprintf(stderr, "%s: policy %s: bad token count %zu\n", path.c_str(), p.name.c_str(), i); std::exit(2); }
        }
        w.policies.push_back(std::move(p));
    }
    return w;
}

// A reusable barrier for the GPU threads and the coordinator.
class Barrier {
public:
    explicit Barrier(int n) : n_(n) {}
    void wait() {
        std::unique_lock<std::mutex> lock(m_);
        int gen = gen_;
        if (++count_ == n_) { count_ = 0; gen_++; cv_.notify_all(); return; }
        cv_.wait(lock, [&] { return gen != gen_; });
    }
private:
    std::mutex m_;
    std::condition_variable cv_;
    int n_, count_ = 0, gen_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    std::string workload_path, out = "moe_bench.json", dtype = "fp8";
    int warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (!std::strcmp(argv[i], "--workload") && i + 1 < argc) workload_path = argv[++i];
        else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
        else if (!std::strcmp(argv[i], "--warmup")) warmup = ebgpu::arg_int(argc, argv, i);
        else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (workload_path.empty()) { std::fprintf(stderr, "--workload is required\n"); return 2; }
    Workload w = read_workload(workload_path);
    int gpus = 0;
    CHECK_CUDA(cudaGetDeviceCount(&gpus));
    if (gpus < w.devices) { std::fprintf(stderr, "workload needs %d GPUs, %d visible\n", w.devices, gpus); return 2; }
    int max_tokens = 1;
    for (auto& p : w.policies) for (int t : p.tokens) max_tokens = std::max(max_tokens, t);

    cudaDeviceProp prop{};
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    const int S = w.slots_per_device;
    Barrier barrier(w.devices + 1);
    std::vector<float> elapsed(w.devices);
    std::atomic<int> current_policy{0}, current_step{0}, current_layer{0};
    std::atomic<bool> done{false};

    std::vector<std::thread> threads;
    for (int d = 0; d < w.devices; d++) {
        threads.emplace_back([&, d] {
            CHECK_CUDA(cudaSetDevice(d));
            ebgpu::Runner r(w.hidden, w.inter, dtype == "fp8", S, max_tokens);
            cudaEvent_t a, b;
            CHECK_CUDA(cudaEventCreate(&a));
            CHECK_CUDA(cudaEventCreate(&b));
            // Warm every token count this GPU will run, so cuBLASLt plan creation (per GEMM shape) and first-use
            // costs stay out of the timed steps.
            std::vector<char> seen((size_t)max_tokens + 1, 0);
            for (const Policy& p : w.policies) {
                for (size_t i = 0; i < p.tokens.size(); i++) {
                    int t = p.tokens[i];
                    bool mine = (int)((i / S) % w.devices) == d;
                    if (mine && t > 0 && !seen[t]) { seen[t] = 1; r.ffn(0, t); }
                }
            }
            CHECK_CUDA(cudaStreamSynchronize(r.stream()));
            barrier.wait();  // ready
            while (true) {
                barrier.wait();  // start of a layer (or the end)
                if (done.load()) break;
                const Policy& p = w.policies[current_policy.load()];
                size_t base = (((size_t)current_step.load() * w.layers) + current_layer.load()) * (size_t)w.devices * S + (size_t)d * S;
                CHECK_CUDA(cudaEventRecord(a, r.stream()));
                for (int s = 0; s < S; s++) {
                    int t = p.tokens[base + s];
                    if (t > 0) r.ffn(s, t);
                }
                CHECK_CUDA(cudaEventRecord(b, r.stream()));
                CHECK_CUDA(cudaEventSynchronize(b));
                float ms = 0;
                CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
                elapsed[d] = ms;
                barrier.wait();  // layer finished
            }
        });
    }
    barrier.wait();

    FILE* f = std::fopen(out.c_str(), "w");
    if (!f) { std::perror(out.c_str()); return 1; }
    std::fprintf(f, "{\n  \"card\": \"%s\",\n  \"gpus\": %d,\n  \"dtype\": \"%s\",\n  \"slotsPerDevice\": %d,\n  \"layers\": %d,\n  \"steps\": %d,\n  \"policies\": [\n",
                 prop.name, w.devices, dtype.c_str(), S, w.layers, w.steps);
    std::printf("%-28s %12s %12s %12s %12s %8s\n", "policy", "mean ms", "p50 ms", "p99 ms", "model ms", "ratio");
    for (size_t pi = 0; pi < w.policies.size(); pi++) {
        current_policy = (int)pi;
        std::vector<float> step_ms;
        for (int rep = -warmup; rep < w.steps; rep++) {
            int step = rep < 0 ? 0 : rep;
            current_step = step;
            float total = 0;
            for (int l = 0; l < w.layers; l++) {
                current_layer = l;
                barrier.wait();
                barrier.wait();
                total += *std::max_element(elapsed.begin(), elapsed.end());
            }
            if (rep >= 0) step_ms.push_back(total);
        }
        double mean = 0;
        for (float v : step_ms) mean += v;
        mean /= step_ms.size();
        std::vector<float> sorted = step_ms;
        std::sort(sorted.begin(), sorted.end());
        float p50 = sorted[sorted.size() / 2];
        float p99 = sorted[std::min(sorted.size() - 1, (size_t)(sorted.size() * 0.99))];
        const Policy& p = w.policies[pi];
        double ratio = p.predicted_ms > 0 ? mean / p.predicted_ms : 0;
        std::printf("%-28s %12.4f %12.4f %12.4f %12.4f %8.3f\n", p.name.c_str(), mean, p50, p99, p.predicted_ms, ratio);
        std::fprintf(f, "    {\"policy\": \"%s\", \"stepMsMean\": %.6f, \"stepMsP50\": %.6f, \"stepMsP99\": %.6f, \"modelStepMs\": %.6f, \"measuredOverModel\": %.4f}%s\n",
                     p.name.c_str(), mean, p50, p99, p.predicted_ms, ratio, pi + 1 < w.policies.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
    done = true;
    barrier.wait();
    for (auto& t : threads) t.join();
    return 0;
}
