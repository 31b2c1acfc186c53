/*
 * libeb_acl_emulator.so: an EMULATOR of the AscendCL runtime subset that ExpertBridge binds, on host memory.
 * NOT the CANN runtime and not affiliated with Huawei. Load it in place of libascendcl.so by pointing
 * EXPERTBRIDGE_ACL_LIBRARY at it. Error codes are AscendCL's; aclGetRecentErrMsg returns the calling thread's last
 * failure text. Emulated rules worth knowing: aclInit once per process; aclrtSetDevice creates the device's default
 * context and binds it to the thread; one aclrtResetDevice resets the device (its memory and streams go);
 * aclrtMalloc rounds sizes up to 32 bytes plus 32 bytes of padding; copies between two devices need
 * aclrtDeviceEnablePeerAccess from the device of the current context first. IPC keys are accepted in the exporting
 * process too (tests). Device pointers are host addresses.
 */
#include "emu_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int aclError;
typedef emu_ctx *aclrtContext;
typedef emu_stream *aclrtStream;
typedef emu_event *aclrtEvent;

enum {
    ACL_SUCCESS = 0,
    ACL_ERROR_INVALID_PARAM = 100000,
    ACL_ERROR_UNINITIALIZE = 100001,
    ACL_ERROR_REPEAT_INITIALIZE = 100002,
    ACL_ERROR_REPEAT_FINALIZE = 100037,
    ACL_ERROR_RT_PARAM_INVALID = 107000,
    ACL_ERROR_RT_INVALID_DEVICEID = 107001,
    ACL_ERROR_RT_CONTEXT_NULL = 107002,
    ACL_ERROR_RT_INVALID_HANDLE = 107017,
    ACL_ERROR_RT_FEATURE_NOT_SUPPORT = 207000,
    ACL_ERROR_RT_MEMORY_ALLOCATION = 207001,
    ACL_ERROR_RT_NO_DEVICE = 207004,
    ACL_ERROR_RT_INTERNAL_ERROR = 507000,
    ACL_ERROR_RT_EVENT_NOT_COMPLETE = 507006,
    ACL_ERROR_RT_DEVICE_MEM_ERROR = 507053
};

enum { KIND_H2H = 0, KIND_H2D = 1, KIND_D2H = 2, KIND_D2D = 3, KIND_DEFAULT = 4 };

static int g_acl_initialized;
static aclrtContext g_default_ctx[EMU_MAX_DEVICES];
static __thread aclrtContext t_current;
static __thread char t_errmsg[512];
static __thread int t_has_errmsg;

/* Records the thread's recent error text (aclGetRecentErrMsg) and returns the code. */
__attribute__((format(printf, 2, 3))) static aclError fail(aclError code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(t_errmsg, sizeof t_errmsg, "EE%06d: ", code % 1000000);
    if (n > 0 && (size_t)n < sizeof t_errmsg) {
        vsnprintf(t_errmsg + n, sizeof t_errmsg - (size_t)n, fmt, ap);
    }
    va_end(ap);
    t_has_errmsg = 1;
    return code;
}

static aclError map_status(emu_status st, const char *what)
{
    switch (st) {
    case EMU_OK: return ACL_SUCCESS;
    case EMU_E_INVALID_VALUE: return fail(ACL_ERROR_INVALID_PARAM, "%s: invalid parameter", what);
    case EMU_E_OUT_OF_MEMORY: return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: device memory exhausted", what);
    case EMU_E_INVALID_DEVICE: return fail(ACL_ERROR_RT_INVALID_DEVICEID, "%s: invalid device id", what);
    case EMU_E_INVALID_CONTEXT: return fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: no current context", what);
    case EMU_E_INVALID_HANDLE: return fail(ACL_ERROR_RT_INVALID_HANDLE, "%s: invalid handle", what);
    case EMU_E_NOT_READY: return fail(ACL_ERROR_RT_EVENT_NOT_COMPLETE, "%s: event not complete", what);
    case EMU_E_INJECTED:
        return fail(emu_fault_code() ? (aclError)emu_fault_code() : ACL_ERROR_RT_DEVICE_MEM_ERROR,
                    "%s: injected copy failure (emulator fault injection)", what);
    case EMU_E_PEER_UNSUPPORTED:
    case EMU_E_PEER_ENABLED:
    case EMU_E_PEER_NOT_ENABLED: return fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "%s: peer access", what);
    case EMU_E_MAP_FAILED: return fail(ACL_ERROR_RT_INTERNAL_ERROR, "%s: cannot map the exported memory", what);
    case EMU_E_NOT_INITIALIZED: return fail(ACL_ERROR_UNINITIALIZE, "%s: aclInit was not called", what);
    case EMU_E_NO_DEVICE: return fail(ACL_ERROR_RT_NO_DEVICE, "%s: no device", what);
    case EMU_E_SYSTEM: return fail(ACL_ERROR_RT_INTERNAL_ERROR, "%s: system call failed", what);
    }
    return fail(ACL_ERROR_RT_INTERNAL_ERROR, "%s: internal error", what);
}

#define REQUIRE_INIT(what)                                                                                           \
    do {                                                                                                             \
        if (!g_acl_initialized) {                                                                                    \
            return fail(ACL_ERROR_UNINITIALIZE, "%s: aclInit was not called", what);                                 \
        }                                                                                                            \
    } while (0)

static int valid_device(int d) { return d >= 0 && d < emu_device_count(); }

static aclError require_current(const char *what, aclrtContext *out)
{
    *out = NULL;
    REQUIRE_INIT(what);
    if (!t_current || !emu_ctx_valid(t_current)) {
        t_current = NULL;
        return fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: no current context (call aclrtSetDevice or aclrtSetCurrentContext)",
                    what);
    }
    *out = t_current;
    return ACL_SUCCESS;
}

static aclError resolve_stream(const char *what, aclrtStream h, emu_stream **out)
{
    *out = NULL;
    aclrtContext ctx;
    aclError r = require_current(what, &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (h == NULL) {
        *out = emu_ctx_default_stream(ctx);
        return *out ? ACL_SUCCESS : fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: default stream", what);
    }
    if (!emu_stream_valid(h)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "%s: stream %p is not a live stream", what, (void *)h);
    }
    if (emu_stream_ctx(h)->device != ctx->device) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "%s: stream belongs to device %d, the current device is %d", what,
                    emu_stream_ctx(h)->device, ctx->device);
    }
    *out = h;
    return ACL_SUCCESS;
}

/* ---------------------------------------------------------------- init, devices, contexts */

EXPORT aclError aclInit(const char *configPath)
{
    (void)configPath;
    if (g_acl_initialized) {
        return fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: already initialized in this process");
    }
    emu_initialize();
    g_acl_initialized = 1;
    return ACL_SUCCESS;
}

EXPORT aclError aclFinalize(void)
{
    if (!g_acl_initialized) {
        return fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize: not initialized");
    }
    for (int d = 0; d < emu_device_count(); d++) {
        if (g_default_ctx[d]) {
            emu_ctx_destroy(g_default_ctx[d]);
            g_default_ctx[d] = NULL;
        }
    }
    t_current = NULL;
    g_acl_initialized = 0;
    return ACL_SUCCESS;
}

EXPORT const char *aclGetRecentErrMsg(void)
{
    if (!t_has_errmsg) {
        return NULL;
    }
    t_has_errmsg = 0; /* reading clears it, as on CANN */
    return t_errmsg;
}

EXPORT aclError aclrtGetVersion(int *major, int *minor, int *patch)
{
    if (!major || !minor || !patch) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtGetVersion: null output");
    }
    *major = 1;
    *minor = 0;
    *patch = 0;
    return ACL_SUCCESS;
}

EXPORT const char *aclrtGetSocName(void) { return g_acl_initialized ? "ExpertBridge Ascend emulator" : NULL; }

EXPORT aclError aclrtGetDeviceCount(uint32_t *count)
{
    REQUIRE_INIT("aclrtGetDeviceCount");
    if (!count) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount: null count");
    }
    *count = (uint32_t)emu_device_count();
    return ACL_SUCCESS;
}

EXPORT aclError aclrtSetDevice(int32_t deviceId)
{
    REQUIRE_INIT("aclrtSetDevice");
    if (!valid_device(deviceId)) {
        return fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtSetDevice: device %d does not exist (%d devices)", deviceId,
                    emu_device_count());
    }
    if (!g_default_ctx[deviceId] || !emu_ctx_valid(g_default_ctx[deviceId])) {
        g_default_ctx[deviceId] = emu_ctx_create(deviceId, 1, 0);
        if (!g_default_ctx[deviceId]) {
            return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtSetDevice: cannot create the default context");
        }
    }
    t_current = g_default_ctx[deviceId];
    return ACL_SUCCESS;
}

EXPORT aclError aclrtResetDevice(int32_t deviceId)
{
    REQUIRE_INIT("aclrtResetDevice");
    if (!valid_device(deviceId)) {
        return fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtResetDevice: device %d does not exist", deviceId);
    }
    if (g_default_ctx[deviceId]) {
        if (t_current == g_default_ctx[deviceId]) {
            t_current = NULL;
        }
        emu_ctx_destroy(g_default_ctx[deviceId]);
        g_default_ctx[deviceId] = NULL;
    }
    return ACL_SUCCESS;
}

EXPORT aclError aclrtGetDevice(int32_t *deviceId)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtGetDevice", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!deviceId) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDevice: null output");
    }
    *deviceId = ctx->device;
    return ACL_SUCCESS;
}

EXPORT aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId)
{
    REQUIRE_INIT("aclrtCreateContext");
    if (!context) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateContext: null output");
    }
    if (!valid_device(deviceId)) {
        return fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtCreateContext: device %d does not exist", deviceId);
    }
    aclrtContext ctx = emu_ctx_create(deviceId, 0, 0);
    if (!ctx) {
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtCreateContext: out of memory");
    }
    t_current = ctx; /* a created context becomes the thread's current one */
    *context = ctx;
    return ACL_SUCCESS;
}

EXPORT aclError aclrtDestroyContext(aclrtContext context)
{
    REQUIRE_INIT("aclrtDestroyContext");
    if (!emu_ctx_valid(context) || context->primary) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtDestroyContext: not a context created by aclrtCreateContext");
    }
    if (t_current == context) {
        t_current = NULL;
    }
    emu_ctx_destroy(context);
    return ACL_SUCCESS;
}

EXPORT aclError aclrtSetCurrentContext(aclrtContext context)
{
    REQUIRE_INIT("aclrtSetCurrentContext");
    if (!emu_ctx_valid(context)) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtSetCurrentContext: %p is not a live context", (void *)context);
    }
    t_current = context;
    return ACL_SUCCESS;
}

EXPORT aclError aclrtGetCurrentContext(aclrtContext *context)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtGetCurrentContext", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!context) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext: null output");
    }
    *context = ctx;
    return ACL_SUCCESS;
}

EXPORT aclError aclrtSynchronizeDevice(void)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtSynchronizeDevice", &ctx);
    if (r == ACL_SUCCESS) {
        emu_device_synchronize(ctx->device);
    }
    return r;
}

/* ---------------------------------------------------------------- peer access */

EXPORT aclError aclrtDeviceCanAccessPeer(int32_t *canAccessPeer, int32_t deviceId, int32_t peerDeviceId)
{
    REQUIRE_INIT("aclrtDeviceCanAccessPeer");
    if (!canAccessPeer) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceCanAccessPeer: null output");
    }
    if (!valid_device(deviceId) || !valid_device(peerDeviceId)) {
        return fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtDeviceCanAccessPeer: device %d or %d does not exist",
                    deviceId, peerDeviceId);
    }
    *canAccessPeer = emu_can_access_peer(deviceId, peerDeviceId);
    return ACL_SUCCESS;
}

EXPORT aclError aclrtDeviceEnablePeerAccess(int32_t peerDeviceId, uint32_t flags)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtDeviceEnablePeerAccess", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (flags != 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceEnablePeerAccess: flags are reserved and must be 0");
    }
    if (!valid_device(peerDeviceId) || peerDeviceId == ctx->device) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceEnablePeerAccess: peer %d must be another device",
                    peerDeviceId);
    }
    if (!emu_can_access_peer(ctx->device, peerDeviceId)) {
        return fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtDeviceEnablePeerAccess: device %d cannot access %d",
                    ctx->device, peerDeviceId);
    }
    /* device-level: recorded on the device's default context */
    aclrtContext dflt = g_default_ctx[ctx->device] ? g_default_ctx[ctx->device] : ctx;
    dflt->peer_mask |= 1u << peerDeviceId;
    ctx->peer_mask |= 1u << peerDeviceId;
    return ACL_SUCCESS;
}

EXPORT aclError aclrtDeviceDisablePeerAccess(int32_t peerDeviceId)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtDeviceDisablePeerAccess", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!valid_device(peerDeviceId)) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceDisablePeerAccess: peer %d does not exist", peerDeviceId);
    }
    ctx->peer_mask &= ~(1u << peerDeviceId);
    if (g_default_ctx[ctx->device]) {
        g_default_ctx[ctx->device]->peer_mask &= ~(1u << peerDeviceId);
    }
    return ACL_SUCCESS;
}

static int peer_enabled(int from, int to)
{
    if (from == to) {
        return 1;
    }
    aclrtContext dflt = g_default_ctx[from];
    return (dflt && (dflt->peer_mask & (1u << to))) || (t_current && t_current->device == from &&
                                                         (t_current->peer_mask & (1u << to)));
}

/* ---------------------------------------------------------------- memory */

EXPORT aclError aclrtMalloc(void **devPtr, size_t size, int policy)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtMalloc", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!devPtr || size == 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: size must be > 0 and devPtr not null");
    }
    if (policy < 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: invalid policy %d", policy);
    }
    size_t accounted = (size + 31) / 32 * 32 + 32; /* CANN rounds up to 32 bytes and pads 32 */
    emu_status st = emu_mem_alloc(ctx, size, accounted, devPtr);
    if (st == EMU_E_OUT_OF_MEMORY) {
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: cannot allocate %zu bytes on device %d (%zu of %zu in use)",
                    size, ctx->device, emu_device_used(ctx->device), emu_device_total(ctx->device));
    }
    return map_status(st, "aclrtMalloc");
}

EXPORT aclError aclrtFree(void *devPtr)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtFree", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!devPtr) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtFree: null pointer");
    }
    int dev = emu_mem_device_of(devPtr, 1);
    if (dev >= 0) {
        emu_device_synchronize(dev);
    }
    return map_status(emu_mem_free(devPtr), "aclrtFree");
}

EXPORT aclError aclrtMallocHost(void **hostPtr, size_t size)
{
    REQUIRE_INIT("aclrtMallocHost");
    return map_status(emu_host_alloc(size, 0, hostPtr), "aclrtMallocHost");
}

EXPORT aclError aclrtFreeHost(void *hostPtr)
{
    REQUIRE_INIT("aclrtFreeHost");
    return map_status(emu_host_free(hostPtr), "aclrtFreeHost");
}

EXPORT aclError aclrtGetMemInfo(int attr, size_t *free_bytes, size_t *total)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtGetMemInfo", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!free_bytes || !total || attr < 0 || attr > 17) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: invalid attribute %d or null output", attr);
    }
    if (attr == 0 || attr == 2 || attr == 3 || attr == 6 || attr == 7) {
        *total = 0; /* DDR pools: the emulated device has HBM only */
        *free_bytes = 0;
        return ACL_SUCCESS;
    }
    *total = emu_device_total(ctx->device);
    *free_bytes = *total - emu_device_used(ctx->device);
    return ACL_SUCCESS;
}

/* Checks a copy's direction against the addresses; returns the device that runs it or an error (< 0). */
static aclError check_copy(const char *what, void *dst, size_t destMax, const void *src, size_t count, int kind,
                           aclrtContext ctx)
{
    if (!dst || !src) {
        return fail(ACL_ERROR_INVALID_PARAM, "%s: null pointer", what);
    }
    if (count > destMax) {
        return fail(ACL_ERROR_INVALID_PARAM, "%s: count %zu exceeds destMax %zu", what, count, destMax);
    }
    int ddev = emu_mem_device_of(dst, count ? count : 1);
    int sdev = emu_mem_device_of(src, count ? count : 1);
    if (ddev == -2 || sdev == -2) {
        return fail(ACL_ERROR_INVALID_PARAM, "%s: a range runs past the end of its device allocation", what);
    }
    int want_d = -1, want_s = -1; /* 1: device, 0: host, -1: any */
    switch (kind) {
    case KIND_H2H: want_d = 0; want_s = 0; break;
    case KIND_H2D: want_d = 1; want_s = 0; break;
    case KIND_D2H: want_d = 0; want_s = 1; break;
    case KIND_D2D: want_d = 1; want_s = 1; break;
    case KIND_DEFAULT: break;
    default: return fail(ACL_ERROR_INVALID_PARAM, "%s: unknown memcpy kind %d", what, kind);
    }
    if ((want_d >= 0 && want_d != (ddev >= 0)) || (want_s >= 0 && want_s != (sdev >= 0))) {
        return fail(ACL_ERROR_INVALID_PARAM, "%s: kind %d does not match the addresses (dst %s, src %s)", what, kind,
                    ddev >= 0 ? "device" : "host", sdev >= 0 ? "device" : "host");
    }
    if (ddev >= 0 && sdev >= 0 && ddev != sdev) {
        int runner = ctx->device;
        int other = runner == ddev ? sdev : ddev;
        if (!peer_enabled(runner, other)) {
            return fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
                        "%s: copy between device %d and device %d needs aclrtDeviceEnablePeerAccess(%d, 0) on device %d",
                        what, sdev, ddev, other, runner);
        }
    }
    return ACL_SUCCESS;
}

EXPORT aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, int kind)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtMemcpy", &ctx);
    if (r == ACL_SUCCESS) {
        r = check_copy("aclrtMemcpy", dst, destMax, src, count, kind, ctx);
    }
    if (r != ACL_SUCCESS) {
        return r;
    }
    emu_stream *dflt = emu_ctx_default_stream(ctx);
    if (dflt) {
        (void)emu_stream_synchronize(dflt);
    }
    return map_status(emu_copy_sync(dst, src, count), "aclrtMemcpy");
}

EXPORT aclError aclrtMemcpyAsync(void *dst, size_t destMax, const void *src, size_t count, int kind,
                                 aclrtStream stream)
{
    emu_stream *s;
    aclError r = resolve_stream("aclrtMemcpyAsync", stream, &s);
    if (r == ACL_SUCCESS) {
        r = check_copy("aclrtMemcpyAsync", dst, destMax, src, count, kind, emu_stream_ctx(s));
    }
    return r != ACL_SUCCESS ? r : map_status(emu_stream_copy(s, dst, src, count), "aclrtMemcpyAsync");
}

EXPORT aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtMemset", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!devPtr || count > maxCount || emu_mem_device_of(devPtr, count ? count : 1) < 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: pointer not in a device allocation or count > maxCount");
    }
    return map_status(emu_fill_sync(devPtr, value, count), "aclrtMemset");
}

EXPORT aclError aclrtMemsetAsync(void *devPtr, size_t maxCount, int32_t value, size_t count, aclrtStream stream)
{
    emu_stream *s;
    aclError r = resolve_stream("aclrtMemsetAsync", stream, &s);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!devPtr || count > maxCount || emu_mem_device_of(devPtr, count ? count : 1) < 0) {
        return fail(ACL_ERROR_INVALID_PARAM,
                    "aclrtMemsetAsync: pointer not in a device allocation or count > maxCount");
    }
    return map_status(emu_stream_fill(s, devPtr, value, count), "aclrtMemsetAsync");
}

/* ---------------------------------------------------------------- IPC */

EXPORT aclError aclrtIpcMemGetExportKey(void *devPtr, size_t size, char *key, size_t len, uint64_t flags)
{
    REQUIRE_INIT("aclrtIpcMemGetExportKey");
    (void)flags;
    if (!key || len < 65 || size == 0) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtIpcMemGetExportKey: the key buffer needs 65 bytes and size > 0");
    }
    return map_status(emu_ipc_export_key(devPtr, key, len), "aclrtIpcMemGetExportKey");
}

EXPORT aclError aclrtIpcMemImportByKey(void **devPtr, const char *key, uint64_t flags)
{
    REQUIRE_INIT("aclrtIpcMemImportByKey");
    (void)flags;
    if (!devPtr || !key) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtIpcMemImportByKey: null key or output");
    }
    return map_status(emu_ipc_import_key(key, devPtr), "aclrtIpcMemImportByKey");
}

EXPORT aclError aclrtIpcMemClose(const char *key)
{
    REQUIRE_INIT("aclrtIpcMemClose");
    return map_status(emu_ipc_close_key(key), "aclrtIpcMemClose");
}

/* ---------------------------------------------------------------- streams */

EXPORT aclError aclrtCreateStreamWithConfig(aclrtStream *stream, uint32_t priority, uint32_t flag)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtCreateStreamWithConfig", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!stream || flag > 3 || priority > 7) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateStreamWithConfig: priority must be 0..7 and flag 0..3");
    }
    *stream = emu_stream_create(ctx, flag, (int)priority);
    return *stream ? ACL_SUCCESS : fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtCreateStreamWithConfig: out of memory");
}

EXPORT aclError aclrtCreateStream(aclrtStream *stream) { return aclrtCreateStreamWithConfig(stream, 0, 0); }

EXPORT aclError aclrtDestroyStream(aclrtStream stream)
{
    REQUIRE_INIT("aclrtDestroyStream");
    if (!emu_stream_valid(stream)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtDestroyStream: %p is not a live stream", (void *)stream);
    }
    emu_stream_destroy(stream);
    return ACL_SUCCESS;
}

EXPORT aclError aclrtSynchronizeStream(aclrtStream stream)
{
    emu_stream *s;
    aclError r = resolve_stream("aclrtSynchronizeStream", stream, &s);
    return r != ACL_SUCCESS ? r : map_status(emu_stream_synchronize(s), "aclrtSynchronizeStream");
}

EXPORT aclError aclrtStreamWaitEvent(aclrtStream stream, aclrtEvent event)
{
    emu_stream *s;
    aclError r = resolve_stream("aclrtStreamWaitEvent", stream, &s);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!emu_event_valid(event)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtStreamWaitEvent: %p is not a live event", (void *)event);
    }
    return map_status(emu_stream_wait(s, event), "aclrtStreamWaitEvent");
}

/* ---------------------------------------------------------------- events */

EXPORT aclError aclrtCreateEventWithFlag(aclrtEvent *event, uint32_t flag)
{
    aclrtContext ctx;
    aclError r = require_current("aclrtCreateEventWithFlag", &ctx);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!event || (flag & ~0x7Bu)) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateEventWithFlag: unknown flag 0x%x", flag);
    }
    /* events carry timestamps only with ACL_EVENT_TIME_LINE (0x8) or when created without flags */
    unsigned f = (flag == 0 || (flag & 0x8u)) ? 0u : EMU_EVENT_DISABLE_TIMING;
    *event = emu_event_create(ctx, f);
    return *event ? ACL_SUCCESS : fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtCreateEventWithFlag: out of memory");
}

EXPORT aclError aclrtCreateEvent(aclrtEvent *event) { return aclrtCreateEventWithFlag(event, 0); }

EXPORT aclError aclrtRecordEvent(aclrtEvent event, aclrtStream stream)
{
    emu_stream *s;
    aclError r = resolve_stream("aclrtRecordEvent", stream, &s);
    if (r != ACL_SUCCESS) {
        return r;
    }
    if (!emu_event_valid(event)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtRecordEvent: %p is not a live event", (void *)event);
    }
    return map_status(emu_stream_record(s, event), "aclrtRecordEvent");
}

EXPORT aclError aclrtSynchronizeEvent(aclrtEvent event)
{
    REQUIRE_INIT("aclrtSynchronizeEvent");
    if (!emu_event_valid(event)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtSynchronizeEvent: %p is not a live event", (void *)event);
    }
    return map_status(emu_event_synchronize(event), "aclrtSynchronizeEvent");
}

EXPORT aclError aclrtQueryEventStatus(aclrtEvent event, int *status)
{
    REQUIRE_INIT("aclrtQueryEventStatus");
    if (!status) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtQueryEventStatus: null output");
    }
    if (!emu_event_valid(event)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtQueryEventStatus: %p is not a live event", (void *)event);
    }
    emu_status st = emu_event_query(event);
    if (st == EMU_E_NOT_READY) {
        *status = 0; /* ACL_EVENT_RECORDED_STATUS_NOT_READY */
        return ACL_SUCCESS;
    }
    *status = 1; /* ACL_EVENT_RECORDED_STATUS_COMPLETE */
    return map_status(st, "aclrtQueryEventStatus");
}

EXPORT aclError aclrtEventElapsedTime(float *ms, aclrtEvent startEvent, aclrtEvent endEvent)
{
    REQUIRE_INIT("aclrtEventElapsedTime");
    if (!ms || !emu_event_valid(startEvent) || !emu_event_valid(endEvent)) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtEventElapsedTime: null output or dead event");
    }
    emu_status st = emu_event_elapsed(startEvent, endEvent, ms);
    if (st == EMU_E_INVALID_HANDLE) {
        return fail(ACL_ERROR_INVALID_PARAM,
                    "aclrtEventElapsedTime: both events must be recorded and created with ACL_EVENT_TIME_LINE");
    }
    return map_status(st, "aclrtEventElapsedTime");
}

EXPORT aclError aclrtDestroyEvent(aclrtEvent event)
{
    REQUIRE_INIT("aclrtDestroyEvent");
    if (!emu_event_valid(event)) {
        return fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtDestroyEvent: %p is not a live event", (void *)event);
    }
    emu_event_destroy(event);
    return ACL_SUCCESS;
}

/* ---------------------------------------------------------------- emulator control (not part of AscendCL) */

EXPORT int ebemu_set_fault(const char *name, long long value) { return emu_fault_set(name, value); }

EXPORT void ebemu_reset_faults(void) { emu_fault_reset(); }

EXPORT int ebemu_get_stat(const char *name, long long *value) { return emu_stat(name, value); }

EXPORT const char *ebemu_identify(void) { return "ExpertBridge AscendCL runtime emulator (host memory)"; }
