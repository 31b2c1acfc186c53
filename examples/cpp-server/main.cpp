// A small MoE serving loop that embeds ExpertBridge through its C ABI (expertbridge.h).
//
// Every step it routes a batch of tokens with skewed, drifting expert popularity (DeepSeek-V3-like: hot experts an
// order of magnitude above cold ones, slow drift, sudden workload shifts) through the bridge's mapping, computes each
// routed slot's share (dot products against the slot's expert weights), checks that every routed slot holds the
// weights of the expert the mapping names (checksums), records the loads, and calls the step boundary. The bridge
// decides, copies weights and commits in the background; serving never stops. Mid-run the program rewrites the policy
// file and watches the bridge reload it.
//
// Two modes. `--backend host` (the default; CI): weights in host memory, dot products on the CPU, the bridge copies
// with memcpy. `--backend cuda` (built when CMake finds a CUDA compiler): weights in device memory on N GPUs
// (DeepSeek-V3-sized experts by default), bf16 expert FFN GEMMs per slot, one stream per GPU, the bridge relocates with
// peer copies while serving, and the slots of every committed layer are checksummed on the GPUs.
//
// Output: a progress line about once a second and a closing summary; with EXPERTBRIDGE_SUMMARY=<file>, a JSON summary
// (including the expert-compute latency per step, mean/p50/p99, of the first window and of the last).
// Exit code: 0 on success, 1 when a checksum mismatched or a call failed, 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "expertbridge.h"
#ifdef EB_WITH_CUDA
#include "gpu_experts.h"
#endif

namespace {

volatile double g_sink;

struct Options {
    int layers = 8;
    int experts = 64;
    int devices = 8;
    int slots_per_device = 9;
    std::string backend = "host";  // host | cuda
    int hidden = 64;           // host: floats per weight tensor; cuda: the model's hidden size (DeepSeek-V3: 7168)
    int inter = 2048;          // cuda: the expert's intermediate size (DeepSeek-V3: 2048)
    int tensors = 2;           // weight tensors per expert (w_in, w_out)
    int tokens = 512;          // tokens per step
    int top_k = 8;
    long steps = 6000;
    long shift_every = 2000;   // a workload shift (new hot set) every this many steps
    long rewrite_at = -1;      // step at which the policy file is rewritten (-1: 40% of the run)
    long rewrite_every = 0;    // soak: rewrite again every this many steps
    int window = 200;          // steps per imbalance window of the summary
    int metrics_port = 0;
    std::string policy;        // a .csx path (hot-reloaded) or a built-in name
    std::string policy_source; // what the program writes to that path (default: EPLB with keep-slots)
    bool quiet = false;
};

[[noreturn]] void usage(const char* error)
{
    std::fprintf(stderr, "error: %s\n", error);
    std::fprintf(stderr,
                 "usage: cpp-server --policy <file.csx|builtin> [--policy-source F.csx] [--backend host|cuda] [--steps N] [--layers N]\n"
                 "                  [--experts N] [--devices N] [--inter N]\n"
                 "                  [--slots-per-device N] [--hidden N] [--tokens N] [--top-k N] [--shift-every N]\n"
                 "                  [--rewrite-at STEP] [--rewrite-every N] [--window N] [--metrics-port P]\n"
                 "                  [--quiet]\n");
    std::exit(2);
}

long parse_long(const char* flag, const char* value, long min)
{
    char* end = nullptr;
    long v = std::strtol(value, &end, 10);
    if (end == value || *end != '\0' || v < min) {
        std::string e = std::string(flag) + " needs a whole number >= " + std::to_string(min) + ", got '" + value + "'";
        usage(e.c_str());
    }
    return v;
}

Options parse(int argc, char** argv)
{
    Options o;
    bool hidden_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quiet") {
            o.quiet = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage((a + " needs a value").c_str());
        }
        const char* v = argv[++i];
        if (a == "--policy") o.policy = v;
        else if (a == "--policy-source") o.policy_source = v;
        else if (a == "--backend") o.backend = v;
        else if (a == "--inter") o.inter = static_cast<int>(parse_long("--inter", v, 1));
        else if (a == "--steps") o.steps = parse_long("--steps", v, 1);
        else if (a == "--layers") o.layers = static_cast<int>(parse_long("--layers", v, 1));
        else if (a == "--experts") o.experts = static_cast<int>(parse_long("--experts", v, 2));
        else if (a == "--devices") o.devices = static_cast<int>(parse_long("--devices", v, 1));
        else if (a == "--slots-per-device") o.slots_per_device = static_cast<int>(parse_long("--slots-per-device", v, 1));
        else if (a == "--hidden") o.hidden = static_cast<int>(parse_long("--hidden", v, 1)), hidden_given = true;
        else if (a == "--tokens") o.tokens = static_cast<int>(parse_long("--tokens", v, 1));
        else if (a == "--top-k") o.top_k = static_cast<int>(parse_long("--top-k", v, 1));
        else if (a == "--shift-every") o.shift_every = parse_long("--shift-every", v, 0);
        else if (a == "--rewrite-at") o.rewrite_at = parse_long("--rewrite-at", v, 0);
        else if (a == "--rewrite-every") o.rewrite_every = parse_long("--rewrite-every", v, 0);
        else if (a == "--window") o.window = static_cast<int>(parse_long("--window", v, 1));
        else if (a == "--metrics-port") o.metrics_port = static_cast<int>(parse_long("--metrics-port", v, 0));
        else usage(("unknown option " + a).c_str());
    }
    if (o.policy.empty()) usage("--policy is required");
    if (o.backend != "host" && o.backend != "cuda") usage("--backend must be host or cuda");
#ifndef EB_WITH_CUDA
    if (o.backend == "cuda") usage("--backend cuda: this build has no CUDA mode (CMake found no CUDA compiler)");
#endif
    if (o.backend == "cuda" && !hidden_given) o.hidden = 7168;  // DeepSeek-V3
    if (o.devices * o.slots_per_device < o.experts) usage("--devices x --slots-per-device must be >= --experts");
    if (o.top_k > o.experts) usage("--top-k must be <= --experts");
    if (o.rewrite_at < 0) o.rewrite_at = o.steps * 2 / 5;
    return o;
}

bool is_script(const std::string& policy)
{
    return policy.size() > 4 && policy.compare(policy.size() - 4, 4, ".csx") == 0;
}

// The deterministic weights of (layer, expert): a pattern no other expert shares.
float weight(int layer, int expert, int tensor, int i)
{
    uint32_t h = static_cast<uint32_t>(layer) * 2654435761u ^ static_cast<uint32_t>(expert) * 40503u
        ^ static_cast<uint32_t>(tensor) * 97u ^ static_cast<uint32_t>(i) * 2246822519u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return static_cast<float>(h % 2001u) / 1000.0f - 1.0f;
}

uint64_t checksum(const float* data, size_t count)
{
    uint64_t h = 1469598103934665603ull;  // FNV-1a over 32-bit words
    for (size_t i = 0; i < count; ++i) {
        uint32_t word;
        std::memcpy(&word, data + i, sizeof word);
        h = (h ^ word) * 1099511628211ull;
    }
    return h;
}

long rss_kib()
{
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Latency of one window of steps: mean, median and 99th percentile, in milliseconds.
struct Latency {
    double mean = 0, p50 = 0, p99 = 0;
};

Latency latency_of(std::vector<double> ms)
{
    Latency r;
    if (ms.empty()) return r;
    std::sort(ms.begin(), ms.end());
    for (double v : ms) r.mean += v / static_cast<double>(ms.size());
    r.p50 = ms[ms.size() / 2];
    r.p99 = ms[std::min(ms.size() - 1, static_cast<size_t>(std::ceil(0.99 * static_cast<double>(ms.size()))) - 1)];
    return r;
}

std::string json_of(const Latency& l)
{
    std::ostringstream s;
    s << "{ \"mean\": " << l.mean << ", \"p50\": " << l.p50 << ", \"p99\": " << l.p99 << " }";
    return s.str();
}

#define EB_CHECK(call)                                                                          \
    do {                                                                                        \
        eb_status st_ = (call);                                                                 \
        if (st_ != EB_STATUS_OK) {                                                              \
            std::fprintf(stderr, "error: %s failed: %s: %s\n", #call, eb_status_name(st_), eb_last_error()); \
            std::exit(1);                                                                       \
        }                                                                                       \
    } while (0)

// Expert popularity per layer: log-weights that drift, with a hot set that moves at every workload shift.
class Workload {
public:
    Workload(int layers, int experts, uint64_t seed) : layers_(layers), experts_(experts), rng_(seed), logits_(layers * experts)
    {
        shift();
    }

    // A new hot set: ~8% of experts 10-30x above the cold ones (DeepSeek-V3's routing statistics look like this).
    void shift()
    {
        std::uniform_real_distribution<double> noise(-0.3, 0.3);
        for (int l = 0; l < layers_; ++l) {
            std::vector<int> order(experts_);
            for (int e = 0; e < experts_; ++e) order[e] = e;
            std::shuffle(order.begin(), order.end(), rng_);
            int hot = std::max(1, experts_ / 12);
            for (int r = 0; r < experts_; ++r) {
                double base = r < hot ? std::log(10.0 + 20.0 * (hot - r) / hot) : 0.0;
                logits_[l * experts_ + order[r]] = base + noise(rng_);
            }
        }
    }

    // Slow drift: a small random walk on every log-weight.
    void drift()
    {
        std::normal_distribution<double> step(0.0, 0.01);
        for (double& v : logits_) v += step(rng_);
    }

    // Tokens per logical expert for one step: each token picks top_k distinct experts by weight.
    void route(int tokens, int top_k, std::vector<int32_t>& counts)
    {
        std::fill(counts.begin(), counts.end(), 0);
        std::vector<double> w(experts_);
        for (int l = 0; l < layers_; ++l) {
            double total = 0;
            for (int e = 0; e < experts_; ++e) total += (w[e] = std::exp(logits_[l * experts_ + e]));
            // Expected share per expert of tokens*top_k choices (capped at one choice per token), with sampling noise.
            for (int e = 0; e < experts_; ++e) {
                double mean = std::min(1.0, top_k * w[e] / total) * tokens;
                std::poisson_distribution<int> d(std::max(mean, 1e-9));
                counts[l * experts_ + e] = std::min(d(rng_), tokens);
            }
        }
    }

private:
    int layers_;
    int experts_;
    std::mt19937_64 rng_;
    std::vector<double> logits_;
};

// Writes the policy script the bridge watches: EPLB (the bridge's built-in port) by default, or the text of
// `source` (for example policies/omniplacement.csx; its #load paths resolve next to `path`). Each generation changes
// the content, so the bridge sees a new version.
void write_policy(const std::string& path, int generation, const std::string& source)
{
    std::ostringstream body;
    if (source.empty()) {
        body << "// @option window = " << (generation % 2 == 0 ? 200 : 400) << "\n"
             << "return new ExpertBridge.Core.Policies.EplbPolicy();\n";
    } else {
        std::ifstream in(source);
        if (!in) {
            std::fprintf(stderr, "error: --policy-source %s: cannot read the file\n", source.c_str());
            std::exit(2);
        }
        body << in.rdbuf();
    }
    // Deploy by rename: write a temporary file, then move it over the watched one.
    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp);
        f << "// ExpertBridge example policy, generation " << generation << " (rewritten by cpp-server while serving).\n"
          << body.str();
    }
    std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv)
{
    Options o = parse(argc, argv);
    const int slots = o.devices * o.slots_per_device;
    const size_t expert_floats = static_cast<size_t>(o.hidden);

    std::string policy = o.policy;
    if (is_script(policy)) {
        write_policy(policy, 0, o.policy_source);
    }

    // keep-slots is EPLB's knob (unchanged experts keep their slots); the host logs options a policy does not read, so
    // it goes only to EPLB: the built-in, or the script this example writes (EPLB unless --policy-source says otherwise).
    const bool eplb = o.policy_source.empty() ? (is_script(policy) || policy.find("eplb") != std::string::npos)
                                               : o.policy_source.find("eplb") != std::string::npos;
    std::ostringstream config;
    config << "{ \"model\": { \"layers\": " << o.layers << ", \"experts\": " << o.experts << " },"
           << " \"topology\": { \"devices\": " << o.devices << ", \"slotsPerDevice\": " << o.slots_per_device << " },"
           << " \"backend\": \"" << o.backend << "\", \"policy\": \"" << policy << "\", \"policyTimeoutMs\": 10000,"
           << (eplb ? " \"policyOptions\": { \"keep-slots\": true }," : "")
           << " \"rebalance\": { \"imbalanceTrigger\": 1.15, \"checkEverySteps\": 25, \"windowSteps\": " << o.window
           << ", \"warmupSteps\": " << o.window << ", \"minStepsBetween\": " << 2 * o.window << " },"
           << " \"moveBudget\": { \"maxLayersPerBoundary\": 1 },"
           << " \"metrics\": { \"port\": " << o.metrics_port << " },"
           << " \"logging\": { \"level\": \"" << (o.quiet ? "Warning" : "Information") << "\" } }";

    auto started = std::chrono::steady_clock::now();
    eb_bridge bridge = nullptr;
    EB_CHECK(eb_create(config.str().c_str(), &bridge));
    eb_info info{};
    info.struct_size = sizeof info;
    EB_CHECK(eb_get_info(bridge, &info));

    // Expert weights: host mode, one buffer per (layer, slot, tensor), filled with the weights of the expert the slot
    // starts with; cuda mode, device memory on the slot's GPU (GpuExperts).
    const bool cuda = o.backend == "cuda";
    std::vector<std::vector<float>> weights(cuda ? 0 : static_cast<size_t>(o.layers) * slots * o.tensors, std::vector<float>(expert_floats));
#ifdef EB_WITH_CUDA
    std::unique_ptr<GpuExperts> gpu;
    if (cuda) gpu = std::make_unique<GpuExperts>(o.devices, o.slots_per_device, o.layers, o.hidden, o.inter, o.tokens);
#endif
    std::vector<uint64_t> expected(static_cast<size_t>(o.layers) * o.experts * o.tensors);
    std::vector<int32_t> phy2log(static_cast<size_t>(o.layers) * slots);
    std::vector<int32_t> log2phy(static_cast<size_t>(o.layers) * o.experts * info.max_replicas);
    std::vector<int32_t> replicas(static_cast<size_t>(o.layers) * o.experts);
    eb_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    mapping.layer = -1;
    mapping.phy2log = phy2log.data();
    mapping.phy2log_capacity = phy2log.size();
    mapping.log2phy = log2phy.data();
    mapping.log2phy_capacity = log2phy.size();
    mapping.replica_counts = replicas.data();
    mapping.replica_counts_capacity = replicas.size();
    EB_CHECK(eb_get_mapping(bridge, &mapping));
    // Tells the bridge where tensor t of (layer, slot) lives: host memory, or device memory on the slot's GPU.
    auto register_tensor = [&](int layer, int slot, int t, void* data, size_t bytes) {
        eb_tensor_desc d{};
        d.struct_size = sizeof d;
        d.layer = layer;
        d.slot = slot;
        d.tensor_index = t;
        d.device = slot / o.slots_per_device;
        d.data = data;
        d.bytes = bytes;
        EB_CHECK(eb_register_tensor(bridge, &d));
    };
    for (int l = 0; l < o.layers && cuda; ++l) {
#ifdef EB_WITH_CUDA
        for (int s = 0; s < slots; ++s) {
            gpu->load(l, s, phy2log[l * slots + s]);
            for (int t = 0; t < GpuExperts::kTensors; ++t) {
                register_tensor(l, s, t, gpu->tensor(l, s, t), gpu->tensor_bytes(t));
            }
        }
#endif
    }
    for (int l = 0; l < o.layers && !cuda; ++l) {
        for (int e = 0; e < o.experts; ++e) {
            for (int t = 0; t < o.tensors; ++t) {
                std::vector<float> w(expert_floats);
                for (size_t i = 0; i < expert_floats; ++i) w[i] = weight(l, e, t, static_cast<int>(i));
                expected[(static_cast<size_t>(l) * o.experts + e) * o.tensors + t] = checksum(w.data(), w.size());
            }
        }
        for (int s = 0; s < slots; ++s) {
            int e = phy2log[l * slots + s];
            for (int t = 0; t < o.tensors; ++t) {
                auto& w = weights[(static_cast<size_t>(l) * slots + s) * o.tensors + t];
                for (size_t i = 0; i < expert_floats; ++i) w[i] = weight(l, e, t, static_cast<int>(i));
                register_tensor(l, s, t, w.data(), w.size() * sizeof(float));
            }
        }
    }

    Workload workload(o.layers, o.experts, 20251128);
    std::vector<int32_t> expert_tokens(static_cast<size_t>(o.layers) * o.experts);
    std::vector<int32_t> slot_tokens(static_cast<size_t>(o.layers) * slots);
    std::vector<int32_t> changed(static_cast<size_t>(o.layers));
    std::vector<double> device_load(static_cast<size_t>(o.devices));
    std::vector<float> activation(expert_floats + 61, 0.0f);
    for (size_t i = 0; i < activation.size(); ++i) activation[i] = std::sin(static_cast<float>(i));

    int64_t epoch = mapping.epoch;
    long mismatches = 0, policy_rewrites = 0, mapping_updates = 0, layers_verified = 0;
#ifdef EB_WITH_CUDA
    // Every slot of every layer holds the expert the starting mapping names (replicas included).
    for (int l = 0; l < o.layers && cuda; ++l, ++layers_verified) mismatches += gpu->verify(l, phy2log.data() + static_cast<size_t>(l) * slots);
#endif
    std::vector<double> window_latency;      // expert compute per step (ms) of the current window
    Latency latency_first, latency_last;
    const long latency_warmup = cuda ? std::min<long>(o.window / 4, 50) : 0;
    double imbalance_sum = 0, step_ms_sum = 0;
    std::vector<double> window_imbalance;
    std::vector<double> window_step_ms;
    double sink = 0;
    long rss_after_warmup = 0;
    std::vector<long> rss_samples;  // at every tenth of the run
    auto last_print = std::chrono::steady_clock::now();
    eb_stats stats{};
    stats.struct_size = sizeof stats;
    long reloads_at_rewrite = 0;
    long observed_reloads = 0;

    for (long step = 0; step < o.steps; ++step) {
        auto t0 = std::chrono::steady_clock::now();
        if (o.shift_every > 0 && step > 0 && step % o.shift_every == 0) workload.shift();
        workload.drift();
        workload.route(o.tokens, o.top_k, expert_tokens);

        // Route each expert's tokens over its replicas, round-robin, and compute the experts' shares.
        std::fill(slot_tokens.begin(), slot_tokens.end(), 0);
        double step_imbalance = 0;
        for (int l = 0; l < o.layers; ++l) {
            std::fill(device_load.begin(), device_load.end(), 0.0);
            for (int e = 0; e < o.experts; ++e) {
                int n = expert_tokens[l * o.experts + e];
                int r = replicas[l * o.experts + e];
                for (int k = 0; k < r; ++k) {
                    int slot = log2phy[(static_cast<size_t>(l) * o.experts + e) * info.max_replicas + k];
                    int share = n / r + (k < n % r ? 1 : 0);
                    slot_tokens[l * slots + slot] += share;
                }
            }
            for (int s = 0; s < slots; ++s) {
                int n = slot_tokens[l * slots + s];
                device_load[static_cast<size_t>(s / o.slots_per_device)] += n;
            }
            double mx = 0, sum = 0;
            for (double d : device_load) {
                mx = std::max(mx, d);
                sum += d;
            }
            step_imbalance += sum > 0 ? mx / (sum / o.devices) : 1.0;
        }
        step_imbalance /= o.layers;

        // The experts' work: on the GPUs (each GPU its slots, the step ends with the slowest), or dot products here.
        auto c0 = std::chrono::steady_clock::now();
        double compute_ms = 0;
#ifdef EB_WITH_CUDA
        if (cuda) compute_ms = gpu->step(slot_tokens.data());
#endif
        for (int l = 0; l < o.layers && !cuda; ++l) {
            for (int s = 0; s < slots; ++s) {
                int n = slot_tokens[l * slots + s];
                if (n == 0) continue;
                int e = phy2log[l * slots + s];
                // The checksum: does this slot hold the weights of the expert the mapping routes to it?
                for (int t = 0; t < o.tensors; ++t) {
                    const auto& w = weights[(static_cast<size_t>(l) * slots + s) * o.tensors + t];
                    if (checksum(w.data(), w.size()) != expected[(static_cast<size_t>(l) * o.experts + e) * o.tensors + t]) {
                        ++mismatches;
                    }
                }
                // The expert's share: one dot product per token against the slot's first tensor.
                const auto& w = weights[(static_cast<size_t>(l) * slots + s) * o.tensors];
                double acc = 0;
                for (int token = 0; token < n; ++token) {
                    const float* x = activation.data() + token % 61;
                    float dot = 0;
                    for (size_t i = 0; i < expert_floats; ++i) dot += w[i] * x[i];
                    acc += dot;
                }
                sink += acc;
            }
        }
        if (!cuda) compute_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count();
        // The first steps of a GPU run pay one-time costs (lazy kernel loading, cuBLAS heuristics for new shapes):
        // they stay out of the latency windows so "before balancing" is not inflated by start-up.
        if (step >= latency_warmup) window_latency.push_back(compute_ms);

        EB_CHECK(eb_record_step(bridge, epoch, slot_tokens.data(), slot_tokens.size()));
        uint32_t n_changed = 0;
        EB_CHECK(eb_step_boundary(bridge, changed.data(), static_cast<uint32_t>(changed.size()), &n_changed, &epoch));
        if (n_changed > 0) {
            EB_CHECK(eb_get_mapping(bridge, &mapping));
            epoch = mapping.epoch;
            ++mapping_updates;
#ifdef EB_WITH_CUDA
            // The committed layers' slots, checksummed on their GPUs, must hold the experts the new mapping names.
            for (uint32_t i = 0; i < n_changed && cuda; ++i, ++layers_verified) {
                mismatches += gpu->verify(changed[i], phy2log.data() + static_cast<size_t>(changed[i]) * slots);
            }
#endif
        }

        bool rewrite_now = step == o.rewrite_at || (o.rewrite_every > 0 && step > o.rewrite_at && (step - o.rewrite_at) % o.rewrite_every == 0);
        if (rewrite_now && is_script(policy)) {
            EB_CHECK(eb_get_stats(bridge, &stats));
            reloads_at_rewrite = stats.policy_reloads;
            write_policy(policy, static_cast<int>(++policy_rewrites), o.policy_source);
            if (!o.quiet) std::printf("step %ld: rewrote %s (generation %ld); the bridge reloads it by itself\n", step, policy.c_str(), policy_rewrites);
        } else if (rewrite_now) {
            EB_CHECK(eb_reload_policies(bridge));  // a built-in policy has no file to watch: reload it explicitly
            ++policy_rewrites;
        }

        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        imbalance_sum += step_imbalance;
        step_ms_sum += ms;
        if ((step + 1) % o.window == 0) {
            window_imbalance.push_back(imbalance_sum / o.window);
            window_step_ms.push_back(step_ms_sum / o.window);
            imbalance_sum = 0;
            step_ms_sum = 0;
            latency_last = latency_of(window_latency);
            if (window_imbalance.size() == 1) latency_first = latency_last;
            window_latency.clear();
            if (window_imbalance.size() == 2) rss_after_warmup = rss_kib();
        }

        if (o.steps >= 10 && (step + 1) % (o.steps / 10) == 0) rss_samples.push_back(rss_kib());

        auto now = std::chrono::steady_clock::now();
        if (now - last_print >= std::chrono::seconds(1) || step + 1 == o.steps) {
            last_print = now;
            EB_CHECK(eb_get_stats(bridge, &stats));
            observed_reloads = stats.policy_reloads;
            if (!o.quiet) {
                std::printf("step %6ld/%ld  balancedness %.3f  imbalance %.3f  rebalances %lld  moved %lld experts (%.1f MiB)  "
                            "epoch %lld  reloads %lld  mismatches %ld  %.2f ms/step\n",
                            step + 1, o.steps, stats.balancedness, step_imbalance, static_cast<long long>(stats.rebalances),
                            static_cast<long long>(stats.experts_moved), static_cast<double>(stats.bytes_moved) / (1024.0 * 1024.0),
                            static_cast<long long>(epoch), static_cast<long long>(stats.policy_reloads), mismatches, ms);
                std::fflush(stdout);
            }
        }
    }

    // Give a rewrite near the end up to 30 s to be compiled and picked up, so the summary can say whether it was.
    for (int i = 0; i < 300 && policy_rewrites > 0 && is_script(policy) && observed_reloads <= reloads_at_rewrite; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EB_CHECK(eb_get_stats(bridge, &stats));
        observed_reloads = stats.policy_reloads;
    }
    EB_CHECK(eb_get_stats(bridge, &stats));
    long rss_end = rss_kib();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    double first_window = window_imbalance.empty() ? 0 : window_imbalance.front();
    double last_window = window_imbalance.empty() ? 0 : window_imbalance.back();
    double first_step_ms = window_step_ms.empty() ? 0 : window_step_ms.front();
    double last_step_ms = window_step_ms.empty() ? 0 : window_step_ms.back();
    g_sink = sink;  // keeps the dot products from being optimised away
    EB_CHECK(eb_destroy(bridge));
#ifdef EB_WITH_CUDA
    gpu.reset();  // after the bridge: its relocation engine holds staging memory on the same devices
#endif

    std::printf("\nsummary: %ld steps in %.1f s; imbalance (max/mean device load) first window %.3f -> last window %.3f; "
                "%lld rebalances, %lld layers committed, %lld experts moved (%.1f MiB); policy rewritten %ld time(s), "
                "reloaded %lld time(s); %lld policy failure(s); checksum mismatches %ld; RSS %ld -> %ld KiB\n",
                o.steps, seconds, first_window, last_window, static_cast<long long>(stats.rebalances),
                static_cast<long long>(stats.layers_committed), static_cast<long long>(stats.experts_moved),
                static_cast<double>(stats.bytes_moved) / (1024.0 * 1024.0), policy_rewrites,
                static_cast<long long>(stats.policy_reloads), static_cast<long long>(stats.policy_failures), mismatches,
                rss_after_warmup, rss_end);
    std::printf("expert compute per step (%s; the first %ld steps are warm-up): first window mean %.3f ms (p50 %.3f, p99 %.3f) -> "
                "last window mean %.3f ms (p50 %.3f, p99 %.3f); %ld layer checksum passes\n",
                o.backend.c_str(), latency_warmup, latency_first.mean, latency_first.p50, latency_first.p99, latency_last.mean, latency_last.p50,
                latency_last.p99, layers_verified);

    if (const char* path = std::getenv("EXPERTBRIDGE_SUMMARY"); path != nullptr && path[0] != '\0') {
        std::ofstream f(path);
        f << "{\n"
          << "  \"steps\": " << o.steps << ",\n"
          << "  \"rebalances\": " << stats.rebalances << ",\n"
          << "  \"layersCommitted\": " << stats.layers_committed << ",\n"
          << "  \"expertsMoved\": " << stats.experts_moved << ",\n"
          << "  \"bytesMoved\": " << stats.bytes_moved << ",\n"
          << "  \"policyRewrites\": " << policy_rewrites << ",\n"
          << "  \"policyReloads\": " << stats.policy_reloads << ",\n"
          << "  \"policyFailures\": " << stats.policy_failures << ",\n"
          << "  \"checksumMismatches\": " << mismatches << ",\n"
          << "  \"mappingUpdates\": " << mapping_updates << ",\n"
          << "  \"imbalanceFirstWindow\": " << first_window << ",\n"
          << "  \"imbalanceLastWindow\": " << last_window << ",\n"
          << "  \"stepMsFirstWindow\": " << first_step_ms << ",\n"
          << "  \"stepMsLastWindow\": " << last_step_ms << ",\n"
          << "  \"backend\": \"" << o.backend << "\",\n"
          << "  \"devices\": " << o.devices << ",\n"
          << "  \"expertBytes\": " << (cuda ? static_cast<long long>(2 * o.inter + o.inter) * o.hidden * 2 : static_cast<long long>(o.tensors) * o.hidden * 4) << ",\n"
          << "  \"latencyMsFirstWindow\": " << json_of(latency_first) << ",\n"
          << "  \"latencyMsLastWindow\": " << json_of(latency_last) << ",\n"
          << "  \"latencyWarmupSteps\": " << latency_warmup << ",\n"
          << "  \"layerChecksumPasses\": " << layers_verified << ",\n"
          << "  \"stepsDropped\": " << stats.steps_dropped << ",\n"
          << "  \"rssKibAfterWarmup\": " << rss_after_warmup << ",\n"
          << "  \"rssKibEnd\": " << rss_end << ",\n"
          << "  \"rssKibEveryTenth\": [";
        for (size_t i = 0; i < rss_samples.size(); ++i) f << (i ? ", " : "") << rss_samples[i];
        f << "],\n"
          << "  \"seconds\": " << seconds << "\n"
          << "}\n";
    }
    return mismatches == 0 ? 0 : 1;
}
