// Drives libexpertbridge.so through its C ABI: every kind of misuse returns a status and a message (never a crash),
// and a short serving loop works from several threads at once. Prints one line per check and a closing
// "N passed, N failed" line; exits 1 when any check failed.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "expertbridge.h"

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char* what, const std::string& detail = {})
{
    if (ok) {
        ++g_passed;
        std::printf("ok   %s\n", what);
    } else {
        ++g_failed;
        std::printf("FAIL %s %s\n", what, detail.c_str());
    }
}

// The call returned `expected` and left a message that mentions `needle`.
void expect(eb_status got, eb_status expected, const char* what, const char* needle = nullptr)
{
    std::string message = eb_last_error();
    bool ok = got == expected && (got == EB_STATUS_OK ? message.empty() : !message.empty());
    if (ok && needle != nullptr) {
        ok = message.find(needle) != std::string::npos;
    }
    check(ok, what, std::string("got ") + eb_status_name(got) + ", expected " + eb_status_name(expected) + ": '" + message + "'");
}

constexpr int kLayers = 2;
constexpr int kExperts = 8;
constexpr int kDevices = 4;
constexpr int kSlotsPerDevice = 3;
constexpr int kSlots = kDevices * kSlotsPerDevice;

const char* kConfig = R"({
  "model": { "layers": 2, "experts": 8 },
  "topology": { "devices": 4, "slotsPerDevice": 3 },
  "backend": "host",
  "policy": "trivial",
  "rebalance": { "cadenceSteps": 0, "imbalanceTrigger": 0, "windowSteps": 64, "checkEverySteps": 8, "warmupSteps": 0 },
  "logging": { "level": "Error" }
})";

}  // namespace

int main()
{
    check(EB_VERSION_GET_MAJOR(eb_version()) == EB_VERSION_MAJOR, "eb_version major matches the header");
    check(std::strcmp(eb_status_name(EB_STATUS_STALE_EPOCH), "EB_STATUS_STALE_EPOCH") == 0, "eb_status_name names a status");
    check(std::strcmp(eb_status_name(static_cast<eb_status>(12345)), "EB_STATUS_UNKNOWN") == 0, "eb_status_name of an unknown value");

    // Creation mistakes.
    eb_bridge bridge = reinterpret_cast<eb_bridge>(static_cast<uintptr_t>(0x1234));
    expect(eb_create(nullptr, &bridge), EB_STATUS_INVALID_ARGUMENT, "create with NULL config", "config_json");
    check(bridge == nullptr, "create failure sets *out_bridge to NULL");
    expect(eb_create(kConfig, nullptr), EB_STATUS_INVALID_ARGUMENT, "create with NULL out_bridge", "out_bridge");
    expect(eb_create("{ not json", &bridge), EB_STATUS_CONFIG_ERROR, "create with broken JSON", "valid JSON");
    expect(eb_create(R"({"model":{"layers":2,"experts":8},"topology":{"devices":4,"slotsPerDevice":3},"rebalance":{"cadenceSteps":-1}})", &bridge),
           EB_STATUS_CONFIG_ERROR, "create with a negative cadence names the key", "rebalance.cadenceSteps");
    expect(eb_create(R"({"model":{"layers":2,"experts":8},"topology":{"devices":2,"slotsPerDevice":3}})", &bridge),
           EB_STATUS_CONFIG_ERROR, "create with too few slots", "topology.slotsPerDevice");
    expect(eb_create_from_file("/nonexistent/bridge.json", &bridge), EB_STATUS_CONFIG_ERROR, "create from a missing file", "/nonexistent/bridge.json");

    expect(eb_create(kConfig, &bridge), EB_STATUS_OK, "create");
    check(bridge != nullptr, "create returns a handle");

    // Handles.
    eb_info info{};
    info.struct_size = sizeof info;
    expect(eb_get_info(nullptr, &info), EB_STATUS_INVALID_HANDLE, "get_info on NULL handle", "NULL");
    expect(eb_get_info(reinterpret_cast<eb_bridge>(static_cast<uintptr_t>(0xdeadbeef0001ull)), &info), EB_STATUS_INVALID_HANDLE,
           "get_info on a made-up handle");
    expect(eb_get_info(bridge, nullptr), EB_STATUS_INVALID_ARGUMENT, "get_info with NULL struct", "info");
    eb_info small{};
    small.struct_size = 4;
    expect(eb_get_info(bridge, &small), EB_STATUS_INVALID_ARGUMENT, "get_info with a short struct_size", "struct_size");
    expect(eb_get_info(bridge, &info), EB_STATUS_OK, "get_info");
    check(info.layers == kLayers && info.experts == kExperts && info.slots == kSlots && info.max_replicas == kSlots - kExperts + 1,
          "get_info reports the shape");

    // Tensors.
    std::vector<std::vector<float>> weights(kLayers * kSlots, std::vector<float>(16, 1.0f));
    eb_tensor_desc t{};
    t.struct_size = sizeof t;
    t.layer = 0;
    t.slot = 0;
    t.device = 0;
    t.data = weights[0].data();
    t.bytes = 16 * sizeof(float);
    expect(eb_register_tensor(bridge, nullptr), EB_STATUS_INVALID_ARGUMENT, "register NULL desc");
    eb_tensor_desc bad = t;
    bad.layer = kLayers;
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_OUT_OF_RANGE, "register layer out of range", "layer");
    bad = t;
    bad.slot = -1;
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_OUT_OF_RANGE, "register slot out of range", "slot");
    bad = t;
    bad.slot = 5;  // device 1
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_INVALID_ARGUMENT, "register on the wrong device", "device");
    bad = t;
    bad.data = nullptr;
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_INVALID_ARGUMENT, "register NULL data", "data");
    bad = t;
    bad.bytes = 0;
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_INVALID_ARGUMENT, "register zero bytes", "bytes");
    bad = t;
    bad.struct_size = 8;
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_INVALID_ARGUMENT, "register with a short struct_size", "struct_size");
    bool all = true;
    for (int l = 0; l < kLayers; ++l) {
        for (int s = 0; s < kSlots; ++s) {
            eb_tensor_desc d = t;
            d.layer = l;
            d.slot = s;
            d.device = s / kSlotsPerDevice;
            d.data = weights[l * kSlots + s].data();
            all = all && eb_register_tensor(bridge, &d) == EB_STATUS_OK;
        }
    }
    check(all, "register every tensor");
    bad = t;
    bad.bytes = 8;
    expect(eb_register_tensor(bridge, &bad), EB_STATUS_INVALID_ARGUMENT, "register a size that differs from the layer's", "same sizes");

    // Steps.
    std::vector<int32_t> tokens(kLayers * kSlots, 3);
    expect(eb_record_step(bridge, EB_EPOCH_CURRENT, nullptr, tokens.size()), EB_STATUS_INVALID_ARGUMENT, "record NULL counts", "slot_tokens");
    expect(eb_record_step(bridge, EB_EPOCH_CURRENT, tokens.data(), tokens.size() - 1), EB_STATUS_INVALID_ARGUMENT, "record the wrong count", "count");
    expect(eb_record_step(bridge, 7, tokens.data(), tokens.size()), EB_STATUS_STALE_EPOCH, "record with an unknown epoch", "epoch");
    tokens[3] = -1;
    expect(eb_record_step(bridge, EB_EPOCH_CURRENT, tokens.data(), tokens.size()), EB_STATUS_INVALID_ARGUMENT, "record a negative count", "slot 3");
    tokens[3] = 3;
    expect(eb_record_step(bridge, 0, tokens.data(), tokens.size()), EB_STATUS_OK, "record a step");

    uint32_t changed_count = 99;
    int64_t epoch = -5;
    expect(eb_step_boundary(bridge, nullptr, 4, &changed_count, &epoch), EB_STATUS_INVALID_ARGUMENT, "boundary with NULL layers and capacity", "changed_layers");
    expect(eb_step_boundary(bridge, nullptr, 0, &changed_count, &epoch), EB_STATUS_OK, "boundary with nothing staged");
    check(changed_count == 0 && epoch == 0, "boundary reports no change at epoch 0");

    // Mapping.
    std::vector<int32_t> phy2log(kLayers * kSlots), log2phy(kLayers * kExperts * info.max_replicas), counts(kLayers * kExperts);
    eb_mapping m{};
    m.struct_size = sizeof m;
    m.layer = -1;
    m.phy2log = phy2log.data();
    m.phy2log_capacity = phy2log.size();
    m.log2phy = log2phy.data();
    m.log2phy_capacity = log2phy.size();
    m.replica_counts = counts.data();
    m.replica_counts_capacity = counts.size();
    expect(eb_get_mapping(bridge, &m), EB_STATUS_OK, "get_mapping");
    check(phy2log[9] == 9 % kExperts && counts[1] == 2 && counts[7] == 1 && log2phy[1 * info.max_replicas + 1] == 9,
          "mapping starts trivial (slot i holds expert i mod E)");
    eb_mapping short_buffer = m;
    short_buffer.phy2log_capacity = 3;
    expect(eb_get_mapping(bridge, &short_buffer), EB_STATUS_BUFFER_TOO_SMALL, "get_mapping with a short buffer", "phy2log");
    eb_mapping bad_layer = m;
    bad_layer.layer = kLayers;
    expect(eb_get_mapping(bridge, &bad_layer), EB_STATUS_OUT_OF_RANGE, "get_mapping of a layer out of range", "layer");

    // Control.
    eb_rebalance_result result = EB_REBALANCE_PENDING;
    expect(eb_rebalance(bridge, 10000, &result), EB_STATUS_OK, "rebalance and wait");
    check(result == EB_REBALANCE_KEPT, "the trivial policy keeps the trivial placement");
    expect(eb_reload_policies(bridge), EB_STATUS_OK, "reload a built-in policy");
    eb_stats stats{};
    stats.struct_size = sizeof stats;
    expect(eb_get_stats(bridge, &stats), EB_STATUS_OK, "get_stats");
    check(stats.steps == 1 && stats.policy_reloads == 0 && stats.epoch == 0, "stats count the step; a built-in has nothing to reload");
    uint64_t length = 0;
    expect(eb_metrics_text(bridge, nullptr, 0, &length), EB_STATUS_BUFFER_TOO_SMALL, "metrics_text sizing call");
    std::vector<char> text(length + 1);
    expect(eb_metrics_text(bridge, text.data(), text.size(), &length), EB_STATUS_OK, "metrics_text");
    check(std::strstr(text.data(), "expertbridge_policy_reloads_total 0") != nullptr, "metrics text has the reload counter");

    // Several threads at once: recorders, boundary callers, mapping readers and rebalance requests.
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            std::vector<int32_t> local(kLayers * kSlots, i + 1);
            std::vector<int32_t> map(kLayers * kSlots);
            for (int n = 0; n < 2000; ++n) {
                eb_status st = EB_STATUS_OK;
                switch ((n + i) % 4) {
                case 0: st = eb_record_step(bridge, EB_EPOCH_CURRENT, local.data(), local.size()); break;
                case 1: st = eb_step_boundary(bridge, nullptr, 0, nullptr, nullptr); break;
                case 2: {
                    eb_mapping mm{};
                    mm.struct_size = sizeof mm;
                    mm.layer = n % kLayers;
                    mm.phy2log = map.data();
                    mm.phy2log_capacity = map.size();
                    st = eb_get_mapping(bridge, &mm);
                    break;
                }
                default: st = (n % 400 == 3) ? eb_rebalance(bridge, 0, nullptr) : eb_get_stats(bridge, &stats); break;
                }
                if (st != EB_STATUS_OK) {
                    failures.fetch_add(1);
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    check(failures.load() == 0, "concurrent calls from 4 threads all succeed", std::to_string(failures.load()) + " failed");

    // Destroy while other threads keep calling: they get INVALID_HANDLE, never a crash.
    std::atomic<bool> go{true};
    std::atomic<int> unexpected{0};
    std::vector<std::thread> racers;
    for (int i = 0; i < 3; ++i) {
        racers.emplace_back([&] {
            std::vector<int32_t> local(kLayers * kSlots, 1);
            while (go.load()) {
                eb_status st = eb_record_step(bridge, EB_EPOCH_CURRENT, local.data(), local.size());
                if (st != EB_STATUS_OK && st != EB_STATUS_INVALID_HANDLE) {
                    unexpected.fetch_add(1);
                }
                st = eb_step_boundary(bridge, nullptr, 0, nullptr, nullptr);
                if (st != EB_STATUS_OK && st != EB_STATUS_INVALID_HANDLE) {
                    unexpected.fetch_add(1);
                }
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    expect(eb_destroy(bridge), EB_STATUS_OK, "destroy while other threads call");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    go.store(false);
    for (auto& th : racers) {
        th.join();
    }
    check(unexpected.load() == 0, "racing calls get OK or INVALID_HANDLE only", std::to_string(unexpected.load()));

    // After destroy.
    expect(eb_destroy(bridge), EB_STATUS_INVALID_HANDLE, "destroy twice", "destroyed");
    expect(eb_record_step(bridge, EB_EPOCH_CURRENT, tokens.data(), tokens.size()), EB_STATUS_INVALID_HANDLE, "record after destroy", "destroyed");
    expect(eb_step_boundary(bridge, nullptr, 0, nullptr, nullptr), EB_STATUS_INVALID_HANDLE, "boundary after destroy");
    expect(eb_get_mapping(bridge, &m), EB_STATUS_INVALID_HANDLE, "get_mapping after destroy");
    expect(eb_reload_policies(bridge), EB_STATUS_INVALID_HANDLE, "reload after destroy");

    // A new bridge reuses the slot: the old handle stays stale.
    eb_bridge second = nullptr;
    expect(eb_create(kConfig, &second), EB_STATUS_OK, "create a second bridge");
    check(second != bridge, "the new handle differs from the destroyed one");
    expect(eb_get_info(bridge, &info), EB_STATUS_INVALID_HANDLE, "the old handle stays stale after its slot is reused", "destroyed");
    expect(eb_get_info(second, &info), EB_STATUS_OK, "the new handle works");
    expect(eb_destroy(second), EB_STATUS_OK, "destroy the second bridge");

    // A policy script compiled and loaded inside the hosted component (its own load context under hostfxr).
    char dir_template[] = "/tmp/eb-abi-XXXXXX";
    if (const char* dir = mkdtemp(dir_template)) {
        std::string script = std::string(dir) + "/policy.csx";
        if (FILE* f = std::fopen(script.c_str(), "w")) {
            std::fputs("// @option window = 10\nreturn new TrivialPolicy();\n", f);
            std::fclose(f);
        }
        std::string config = std::string(R"({"model":{"layers":2,"experts":8},"topology":{"devices":4,"slotsPerDevice":3},)")
            + R"("logging":{"level":"Error"},"policy":")" + script + "\"}";
        eb_bridge scripted = nullptr;
        expect(eb_create(config.c_str(), &scripted), EB_STATUS_OK, "create with a .csx policy (compiled inside the hosted component)");
        eb_rebalance_result r = EB_REBALANCE_PENDING;
        expect(eb_rebalance(scripted, 30000, &r), EB_STATUS_OK, "rebalance with the script");
        check(r == EB_REBALANCE_KEPT, "the scripted trivial policy keeps the trivial placement");
        if (FILE* f = std::fopen(script.c_str(), "w")) {
            std::fputs("return new TrivialPolicy(;\n", f);
            std::fclose(f);
        }
        expect(eb_reload_policies(scripted), EB_STATUS_POLICY_ERROR, "reloading a script that does not compile", "policy.csx:1:");
        expect(eb_rebalance(scripted, 30000, &r), EB_STATUS_OK, "the previous version keeps serving");
        check(r == EB_REBALANCE_KEPT, "the previous version still decides");
        expect(eb_destroy(scripted), EB_STATUS_OK, "destroy the scripted bridge");
        std::remove(script.c_str());
        rmdir(dir);
    } else {
        check(false, "mkdtemp");
    }

    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
