// The example's CUDA mode: expert weights in device memory on N GPUs and DeepSeek-V3-sized expert FFNs per slot.
// Plain C++ interface (no CUDA types), implemented in gpu_experts.cu; built only when CMake finds a CUDA compiler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

class GpuExperts {
public:
    // Slots are device-major: slot s lives on GPU s / slots_per_device. Each slot holds one expert's gate/up weights
    // [2*inter, hidden] and down weights [hidden, inter] (bf16), allocated on its GPU. max_tokens bounds the tokens one
    // slot serves in a step.
    GpuExperts(int devices, int slots_per_device, int layers, int hidden, int inter, int max_tokens);
    ~GpuExperts();
    GpuExperts(const GpuExperts&) = delete;
    GpuExperts& operator=(const GpuExperts&) = delete;

    static constexpr int kTensors = 2;
    size_t tensor_bytes(int tensor) const;
    void* tensor(int layer, int slot, int tensor) const;

    // Writes the weights of `expert` (a pattern unique to (layer, expert)) into the slot, and learns their checksums.
    void load(int layer, int slot, int expert);

    // One MoE step: for every layer, each GPU runs the FFN of each of its slots for the tokens routed there
    // (slot_tokens is [layers, slots]), one stream per GPU; returns when the slowest GPU is done. Milliseconds.
    double step(const int32_t* slot_tokens);

    // Checksums every slot of `layer` on its GPU and compares with the expert phy2log_row names; returns mismatches.
    long verify(int layer, const int32_t* phy2log_row);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};
