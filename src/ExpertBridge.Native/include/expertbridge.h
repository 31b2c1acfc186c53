/*
 * expertbridge.h - the C ABI of ExpertBridge, for inference servers that embed the bridge in-process.
 *
 * Compiles as C11 and C++17. Link libexpertbridge.so; it hosts the .NET runtime through hostfxr on the first call
 * (framework-dependent: a .NET 10 runtime must be installed) and finds the managed component in the folder named by
 * the environment variable EXPERTBRIDGE_MANAGED_DIR, else in "managed/" beside libexpertbridge.so.
 *
 * Conventions
 *  - Every function that can fail returns an eb_status; EB_STATUS_OK is 0. On failure, eb_last_error() tells why in
 *    one line naming the argument and the rule. No function aborts the process on misuse: null or destroyed handles,
 *    wrong sizes, out-of-range layers or slots, calls after eb_destroy and calls from several threads at once all
 *    return a status.
 *  - Handles are opaque. A destroyed handle is detected (EB_STATUS_INVALID_HANDLE), even when its memory is reused.
 *  - Structs that may grow begin with struct_size: set it to sizeof(the struct) before the call. The library reads
 *    and writes only the first struct_size bytes, so a program built against an older header keeps working.
 *  - Integers are fixed-width; strings are UTF-8 and NUL-terminated; counts are element counts, not bytes.
 *  - Layers, physical slots and logical experts are numbered from 0. Physical slots are device-major:
 *    slot = device * slots_per_device + local_slot.
 *
 * Threads: every function may be called from any thread. The serving thread calls eb_record_step and
 * eb_step_boundary between steps; the bridge decides and copies weights on a thread of its own, and only
 * eb_step_boundary writes into registered expert memory.
 */
#ifndef EXPERTBRIDGE_H
#define EXPERTBRIDGE_H

#include <stdint.h>

#if defined(_WIN32)
#  if defined(EB_BUILDING_LIBRARY)
#    define EB_API __declspec(dllexport)
#  else
#    define EB_API __declspec(dllimport)
#  endif
#else
#  define EB_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---------------------------------------------------------------------------------------------- */

#define EB_VERSION_MAJOR 0
#define EB_VERSION_MINOR 1
#define EB_VERSION_PATCH 0
/* Packs a version as eb_version() returns it. */
#define EB_MAKE_VERSION(major, minor, patch) \
    ((((uint32_t)(major)) << 22) | (((uint32_t)(minor)) << 12) | ((uint32_t)(patch)))
#define EB_VERSION EB_MAKE_VERSION(EB_VERSION_MAJOR, EB_VERSION_MINOR, EB_VERSION_PATCH)
#define EB_VERSION_GET_MAJOR(v) (((uint32_t)(v)) >> 22)
#define EB_VERSION_GET_MINOR(v) ((((uint32_t)(v)) >> 12) & 0x3FFu)
#define EB_VERSION_GET_PATCH(v) (((uint32_t)(v)) & 0xFFFu)

/* The library's version (EB_MAKE_VERSION). A program built with this header works with any library of the same
 * major version and a minor version at least EB_VERSION_MINOR. Needs no runtime; never fails. */
EB_API uint32_t eb_version(void);

/* ---- status and errors -------------------------------------------------------------------------------------- */

typedef enum eb_status {
    EB_STATUS_OK = 0,
    EB_STATUS_INVALID_ARGUMENT = 1,    /* a null pointer, a bad struct_size, a count that does not match the model */
    EB_STATUS_INVALID_HANDLE = 2,      /* null, unknown or destroyed bridge handle */
    EB_STATUS_OUT_OF_RANGE = 3,        /* a layer, slot, device or tensor index outside the model */
    EB_STATUS_BUFFER_TOO_SMALL = 4,    /* an output buffer cannot hold the result; nothing was written */
    EB_STATUS_STALE_EPOCH = 5,         /* eb_record_step named a mapping epoch older than the one before the current */
    EB_STATUS_CONFIG_ERROR = 6,        /* eb_create: the JSON config breaks a rule (the message names the key) */
    EB_STATUS_POLICY_ERROR = 7,        /* eb_reload_policies: the policy did not load; the previous one keeps running */
    EB_STATUS_RELOCATION_ERROR = 8,    /* copying expert weights failed */
    EB_STATUS_RUNTIME_UNAVAILABLE = 9, /* the .NET runtime or the managed component could not be loaded */
    EB_STATUS_INTERNAL_ERROR = 10,     /* a bug: please report the message */
    EB_STATUS_FORCE_32BIT = 0x7FFFFFFF
} eb_status;

/* The name of a status ("EB_STATUS_OK"), or "EB_STATUS_UNKNOWN". Static storage; never NULL. */
EB_API const char* eb_status_name(eb_status status);

/* Why the most recent eb_ call on this thread failed, or "" when it succeeded. Never NULL.
 * Ownership: the string belongs to the library and lives in thread-local storage; it stays valid until the next
 * eb_ call on the same thread. Copy it if you need it longer; never free it. */
EB_API const char* eb_last_error(void);

/* ---- lifetime ------------------------------------------------------------------------------------------------ */

typedef struct eb_bridge_s* eb_bridge; /* opaque; never dereference */

/* Creates a bridge from JSON config text (keys in docs/host.md). On success *out_bridge is the new handle; on
 * failure it is set to NULL. Relative paths in the config resolve against the current directory. */
EB_API eb_status eb_create(const char* config_json, eb_bridge* out_bridge);

/* Same, reading the JSON from a file; relative paths inside resolve against the file's folder. */
EB_API eb_status eb_create_from_file(const char* config_path, eb_bridge* out_bridge);

/* Stops the bridge's thread, frees its staging memory and invalidates the handle. Destroying a handle twice
 * returns EB_STATUS_INVALID_HANDLE. Registered expert memory belongs to the caller and is not touched. */
EB_API eb_status eb_destroy(eb_bridge bridge);

/* ---- shape --------------------------------------------------------------------------------------------------- */

typedef struct eb_info {
    uint32_t struct_size;       /* in: sizeof(eb_info) */
    int32_t layers;             /* model layers with experts */
    int32_t experts;            /* logical experts per layer */
    int32_t devices;            /* devices (EP ranks) */
    int32_t slots_per_device;   /* expert slots on each device */
    int32_t slots;              /* physical slots per layer = devices * slots_per_device */
    int32_t max_replicas;       /* width of a log2phy row = slots - experts + 1 */
    int32_t reserved;
} eb_info;

EB_API eb_status eb_get_info(eb_bridge bridge, eb_info* info);

/* ---- expert weights ------------------------------------------------------------------------------------------ */

typedef struct eb_tensor_desc {
    uint32_t struct_size;  /* in: sizeof(eb_tensor_desc) */
    int32_t layer;         /* [0, layers) */
    int32_t slot;          /* physical slot, [0, slots) */
    int32_t tensor_index;  /* which tensor of the expert: 0, 1, ... (e.g. w1, w2, w3), [0, 64) */
    int32_t device;        /* device ordinal holding the memory; must be slot / slots_per_device */
    int32_t reserved;      /* 0 */
    void* data;            /* address of the first byte (host memory for backend "host", device memory for "cuda") */
    uint64_t bytes;        /* size; equal for one tensor_index across the slots of a layer */
} eb_tensor_desc;

/* Tells the bridge where one tensor of one expert slot lives, so it can move weights. Register every tensor of
 * every slot before the first rebalance (backend "none" needs none). Registering the same (layer, slot, tensor)
 * again replaces the address. The memory stays the caller's; keep it alive until eb_destroy. */
EB_API eb_status eb_register_tensor(eb_bridge bridge, const eb_tensor_desc* tensor);

/* ---- the serving loop ---------------------------------------------------------------------------------------- */

/* Pass as the epoch of eb_record_step when the counts were routed with the mapping in force. */
#define EB_EPOCH_CURRENT (-1)

/* Records one step's loads: slot_tokens[layer * slots + slot] = tokens that physical slot served in this step;
 * count must be layers * slots. epoch is the mapping epoch the step was routed with (from eb_step_boundary or
 * eb_get_mapping), or EB_EPOCH_CURRENT; the bridge maps the counts to logical experts through that mapping. */
EB_API eb_status eb_record_step(eb_bridge bridge, int64_t epoch, const int32_t* slot_tokens, uint64_t count);

/* Call between steps on the serving thread. Commits the layers whose new weights are staged: copies them into
 * their slots and puts their new mapping in force. changed_layers (capacity entries; may be NULL with capacity 0)
 * receives the committed layers, *changed_count how many (at most capacity when changed_layers is not NULL), and
 * *epoch the epoch now in force (both outputs may be NULL). When a layer changed, re-read the mapping with
 * eb_get_mapping before routing the next step. With nothing staged this returns at once. */
EB_API eb_status eb_step_boundary(eb_bridge bridge, int32_t* changed_layers, uint32_t capacity,
                                  uint32_t* changed_count, int64_t* epoch);

typedef struct eb_mapping {
    uint32_t struct_size;             /* in: sizeof(eb_mapping) */
    int32_t layer;                    /* in: one layer, or -1 for all layers (buffers then hold every layer) */
    int32_t* phy2log;                 /* out, may be NULL: [layers][slots], logical expert per slot, -1 empty */
    uint64_t phy2log_capacity;        /* in: elements phy2log holds */
    int32_t* log2phy;                 /* out, may be NULL: [layers][experts][max_replicas], slots per expert, -1 pad */
    uint64_t log2phy_capacity;        /* in: elements log2phy holds */
    int32_t* replica_counts;          /* out, may be NULL: [layers][experts] */
    uint64_t replica_counts_capacity; /* in: elements replica_counts holds */
    int64_t epoch;                    /* out: the epoch of this mapping */
    int32_t max_replicas;             /* out: row width of log2phy (constant for a bridge) */
    int32_t reserved;
} eb_mapping;

/* Copies the mapping in force for the router. A buffer that is too small fails the call with
 * EB_STATUS_BUFFER_TOO_SMALL before anything is written. All buffers come from one consistent epoch. */
EB_API eb_status eb_get_mapping(eb_bridge bridge, eb_mapping* mapping);

/* ---- control ------------------------------------------------------------------------------------------------- */

typedef enum eb_rebalance_result {
    EB_REBALANCE_STAGED = 0,  /* a new placement is staged; its layers commit at the next step boundaries */
    EB_REBALANCE_KEPT = 1,    /* the policy kept the placement in force */
    EB_REBALANCE_FAILED = 2,  /* the policy or the copy failed; the mapping is unchanged (see the logs/metrics) */
    EB_REBALANCE_PENDING = 3, /* still running when the wait ended (or timeout_ms was 0) */
    EB_REBALANCE_FORCE_32BIT = 0x7FFFFFFF
} eb_rebalance_result;

/* Asks for a rebalance now, whatever the cadence and trigger say. Waits at most timeout_ms for the decision and
 * the staging copies (0: return at once with EB_REBALANCE_PENDING). result may be NULL. A rebalance already in
 * flight finishes first: its layers must be committed by eb_step_boundary before a new one starts. */
EB_API eb_status eb_rebalance(eb_bridge bridge, uint32_t timeout_ms, eb_rebalance_result* result);

/* Reloads the policy script now (a script is also reloaded by itself when its file changes; a built-in policy has
 * nothing to reload and returns EB_STATUS_OK). On failure returns EB_STATUS_POLICY_ERROR with the compiler's
 * message ("policy.csx:3:17: ..."), and the previous version keeps running. */
EB_API eb_status eb_reload_policies(eb_bridge bridge);

typedef struct eb_stats {
    uint32_t struct_size;          /* in: sizeof(eb_stats) */
    int32_t pending_layers;        /* layers decided and not yet committed */
    int64_t steps;                 /* steps recorded */
    int64_t epoch;                 /* mapping epoch in force */
    int64_t rebalances;            /* rebalances that staged a new placement */
    int64_t layers_committed;
    int64_t experts_moved;         /* slots that received another expert */
    int64_t bytes_moved;
    int64_t policy_reloads;
    int64_t policy_failures;       /* errors, timeouts, invalid placements */
    int64_t relocation_failures;
    int64_t steps_dropped;         /* recorded steps the bridge could not fold in time (steps faster than it reads) */
    double balancedness;           /* mean over layers of mean/max device load in the window (1 = perfect) */
    double imbalance;              /* mean over layers of max/mean device load in the window (1 = perfect) */
    double last_policy_ms;         /* duration of the last policy call */
} eb_stats;

EB_API eb_status eb_get_stats(eb_bridge bridge, eb_stats* stats);

/* Writes the bridge's metrics in the Prometheus text format (for servers that expose their own endpoint), NUL
 * terminated. *length receives the text's length without the NUL; when capacity is too small the call returns
 * EB_STATUS_BUFFER_TOO_SMALL with *length set, so the caller can retry with length + 1 bytes. */
EB_API eb_status eb_metrics_text(eb_bridge bridge, char* buffer, uint64_t capacity, uint64_t* length);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EXPERTBRIDGE_H */
