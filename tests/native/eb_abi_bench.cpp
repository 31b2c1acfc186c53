// Times the serving-path calls of the C ABI from C++ (not a test): eb_record_step per layer and eb_step_boundary
// with nothing staged. Usage: eb_abi_bench [layers experts devices slots_per_device iterations]
// Default: DeepSeek-V3's shape (58 MoE layers, 256 experts) on 32 devices x 9 slots, 20000 iterations.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "expertbridge.h"

namespace {

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p)
{
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv)
{
    int layers = argc > 1 ? std::atoi(argv[1]) : 58;
    int experts = argc > 2 ? std::atoi(argv[2]) : 256;
    int devices = argc > 3 ? std::atoi(argv[3]) : 32;
    int per_device = argc > 4 ? std::atoi(argv[4]) : 9;
    int iterations = argc > 5 ? std::atoi(argv[5]) : 20000;
    int slots = devices * per_device;
    std::string config = "{\"model\":{\"layers\":" + std::to_string(layers) + ",\"experts\":" + std::to_string(experts)
        + "},\"topology\":{\"devices\":" + std::to_string(devices) + ",\"slotsPerDevice\":" + std::to_string(per_device)
        + "},\"backend\":\"none\",\"policy\":\"trivial\",\"rebalance\":{\"imbalanceTrigger\":0,\"windowSteps\":256},"
          "\"logging\":{\"level\":\"Warning\"}}";
    eb_bridge bridge = nullptr;
    if (eb_create(config.c_str(), &bridge) != EB_STATUS_OK) {
        std::fprintf(stderr, "eb_create: %s\n", eb_last_error());
        return 1;
    }

    std::vector<int32_t> tokens(static_cast<size_t>(layers) * static_cast<size_t>(slots));
    for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<int32_t>((i * 2654435761u) % 97);
    }
    using clock = std::chrono::steady_clock;
    std::vector<double> record_ns, boundary_ns;
    record_ns.reserve(static_cast<size_t>(iterations));
    boundary_ns.reserve(static_cast<size_t>(iterations));
    for (int warm = 0; warm < 2000; ++warm) {
        eb_record_step(bridge, EB_EPOCH_CURRENT, tokens.data(), tokens.size());
        eb_step_boundary(bridge, nullptr, 0, nullptr, nullptr);
    }
    for (int i = 0; i < iterations; ++i) {
        auto t0 = clock::now();
        eb_status a = eb_record_step(bridge, EB_EPOCH_CURRENT, tokens.data(), tokens.size());
        auto t1 = clock::now();
        uint32_t changed = 0;
        int64_t epoch = 0;
        eb_status b = eb_step_boundary(bridge, nullptr, 0, &changed, &epoch);
        auto t2 = clock::now();
        if (a != EB_STATUS_OK || b != EB_STATUS_OK) {
            std::fprintf(stderr, "call failed: %s\n", eb_last_error());
            return 1;
        }
        record_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
        boundary_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count());
    }
    eb_destroy(bridge);

    double rec = median(record_ns);
    std::printf("shape: %d layers x %d experts, %d devices x %d slots, %d iterations\n", layers, experts, devices, per_device, iterations);
    std::printf("eb_record_step: median %.0f ns per call, %.1f ns per layer (p99 %.0f ns per call); target < 1000 ns per layer: %s\n",
                rec, rec / layers, percentile(record_ns, 0.99), rec / layers < 1000 ? "met" : "NOT met");
    double bnd = median(boundary_ns);
    std::printf("eb_step_boundary (nothing staged): median %.0f ns (p99 %.0f ns); target < 5000 ns: %s\n",
                bnd, percentile(boundary_ns, 0.99), bnd < 5000 ? "met" : "NOT met");
    return 0;
}
