/*
 * libeb_cuda_emulator.so: an EMULATOR of the CUDA driver API subset that ExpertBridge binds, on host memory.
 * NOT a driver and not affiliated with NVIDIA. Load it in place of libcuda.so.1 by pointing
 * EXPERTBRIDGE_CUDA_LIBRARY at it; the generated bindings and the cuda backend then run unchanged.
 *
 * Exported names are the ones a CUDA 13 program binds (cuMemAlloc_v2, cuMemcpyDtoDAsync_v2, cuCtxCreate_v4,
 * cuEventElapsedTime_v2, cuIpcOpenMemHandle_v2, ...). The legacy 32-bit unversioned entry points (cuMemAlloc,
 * cuMemcpyDtoD, ...) are deliberately NOT exported, so a binding that names them fails to load instead of silently
 * corrupting memory. Error codes and their names/strings are the driver's. Known differences from the driver:
 * work on the NULL/legacy stream does not implicitly synchronize with other blocking streams; IPC handles may be
 * opened in the exporting process (the driver refuses that); device pointers are host addresses; modules cannot be
 * loaded (there is no GPU code to run on host memory): cuModuleLoadData reports CUDA_ERROR_NOT_SUPPORTED.
 */
#include "emu_core.h"

#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef emu_ctx *CUcontext;
typedef emu_stream *CUstream;
typedef emu_event *CUevent;
typedef struct CUuuid_st {
    char bytes[16];
} CUuuid;
typedef struct CUipcMemHandle_st {
    char reserved[64];
} CUipcMemHandle;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_MAP_FAILED = 205,
    CUDA_ERROR_PEER_ACCESS_UNSUPPORTED = 217,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704,
    CUDA_ERROR_PEER_ACCESS_NOT_ENABLED = 705,
    CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE = 708,
    CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
    CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
    CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_TIMEOUT = 909,
    CUDA_ERROR_UNKNOWN = 999
};

#define STREAM_LEGACY ((CUstream)0x1)
#define STREAM_PER_THREAD ((CUstream)0x2)
#define MAX_STACK 16

static __thread CUcontext t_stack[MAX_STACK];
static __thread int t_depth;
static CUcontext g_primary[EMU_MAX_DEVICES];
static unsigned g_primary_flags[EMU_MAX_DEVICES];

/* ---------------------------------------------------------------- helpers */

static CUresult map_status(emu_status st)
{
    switch (st) {
    case EMU_OK: return CUDA_SUCCESS;
    case EMU_E_INVALID_VALUE: return CUDA_ERROR_INVALID_VALUE;
    case EMU_E_OUT_OF_MEMORY: return CUDA_ERROR_OUT_OF_MEMORY;
    case EMU_E_INVALID_DEVICE: return CUDA_ERROR_INVALID_DEVICE;
    case EMU_E_INVALID_CONTEXT: return CUDA_ERROR_INVALID_CONTEXT;
    case EMU_E_INVALID_HANDLE: return CUDA_ERROR_INVALID_HANDLE;
    case EMU_E_NOT_READY: return CUDA_ERROR_NOT_READY;
    case EMU_E_INJECTED: return emu_fault_code() ? (CUresult)emu_fault_code() : CUDA_ERROR_UNKNOWN;
    case EMU_E_PEER_UNSUPPORTED: return CUDA_ERROR_PEER_ACCESS_UNSUPPORTED;
    case EMU_E_PEER_ENABLED: return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
    case EMU_E_PEER_NOT_ENABLED: return CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
    case EMU_E_MAP_FAILED: return CUDA_ERROR_MAP_FAILED;
    case EMU_E_NOT_INITIALIZED: return CUDA_ERROR_NOT_INITIALIZED;
    case EMU_E_NO_DEVICE: return CUDA_ERROR_NO_DEVICE;
    case EMU_E_SYSTEM: return CUDA_ERROR_UNKNOWN;
    }
    return CUDA_ERROR_UNKNOWN;
}

#define REQUIRE_INIT()                                                                                               \
    do {                                                                                                             \
        if (!emu_initialized()) {                                                                                    \
            return CUDA_ERROR_NOT_INITIALIZED;                                                                       \
        }                                                                                                            \
    } while (0)

static int valid_device(CUdevice d) { return d >= 0 && d < emu_device_count(); }

/* The thread's current context, or NULL (a destroyed one counts as none). */
static CUcontext current(void)
{
    if (t_depth == 0) {
        return NULL;
    }
    return emu_ctx_valid(t_stack[t_depth - 1]) ? t_stack[t_depth - 1] : NULL;
}

static CUresult require_current(CUcontext *out)
{
    *out = NULL;
    REQUIRE_INIT();
    *out = current();
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

/* Streams must belong to the current context; the NULL, legacy and per-thread handles mean its default stream. */
static CUresult resolve_stream(CUstream h, emu_stream **out)
{
    *out = NULL;
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (h == NULL || h == STREAM_LEGACY || h == STREAM_PER_THREAD) {
        *out = emu_ctx_default_stream(ctx);
        return *out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!emu_stream_valid(h) || emu_stream_ctx(h) != ctx) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    *out = h;
    return CUDA_SUCCESS;
}

/* Device ordinal of [p, p+n) inside one device allocation, or -1. */
static int device_range(CUdeviceptr p, size_t n) { return p ? emu_mem_device_of((const void *)(uintptr_t)p, n) : -1; }

static CUresult check_device(CUdeviceptr p, size_t n) { return device_range(p, n) >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; }

/* Synchronous copies are ordered after the context's legacy stream, as on the driver. */
static void sync_default_stream(CUcontext ctx)
{
    emu_stream *s = emu_ctx_default_stream(ctx);
    if (s) {
        (void)emu_stream_synchronize(s);
    }
}

/* ---------------------------------------------------------------- init and devices */

EXPORT CUresult cuInit(unsigned int flags)
{
    if (flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    emu_initialize();
    return emu_device_count() > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

EXPORT CUresult cuDriverGetVersion(int *version)
{
    if (!version) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *version = 13000;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count)
{
    REQUIRE_INIT();
    if (!count) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *count = emu_device_count();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    REQUIRE_INIT();
    if (!device) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(ordinal)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *device = ordinal;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    REQUIRE_INIT();
    if (!name || len <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    emu_device_name(dev, "CUDA", name, (size_t)len);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    REQUIRE_INIT();
    if (!bytes) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *bytes = emu_device_total(dev);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice dev)
{
    REQUIRE_INIT();
    if (!value) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    switch (attribute) {
    case 1: *value = 1024; break;                       /* MAX_THREADS_PER_BLOCK */
    case 16: *value = 4; break;                         /* MULTIPROCESSOR_COUNT */
    case 18: *value = 0; break;                         /* INTEGRATED */
    case 19: *value = 1; break;                         /* CAN_MAP_HOST_MEMORY */
    case 20: *value = 0; break;                         /* COMPUTE_MODE: default */
    case 33: *value = dev + 1; break;                   /* PCI_BUS_ID */
    case 34: *value = 0; break;                         /* PCI_DEVICE_ID */
    case 36: *value = 1000000; break;                   /* MEMORY_CLOCK_RATE (kHz) */
    case 37: *value = 64; break;                        /* GLOBAL_MEMORY_BUS_WIDTH */
    case 40: *value = 2; break;                         /* ASYNC_ENGINE_COUNT */
    case 41: *value = 1; break;                         /* UNIFIED_ADDRESSING */
    case 50: *value = 0; break;                         /* PCI_DOMAIN_ID */
    case 75: *value = 9; break;                         /* COMPUTE_CAPABILITY_MAJOR */
    case 76: *value = 0; break;                         /* COMPUTE_CAPABILITY_MINOR */
    case 83: case 89: case 102: case 115: case 116: case 124: *value = 0; break; /* features not emulated */
    case 91: case 99: case 103: case 125: *value = 1; break; /* host register, IPC */
    default:
        if (attribute <= 0 || attribute > 160) {
            return CUDA_ERROR_INVALID_VALUE;
        }
        *value = 0;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetPCIBusId(char *bus, int len, CUdevice dev)
{
    REQUIRE_INIT();
    if (!bus || len <= 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    snprintf(bus, (size_t)len, "0000:%02X:00.0", (unsigned)(dev + 1));
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    REQUIRE_INIT();
    if (!uuid) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    memset(uuid, 0, sizeof *uuid);
    memcpy(uuid->bytes, "EBEMUCUDA", 9);
    uuid->bytes[15] = (char)dev;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- contexts */

static void stack_set_top(CUcontext ctx)
{
    if (t_depth == 0) {
        t_stack[t_depth++] = ctx;
    } else {
        t_stack[t_depth - 1] = ctx;
    }
}

EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    REQUIRE_INIT();
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (!g_primary[dev] || !emu_ctx_valid(g_primary[dev])) {
        g_primary[dev] = emu_ctx_create(dev, 1, g_primary_flags[dev]);
        if (!g_primary[dev]) {
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    g_primary[dev]->retains++;
    *pctx = g_primary[dev];
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    REQUIRE_INIT();
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    CUcontext ctx = g_primary[dev];
    if (!ctx || !emu_ctx_valid(ctx) || ctx->retains <= 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (--ctx->retains == 0) {
        g_primary[dev] = NULL;
        emu_ctx_destroy(ctx); /* the driver destroys the primary context with its last release */
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    REQUIRE_INIT();
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (g_primary[dev]) {
        emu_ctx_destroy(g_primary[dev]);
        g_primary[dev] = NULL;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    REQUIRE_INIT();
    if (!flags || !active) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *flags = g_primary_flags[dev];
    *active = g_primary[dev] && emu_ctx_valid(g_primary[dev]);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    REQUIRE_INIT();
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (flags & ~0x1Fu) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    g_primary_flags[dev] = flags;
    return CUDA_SUCCESS;
}

static CUresult ctx_create(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    REQUIRE_INIT();
    if (!pctx || (flags & ~0x1Fu)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    if (t_depth == MAX_STACK) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUcontext ctx = emu_ctx_create(dev, 0, flags);
    if (!ctx) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    t_stack[t_depth++] = ctx; /* a new context is pushed onto the calling thread's stack */
    *pctx = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) { return ctx_create(pctx, flags, dev); }

EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, void *params, unsigned int flags, CUdevice dev)
{
    (void)params; /* execution affinity and CIG parameters are not emulated */
    return ctx_create(pctx, flags, dev);
}

EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    REQUIRE_INIT();
    if (!emu_ctx_valid(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (ctx->primary) {
        return CUDA_ERROR_INVALID_CONTEXT; /* primary contexts are released, not destroyed */
    }
    for (int i = 0; i < t_depth; i++) {
        if (t_stack[i] == ctx) {
            memmove(&t_stack[i], &t_stack[i + 1], (size_t)(t_depth - i - 1) * sizeof t_stack[0]);
            t_depth--;
            break;
        }
    }
    emu_ctx_destroy(ctx);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    REQUIRE_INIT();
    if (ctx == NULL) {
        if (t_depth > 0) {
            t_depth--;
        }
        return CUDA_SUCCESS;
    }
    if (!emu_ctx_valid(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    stack_set_top(ctx);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    REQUIRE_INIT();
    if (!pctx) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *pctx = current();
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    REQUIRE_INIT();
    if (!emu_ctx_valid(ctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (t_depth == MAX_STACK) {
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    t_stack[t_depth++] = ctx;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    REQUIRE_INIT();
    if (t_depth == 0) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    CUcontext top = t_stack[--t_depth];
    if (pctx) {
        *pctx = top;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!device) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *device = ctx->device;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize(void)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    emu_device_synchronize(ctx->device);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetStreamPriorityRange(int *least, int *greatest)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (least) {
        *least = 0;
    }
    if (greatest) {
        *greatest = -5;
    }
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- peer access */

EXPORT CUresult cuDeviceCanAccessPeer(int *can, CUdevice dev, CUdevice peer)
{
    REQUIRE_INIT();
    if (!can) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(dev) || !valid_device(peer)) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    *can = emu_can_access_peer(dev, peer);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetP2PAttribute(int *value, int attribute, CUdevice src, CUdevice dst)
{
    REQUIRE_INIT();
    if (!value) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!valid_device(src) || !valid_device(dst) || src == dst) {
        return CUDA_ERROR_INVALID_DEVICE;
    }
    int can = emu_can_access_peer(src, dst);
    switch (attribute) {
    case 1: *value = can ? 1 : 0; break; /* PERFORMANCE_RANK */
    case 2: *value = can; break;         /* ACCESS_SUPPORTED */
    case 3: case 4: *value = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxEnablePeerAccess(CUcontext peer, unsigned int flags)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (flags != 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!emu_ctx_valid(peer) || peer == ctx) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (!emu_can_access_peer(ctx->device, peer->device)) {
        return CUDA_ERROR_PEER_ACCESS_UNSUPPORTED;
    }
    uint32_t bit = 1u << peer->device;
    if (ctx->peer_mask & bit) {
        return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
    }
    ctx->peer_mask |= bit;
    return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxDisablePeerAccess(CUcontext peer)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!emu_ctx_valid(peer)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    uint32_t bit = 1u << peer->device;
    if (!(ctx->peer_mask & bit)) {
        return CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
    }
    ctx->peer_mask &= ~bit;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- memory */

EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!free_bytes || !total) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *total = emu_device_total(ctx->device);
    *free_bytes = *total - emu_device_used(ctx->device);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytes)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!dptr || bytes == 0) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    void *p = NULL;
    r = map_status(emu_mem_alloc(ctx, bytes, bytes, &p));
    if (r == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)(uintptr_t)p;
    }
    return r;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (dptr == 0) {
        return CUDA_SUCCESS;
    }
    /* freeing is synchronizing on the driver: work that may still use the memory completes first */
    emu_device_synchronize(ctx->device);
    return map_status(emu_mem_free((void *)(uintptr_t)dptr));
}

EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *base, size_t *size, CUdeviceptr dptr)
{
    REQUIRE_INIT();
    void *b = NULL;
    size_t n = 0;
    CUresult r = map_status(emu_mem_range((const void *)(uintptr_t)dptr, &b, &n, NULL));
    if (r == CUDA_SUCCESS) {
        if (base) {
            *base = (CUdeviceptr)(uintptr_t)b;
        }
        if (size) {
            *size = n;
        }
    } else {
        r = CUDA_ERROR_NOT_FOUND;
    }
    return r;
}

EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytes)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    return map_status(emu_host_alloc(bytes, 0, pp));
}

EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned int flags)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (flags & ~0x7u) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return map_status(emu_host_alloc(bytes, flags, pp));
}

EXPORT CUresult cuMemFreeHost(void *p)
{
    REQUIRE_INIT();
    return map_status(emu_host_free(p));
}

EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytes, unsigned int flags)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (flags & ~0xFu) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (emu_host_is_pinned(p)) {
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    }
    return map_status(emu_host_register(p, bytes));
}

EXPORT CUresult cuMemHostUnregister(void *p)
{
    REQUIRE_INIT();
    return emu_host_unregister(p) == EMU_OK ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *dptr, void *p, unsigned int flags)
{
    REQUIRE_INIT();
    if (!dptr || flags != 0 || !emu_host_is_pinned(p)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *dptr = (CUdeviceptr)(uintptr_t)p; /* unified addressing: the same address */
    return CUDA_SUCCESS;
}

EXPORT CUresult cuPointerGetAttribute(void *data, int attribute, CUdeviceptr ptr)
{
    REQUIRE_INIT();
    if (!data) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    int dev = device_range(ptr, 1);
    int pinned = emu_host_is_pinned((const void *)(uintptr_t)ptr);
    if (dev < 0 && !pinned) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    switch (attribute) {
    case 2: *(unsigned int *)data = dev >= 0 ? 2u : 1u; break; /* MEMORY_TYPE: DEVICE or HOST */
    case 3: *(CUdeviceptr *)data = ptr; break;                 /* DEVICE_POINTER */
    case 4: *(void **)data = (void *)(uintptr_t)ptr; break;    /* HOST_POINTER */
    case 9: *(int *)data = dev >= 0 ? dev : 0; break;          /* DEVICE_ORDINAL */
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- copies and fills */

static CUresult copy_sync(void *dst, const void *src, size_t n)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    sync_default_stream(ctx);
    return map_status(emu_copy_sync(dst, src, n));
}

static CUresult copy_async(void *dst, const void *src, size_t n, CUstream h)
{
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    return r != CUDA_SUCCESS ? r : map_status(emu_stream_copy(s, dst, src, n));
}

#define DPTR(p) ((void *)(uintptr_t)(p))

EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    REQUIRE_INIT();
    if (n && (!src || check_device(dst, n))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_sync(DPTR(dst), src, n);
}

EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    REQUIRE_INIT();
    if (n && (!dst || check_device(src, n))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_sync(dst, DPTR(src), n);
}

EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    REQUIRE_INIT();
    if (n && (check_device(dst, n) || check_device(src, n))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_sync(DPTR(dst), DPTR(src), n);
}

EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    REQUIRE_INIT();
    if (n && (!dst || !src || device_range(dst, n) == -2 || device_range(src, n) == -2)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_sync(DPTR(dst), DPTR(src), n);
}

EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream h)
{
    REQUIRE_INIT();
    if (n && (!src || check_device(dst, n))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_async(DPTR(dst), src, n, h);
}

EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream h)
{
    REQUIRE_INIT();
    if (n && (!dst || check_device(src, n))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_async(dst, DPTR(src), n, h);
}

EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream h)
{
    REQUIRE_INIT();
    if (n && (check_device(dst, n) || check_device(src, n))) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_async(DPTR(dst), DPTR(src), n, h);
}

EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream h)
{
    REQUIRE_INIT();
    if (n && (!dst || !src || device_range(dst, n) == -2 || device_range(src, n) == -2)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return copy_async(DPTR(dst), DPTR(src), n, h);
}

static CUresult check_peer(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx, size_t n)
{
    if (!emu_ctx_valid(dctx) || !emu_ctx_valid(sctx)) {
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    if (n && (device_range(dst, n) != dctx->device || device_range(src, n) != sctx->device)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx, size_t n)
{
    REQUIRE_INIT();
    CUresult r = check_peer(dst, dctx, src, sctx, n);
    return r != CUDA_SUCCESS ? r : copy_sync(DPTR(dst), DPTR(src), n);
}

EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx, size_t n,
                                  CUstream h)
{
    REQUIRE_INIT();
    CUresult r = check_peer(dst, dctx, src, sctx, n);
    return r != CUDA_SUCCESS ? r : copy_async(DPTR(dst), DPTR(src), n, h);
}

EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t n)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (n && check_device(dst, n)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    sync_default_stream(ctx);
    return map_status(emu_fill_sync(DPTR(dst), value, n));
}

EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, CUstream h)
{
    REQUIRE_INIT();
    if (n && check_device(dst, n)) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    return r != CUDA_SUCCESS ? r : map_status(emu_stream_fill(s, DPTR(dst), value, n));
}

/* ---------------------------------------------------------------- IPC */

EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *handle, CUdeviceptr dptr)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!handle) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    return map_status(emu_ipc_export(DPTR(dptr), (unsigned char *)handle->reserved));
}

EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *dptr, CUipcMemHandle handle, unsigned int flags)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!dptr || flags != 0x1) { /* CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS is required */
        return CUDA_ERROR_INVALID_VALUE;
    }
    void *p = NULL;
    r = map_status(emu_ipc_import((const unsigned char *)handle.reserved, &p, NULL));
    if (r == CUDA_SUCCESS) {
        *dptr = (CUdeviceptr)(uintptr_t)p;
    }
    return r;
}

EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    emu_device_synchronize(ctx->device);
    return map_status(emu_ipc_close(DPTR(dptr)));
}

/* ---------------------------------------------------------------- streams */

EXPORT CUresult cuStreamCreateWithPriority(CUstream *ps, unsigned int flags, int priority)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!ps || flags > 1) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    /* clamp to [greatest, least] = [-5, 0] as the driver does */
    priority = priority < -5 ? -5 : (priority > 0 ? 0 : priority);
    *ps = emu_stream_create(ctx, flags, priority);
    return *ps ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuStreamCreate(CUstream *ps, unsigned int flags) { return cuStreamCreateWithPriority(ps, flags, 0); }

EXPORT CUresult cuStreamGetPriority(CUstream h, int *priority)
{
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!priority) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *priority = emu_stream_priority(s);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamDestroy_v2(CUstream h)
{
    REQUIRE_INIT();
    if (!emu_stream_valid(h)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    emu_stream_destroy(h);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamSynchronize(CUstream h)
{
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    return r != CUDA_SUCCESS ? r : map_status(emu_stream_synchronize(s));
}

EXPORT CUresult cuStreamQuery(CUstream h)
{
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    return r != CUDA_SUCCESS ? r : map_status(emu_stream_query(s));
}

EXPORT CUresult cuStreamWaitEvent(CUstream h, CUevent e, unsigned int flags)
{
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (flags > 1) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!emu_event_valid(e)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return map_status(emu_stream_wait(s, e)); /* events of other devices are allowed */
}

/* ---------------------------------------------------------------- events */

EXPORT CUresult cuEventCreate(CUevent *pe, unsigned int flags)
{
    CUcontext ctx;
    CUresult r = require_current(&ctx);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!pe || (flags & ~0x7u) || ((flags & 0x4u) && !(flags & 0x2u))) {
        return CUDA_ERROR_INVALID_VALUE; /* INTERPROCESS requires DISABLE_TIMING */
    }
    *pe = emu_event_create(ctx, (flags & 0x2u) ? EMU_EVENT_DISABLE_TIMING : 0);
    return *pe ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuEventRecord(CUevent e, CUstream h)
{
    emu_stream *s;
    CUresult r = resolve_stream(h, &s);
    if (r != CUDA_SUCCESS) {
        return r;
    }
    if (!emu_event_valid(e)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return map_status(emu_stream_record(s, e));
}

EXPORT CUresult cuEventRecordWithFlags(CUevent e, CUstream h, unsigned int flags)
{
    return flags > 1 ? CUDA_ERROR_INVALID_VALUE : cuEventRecord(e, h);
}

EXPORT CUresult cuEventQuery(CUevent e)
{
    REQUIRE_INIT();
    return emu_event_valid(e) ? map_status(emu_event_query(e)) : CUDA_ERROR_INVALID_HANDLE;
}

EXPORT CUresult cuEventSynchronize(CUevent e)
{
    REQUIRE_INIT();
    return emu_event_valid(e) ? map_status(emu_event_synchronize(e)) : CUDA_ERROR_INVALID_HANDLE;
}

EXPORT CUresult cuEventDestroy_v2(CUevent e)
{
    REQUIRE_INIT();
    if (!emu_event_valid(e)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    emu_event_destroy(e);
    return CUDA_SUCCESS;
}

EXPORT CUresult cuEventElapsedTime_v2(float *ms, CUevent start, CUevent end)
{
    REQUIRE_INIT();
    if (!ms) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!emu_event_valid(start) || !emu_event_valid(end)) {
        return CUDA_ERROR_INVALID_HANDLE;
    }
    return map_status(emu_event_elapsed(start, end, ms));
}

EXPORT CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) { return cuEventElapsedTime_v2(ms, start, end); }

/* ---------------------------------------------------------------- modules: not emulated */

typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;

EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    REQUIRE_INIT();
    if (!module || !image) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *module = NULL;
    return CUDA_ERROR_NOT_SUPPORTED;
}

EXPORT CUresult cuModuleUnload(CUmodule hmod)
{
    REQUIRE_INIT();
    (void)hmod;
    return CUDA_ERROR_INVALID_HANDLE; /* no module was ever loaded */
}

EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    REQUIRE_INIT();
    (void)hmod;
    if (!hfunc || !name) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    *hfunc = NULL;
    return CUDA_ERROR_INVALID_HANDLE;
}

EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                               unsigned int by, unsigned int bz, unsigned int shared, CUstream h, void **params,
                               void **extra)
{
    REQUIRE_INIT();
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared; (void)h; (void)params; (void)extra;
    return CUDA_ERROR_INVALID_HANDLE;
}

/* ---------------------------------------------------------------- errors */

typedef struct err_text {
    CUresult code;
    const char *name, *text;
} err_text;

static const err_text k_errors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_MAP_FAILED, "CUDA_ERROR_MAP_FAILED", "mapping of buffer object failed"},
    {CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED",
     "peer access is not supported between these two devices"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED",
     "peer access is already enabled"},
    {CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED", "peer access has not been enabled"},
    {CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE",
     "cannot set while device is active in this process"},
    {CUDA_ERROR_CONTEXT_IS_DESTROYED, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
    {CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
     "part or all of the requested memory range is already mapped"},
    {CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
     "pointer does not correspond to a registered memory region"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_TIMEOUT, "CUDA_ERROR_TIMEOUT", "timeout occurred"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

static const err_text *find_error(CUresult code)
{
    for (size_t i = 0; i < sizeof k_errors / sizeof k_errors[0]; i++) {
        if (k_errors[i].code == code) {
            return &k_errors[i];
        }
    }
    return NULL;
}

EXPORT CUresult cuGetErrorName(CUresult error, const char **str)
{
    if (!str) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    const err_text *e = find_error(error);
    *str = e ? e->name : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuGetErrorString(CUresult error, const char **str)
{
    if (!str) {
        return CUDA_ERROR_INVALID_VALUE;
    }
    const err_text *e = find_error(error);
    *str = e ? e->text : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---------------------------------------------------------------- emulator control (not part of CUDA) */

EXPORT int ebemu_set_fault(const char *name, long long value) { return emu_fault_set(name, value); }

EXPORT void ebemu_reset_faults(void) { emu_fault_reset(); }

EXPORT int ebemu_get_stat(const char *name, long long *value) { return emu_stat(name, value); }

EXPORT const char *ebemu_identify(void) { return "ExpertBridge CUDA driver emulator (host memory)"; }
