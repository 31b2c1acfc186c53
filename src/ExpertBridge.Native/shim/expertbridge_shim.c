/*
 * libexpertbridge.so: exports the eb_ functions of expertbridge.h and forwards each to an [UnmanagedCallersOnly]
 * method of ExpertBridge.Native.dll, hosted through nethost/hostfxr on the first call.
 *
 * One runtime per process: the first eb_ call boots it (pthread_once); if the process already runs .NET, hostfxr
 * attaches to it (a positive init code is success). Boot failures are remembered and reported by every later call
 * as EB_STATUS_RUNTIME_UNAVAILABLE with the same message.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <coreclr_delegates.h>
#include <hostfxr.h>
#include <nethost.h>

#include "expertbridge.h"

/* Bumped with ExpertBridge.Native.Exports.AbiVersion when a managed signature changes. */
#define EB_ABI_VERSION 1
#define EB_ERROR_CAPACITY 2048
#define EB_MANAGED_TYPE "ExpertBridge.Native.Exports, ExpertBridge.Native"

static _Thread_local char tls_error[EB_ERROR_CAPACITY];

/* Called by managed code (through a function pointer handed over at boot) with a UTF-8 message. */
static void managed_set_error(const uint8_t* utf8, int32_t length)
{
    if (utf8 == NULL || length <= 0) {
        tls_error[0] = '\0';
        return;
    }
    size_t n = (size_t)length < sizeof tls_error - 1 ? (size_t)length : sizeof tls_error - 1;
    memcpy(tls_error, utf8, n);
    tls_error[n] = '\0';
}

typedef int32_t (*fn_initialize)(void (*set_error)(const uint8_t*, int32_t), int32_t abi_version);
typedef int32_t (*fn_create)(const char* text, eb_bridge* out_bridge);
typedef int32_t (*fn_destroy)(eb_bridge bridge);
typedef int32_t (*fn_get_info)(eb_bridge bridge, eb_info* info);
typedef int32_t (*fn_register_tensor)(eb_bridge bridge, const eb_tensor_desc* tensor);
typedef int32_t (*fn_record_step)(eb_bridge bridge, int64_t epoch, const int32_t* slot_tokens, uint64_t count);
typedef int32_t (*fn_step_boundary)(eb_bridge bridge, int32_t* changed, uint32_t capacity, uint32_t* count, int64_t* epoch);
typedef int32_t (*fn_get_mapping)(eb_bridge bridge, eb_mapping* mapping);
typedef int32_t (*fn_rebalance)(eb_bridge bridge, uint32_t timeout_ms, eb_rebalance_result* result);
typedef int32_t (*fn_reload_policies)(eb_bridge bridge);
typedef int32_t (*fn_get_stats)(eb_bridge bridge, eb_stats* stats);
typedef int32_t (*fn_metrics_text)(eb_bridge bridge, char* buffer, uint64_t capacity, uint64_t* length);

static struct {
    fn_create create;
    fn_create create_from_file;
    fn_destroy destroy;
    fn_get_info get_info;
    fn_register_tensor register_tensor;
    fn_record_step record_step;
    fn_step_boundary step_boundary;
    fn_get_mapping get_mapping;
    fn_rebalance rebalance;
    fn_reload_policies reload_policies;
    fn_get_stats get_stats;
    fn_metrics_text metrics_text;
} g_managed;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ready;
static char g_boot_error[EB_ERROR_CAPACITY];
static char g_hostfxr_message[1024];

static void boot_fail(const char* format, ...) __attribute__((format(printf, 1, 2)));
static void boot_fail(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    int n = vsnprintf(g_boot_error, sizeof g_boot_error, format, args);
    va_end(args);
    if (g_hostfxr_message[0] != '\0' && n > 0 && (size_t)n < sizeof g_boot_error) {
        snprintf(g_boot_error + n, sizeof g_boot_error - (size_t)n, " (hostfxr: %s)", g_hostfxr_message);
    }
}

static void HOSTFXR_CALLTYPE capture_hostfxr_error(const char_t* message)
{
    if (g_hostfxr_message[0] == '\0' && message != NULL) {
        snprintf(g_hostfxr_message, sizeof g_hostfxr_message, "%s", message);
        /* hostfxr messages may span lines; keep eb_last_error on one line. */
        for (char* p = g_hostfxr_message; *p; ++p) {
            if (*p == '\n' || *p == '\r') {
                *p = ' ';
            }
        }
    }
}

/* The folder holding ExpertBridge.Native.dll: $EXPERTBRIDGE_MANAGED_DIR, else managed/ beside this library. */
static int managed_dir(char* out, size_t capacity)
{
    const char* env = getenv("EXPERTBRIDGE_MANAGED_DIR");
    if (env != NULL && env[0] != '\0') {
        return snprintf(out, capacity, "%s", env) < (int)capacity;
    }
    Dl_info info;
    if (dladdr((void*)&managed_dir, &info) == 0 || info.dli_fname == NULL) {
        return 0;
    }
    char self[PATH_MAX];
    if (realpath(info.dli_fname, self) == NULL) {
        snprintf(self, sizeof self, "%s", info.dli_fname);
    }
    char* slash = strrchr(self, '/');
    if (slash != NULL) {
        *slash = '\0';
    } else {
        snprintf(self, sizeof self, ".");
    }
    return snprintf(out, capacity, "%s/managed", self) < (int)capacity;
}

static int bind(load_assembly_and_get_function_pointer_fn load, const char* assembly, const char* method, void** out)
{
    int rc = load(assembly, EB_MANAGED_TYPE, method, UNMANAGEDCALLERSONLY_METHOD, NULL, out);
    if (rc != 0 || *out == NULL) {
        boot_fail("cannot bind %s.%s in %s (0x%08x); the shim and the managed component come from different builds",
                  EB_MANAGED_TYPE, method, assembly, (unsigned)rc);
        return 0;
    }
    return 1;
}

static void boot(void)
{
    char dir[PATH_MAX];
    char assembly[PATH_MAX + 64];
    char config[PATH_MAX + 64];
    if (!managed_dir(dir, sizeof dir)) {
        boot_fail("cannot find the folder of libexpertbridge.so; set EXPERTBRIDGE_MANAGED_DIR to the folder holding ExpertBridge.Native.dll");
        return;
    }
    snprintf(assembly, sizeof assembly, "%s/ExpertBridge.Native.dll", dir);
    snprintf(config, sizeof config, "%s/ExpertBridge.Native.runtimeconfig.json", dir);
    if (access(assembly, R_OK) != 0 || access(config, R_OK) != 0) {
        boot_fail("the managed component is missing: %s and %s must exist (set EXPERTBRIDGE_MANAGED_DIR, or build the shim with EB_BUILD_MANAGED=ON)",
                  assembly, config);
        return;
    }

    char hostfxr_path[PATH_MAX];
    size_t size = sizeof hostfxr_path / sizeof hostfxr_path[0];
    struct get_hostfxr_parameters params = { sizeof params, assembly, NULL };
    int rc = get_hostfxr_path(hostfxr_path, &size, &params);
    if (rc != 0) {
        boot_fail("no .NET host found (get_hostfxr_path 0x%08x): install the .NET 10 runtime or set DOTNET_ROOT", (unsigned)rc);
        return;
    }
    void* lib = dlopen(hostfxr_path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        boot_fail("cannot load %s: %s", hostfxr_path, dlerror());
        return;
    }
    hostfxr_initialize_for_runtime_config_fn init =
        (hostfxr_initialize_for_runtime_config_fn)dlsym(lib, "hostfxr_initialize_for_runtime_config");
    hostfxr_get_runtime_delegate_fn get_delegate =
        (hostfxr_get_runtime_delegate_fn)dlsym(lib, "hostfxr_get_runtime_delegate");
    hostfxr_close_fn close_context = (hostfxr_close_fn)dlsym(lib, "hostfxr_close");
    hostfxr_set_error_writer_fn set_writer = (hostfxr_set_error_writer_fn)dlsym(lib, "hostfxr_set_error_writer");
    if (init == NULL || get_delegate == NULL || close_context == NULL) {
        boot_fail("%s lacks the hosting exports (hostfxr_initialize_for_runtime_config...): the .NET install is too old", hostfxr_path);
        return;
    }

    hostfxr_error_writer_fn previous = set_writer != NULL ? set_writer(capture_hostfxr_error) : NULL;
    hostfxr_handle context = NULL;
    rc = init(config, NULL, &context);
    /* Any non-negative code is success: 1 and 2 mean the runtime was already running in this process. */
    if (rc < 0 || context == NULL) {
        if (context != NULL) {
            close_context(context);
        }
        if (set_writer != NULL) {
            set_writer(previous);
        }
        boot_fail("cannot start the .NET runtime for %s (0x%08x)", config, (unsigned)rc);
        return;
    }
    load_assembly_and_get_function_pointer_fn load = NULL;
    rc = get_delegate(context, hdt_load_assembly_and_get_function_pointer, (void**)&load);
    close_context(context);
    if (set_writer != NULL) {
        set_writer(previous);
    }
    if (rc != 0 || load == NULL) {
        boot_fail("cannot get the assembly loader from hostfxr (0x%08x)", (unsigned)rc);
        return;
    }

    fn_initialize initialize = NULL;
    if (!bind(load, assembly, "Initialize", (void**)&initialize)
        || !bind(load, assembly, "Create", (void**)&g_managed.create)
        || !bind(load, assembly, "CreateFromFile", (void**)&g_managed.create_from_file)
        || !bind(load, assembly, "Destroy", (void**)&g_managed.destroy)
        || !bind(load, assembly, "GetInfo", (void**)&g_managed.get_info)
        || !bind(load, assembly, "RegisterTensor", (void**)&g_managed.register_tensor)
        || !bind(load, assembly, "RecordStep", (void**)&g_managed.record_step)
        || !bind(load, assembly, "StepBoundary", (void**)&g_managed.step_boundary)
        || !bind(load, assembly, "GetMapping", (void**)&g_managed.get_mapping)
        || !bind(load, assembly, "Rebalance", (void**)&g_managed.rebalance)
        || !bind(load, assembly, "ReloadPolicies", (void**)&g_managed.reload_policies)
        || !bind(load, assembly, "GetStats", (void**)&g_managed.get_stats)
        || !bind(load, assembly, "MetricsText", (void**)&g_managed.metrics_text)) {
        return;
    }
    if (initialize(managed_set_error, EB_ABI_VERSION) != EB_STATUS_OK) {
        boot_fail("%s", tls_error);
        return;
    }
    g_ready = 1;
}

/* Clears this thread's error and makes sure the runtime is up; on failure the boot error becomes this call's. */
static int enter(void)
{
    tls_error[0] = '\0';
    pthread_once(&g_once, boot);
    if (!g_ready) {
        snprintf(tls_error, sizeof tls_error, "%s", g_boot_error);
        return 0;
    }
    return 1;
}

#define EB_FORWARD(call)                             \
    do {                                             \
        if (!enter()) {                              \
            return EB_STATUS_RUNTIME_UNAVAILABLE;    \
        }                                            \
        return (eb_status)(call);                    \
    } while (0)

EB_API uint32_t eb_version(void)
{
    return EB_VERSION;
}

EB_API const char* eb_status_name(eb_status status)
{
    switch (status) {
    case EB_STATUS_OK: return "EB_STATUS_OK";
    case EB_STATUS_INVALID_ARGUMENT: return "EB_STATUS_INVALID_ARGUMENT";
    case EB_STATUS_INVALID_HANDLE: return "EB_STATUS_INVALID_HANDLE";
    case EB_STATUS_OUT_OF_RANGE: return "EB_STATUS_OUT_OF_RANGE";
    case EB_STATUS_BUFFER_TOO_SMALL: return "EB_STATUS_BUFFER_TOO_SMALL";
    case EB_STATUS_STALE_EPOCH: return "EB_STATUS_STALE_EPOCH";
    case EB_STATUS_CONFIG_ERROR: return "EB_STATUS_CONFIG_ERROR";
    case EB_STATUS_POLICY_ERROR: return "EB_STATUS_POLICY_ERROR";
    case EB_STATUS_RELOCATION_ERROR: return "EB_STATUS_RELOCATION_ERROR";
    case EB_STATUS_RUNTIME_UNAVAILABLE: return "EB_STATUS_RUNTIME_UNAVAILABLE";
    case EB_STATUS_INTERNAL_ERROR: return "EB_STATUS_INTERNAL_ERROR";
    default: return "EB_STATUS_UNKNOWN";
    }
}

EB_API const char* eb_last_error(void)
{
    return tls_error;
}

EB_API eb_status eb_create(const char* config_json, eb_bridge* out_bridge)
{
    if (out_bridge != NULL) {
        *out_bridge = NULL;
    }
    EB_FORWARD(g_managed.create(config_json, out_bridge));
}

EB_API eb_status eb_create_from_file(const char* config_path, eb_bridge* out_bridge)
{
    if (out_bridge != NULL) {
        *out_bridge = NULL;
    }
    EB_FORWARD(g_managed.create_from_file(config_path, out_bridge));
}

EB_API eb_status eb_destroy(eb_bridge bridge)
{
    EB_FORWARD(g_managed.destroy(bridge));
}

EB_API eb_status eb_get_info(eb_bridge bridge, eb_info* info)
{
    EB_FORWARD(g_managed.get_info(bridge, info));
}

EB_API eb_status eb_register_tensor(eb_bridge bridge, const eb_tensor_desc* tensor)
{
    EB_FORWARD(g_managed.register_tensor(bridge, tensor));
}

EB_API eb_status eb_record_step(eb_bridge bridge, int64_t epoch, const int32_t* slot_tokens, uint64_t count)
{
    EB_FORWARD(g_managed.record_step(bridge, epoch, slot_tokens, count));
}

EB_API eb_status eb_step_boundary(eb_bridge bridge, int32_t* changed_layers, uint32_t capacity,
                                  uint32_t* changed_count, int64_t* epoch)
{
    EB_FORWARD(g_managed.step_boundary(bridge, changed_layers, capacity, changed_count, epoch));
}

EB_API eb_status eb_get_mapping(eb_bridge bridge, eb_mapping* mapping)
{
    EB_FORWARD(g_managed.get_mapping(bridge, mapping));
}

EB_API eb_status eb_rebalance(eb_bridge bridge, uint32_t timeout_ms, eb_rebalance_result* result)
{
    EB_FORWARD(g_managed.rebalance(bridge, timeout_ms, result));
}

EB_API eb_status eb_reload_policies(eb_bridge bridge)
{
    EB_FORWARD(g_managed.reload_policies(bridge));
}

EB_API eb_status eb_get_stats(eb_bridge bridge, eb_stats* stats)
{
    EB_FORWARD(g_managed.get_stats(bridge, stats));
}

EB_API eb_status eb_metrics_text(eb_bridge bridge, char* buffer, uint64_t capacity, uint64_t* length)
{
    EB_FORWARD(g_managed.metrics_text(bridge, buffer, capacity, length));
}
