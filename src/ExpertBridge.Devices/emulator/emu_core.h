/*
 * ExpertBridge device EMULATOR: shared core of libeb_cuda_emulator.so and libeb_acl_emulator.so.
 *
 * This is NOT a driver. It emulates, on host memory, the small part of an accelerator runtime that ExpertBridge
 * uses (devices with memory limits, contexts, in-order streams run by one worker thread each, events with timing,
 * copies, IPC handles) so that CI without accelerators runs the real generated bindings and the real backend code.
 * Each device's memory is one shared-memory arena (memfd, mapped once, never unmapped), which makes IPC handles
 * work across processes and keeps late writes of abandoned work harmless.
 *
 * Fault injection (environment at load time, or ebemu_set_fault() at run time; names without the EB_EMU_ prefix):
 *   EB_EMU_FAIL_COPY_NTH=n     the n-th copy (1-based, counted from when the knob was set) fails: half its bytes are
 *                              written, then the error is reported (sync copy: returned; async: by the next event
 *                              recorded on that stream, which reports the failures since the previous one, and by
 *                              the next synchronize/query of the stream)
 *   EB_EMU_FAIL_COPY_COUNT=k   how many consecutive copies fail from the n-th on (default 1; -1 = all)
 *   EB_EMU_FAIL_COPY_CODE=c    vendor error code of an injected copy failure (default: the vendor's "unknown" error)
 *   EB_EMU_OOM_ALLOC_NTH=n     the n-th device allocation fails with the vendor's out-of-memory code
 *   EB_EMU_COPY_DELAY_US=us    every copy takes at least this long
 *   EB_EMU_STALL_COPY_NTH=n    the n-th copy blocks until the knob is cleared or ebemu_reset_faults() (timeouts)
 *   EB_EMU_NO_PEER=1           devices cannot access each other (peer copies still work, staged, as on real drivers)
 * Devices: EB_EMU_DEVICES (default 2, at most 16), EB_EMU_DEVICE_MEMORY (bytes per device with optional K/M/G
 * suffix, default 1G; a comma list gives each device its own limit).
 */
#ifndef EB_EMU_CORE_H
#define EB_EMU_CORE_H

#include <stddef.h>
#include <stdint.h>

#define EMU_MAX_DEVICES 16
#define EMU_IPC_HANDLE_BYTES 64

/* Vendor-neutral status; each API file maps it to its own codes. */
typedef enum emu_status {
    EMU_OK = 0,
    EMU_E_INVALID_VALUE,    /* bad argument or pointer range */
    EMU_E_OUT_OF_MEMORY,    /* device arena full or injected */
    EMU_E_INVALID_DEVICE,   /* ordinal out of range */
    EMU_E_INVALID_CONTEXT,  /* no current context / destroyed context */
    EMU_E_INVALID_HANDLE,   /* unknown or destroyed stream / event, event without timing */
    EMU_E_NOT_READY,        /* work pending */
    EMU_E_INJECTED,         /* injected copy failure */
    EMU_E_PEER_UNSUPPORTED, /* peer access not possible */
    EMU_E_PEER_ENABLED,     /* peer access already enabled */
    EMU_E_PEER_NOT_ENABLED, /* peer access not enabled */
    EMU_E_MAP_FAILED,       /* IPC import failed */
    EMU_E_NOT_INITIALIZED,
    EMU_E_NO_DEVICE,
    EMU_E_SYSTEM            /* OS call failed */
} emu_status;

typedef struct emu_ctx emu_ctx;
typedef struct emu_stream emu_stream;
typedef struct emu_event emu_event;

struct emu_ctx {
    uint32_t magic;
    int device;
    int primary;           /* the device's primary (CUDA) / default (ACL) context */
    int retains;           /* primary: retain count */
    unsigned flags;
    uint32_t peer_mask;    /* peers this context may access */
    emu_stream *default_stream;
};

/* Library lifetime. */
emu_status emu_initialize(void);             /* idempotent; reads the device environment on first call */
int emu_initialized(void);
int emu_device_count(void);
size_t emu_device_total(int device);
size_t emu_device_used(int device);
void emu_device_name(int device, const char *family, char *out, size_t len);
int emu_can_access_peer(int device, int peer);

/* Contexts (explicit objects; the per-thread current context lives in each API file). */
emu_ctx *emu_ctx_create(int device, int primary, unsigned flags);
int emu_ctx_valid(const emu_ctx *ctx);
void emu_ctx_destroy(emu_ctx *ctx);          /* frees its allocations, abandons its streams */
emu_stream *emu_ctx_default_stream(emu_ctx *ctx);

/* Device and pinned host memory. Pointers handed out are host addresses. */
emu_status emu_mem_alloc(emu_ctx *ctx, size_t bytes, size_t accounted, void **out);
emu_status emu_mem_free(void *ptr);
emu_status emu_mem_range(const void *ptr, void **base, size_t *size, int *device); /* device allocation holding ptr */
/* Device ordinal holding [ptr, ptr+n), -1 when the range is host memory, -2 when it straddles a device allocation. */
int emu_mem_device_of(const void *ptr, size_t n);
emu_status emu_host_alloc(size_t bytes, unsigned flags, void **out);
emu_status emu_host_free(void *ptr);
int emu_host_is_pinned(const void *ptr);
emu_status emu_host_register(void *ptr, size_t bytes);
emu_status emu_host_unregister(void *ptr);

/* IPC: 64-byte handles naming (pid, device arena, offset, size). Same-process import is allowed (tests). */
emu_status emu_ipc_export(const void *ptr, unsigned char handle[EMU_IPC_HANDLE_BYTES]);
emu_status emu_ipc_import(const unsigned char handle[EMU_IPC_HANDLE_BYTES], void **out, int *device);
emu_status emu_ipc_close(void *ptr);
/* The same as a text key of at most 64 characters (AscendCL style): "ebemu:pid:fd:device:offset:size:arena". */
emu_status emu_ipc_export_key(const void *ptr, char *key, size_t len);
emu_status emu_ipc_import_key(const char *key, void **out);
emu_status emu_ipc_close_key(const char *key);

/* Copies and fills. Synchronous ones run on the calling thread and honour faults and delays. */
emu_status emu_copy_sync(void *dst, const void *src, size_t n);
emu_status emu_fill_sync(void *dst, int value, size_t n);

/* Streams: in-order queues, one worker thread each. */
emu_stream *emu_stream_create(emu_ctx *ctx, unsigned flags, int priority);
int emu_stream_valid(const emu_stream *s);
emu_ctx *emu_stream_ctx(const emu_stream *s);
int emu_stream_priority(const emu_stream *s);
unsigned emu_stream_flags(const emu_stream *s);
void emu_stream_destroy(emu_stream *s);      /* returns at once; queued work still runs */
emu_status emu_stream_synchronize(emu_stream *s);  /* reports (and clears) the stream's first async error */
emu_status emu_stream_query(emu_stream *s);
void emu_device_synchronize(int device);
emu_status emu_stream_copy(emu_stream *s, void *dst, const void *src, size_t n);
emu_status emu_stream_fill(emu_stream *s, void *dst, int value, size_t n);
emu_status emu_stream_record(emu_stream *s, emu_event *e);
emu_status emu_stream_wait(emu_stream *s, emu_event *e);

/* Events. */
#define EMU_EVENT_DISABLE_TIMING 0x1u
emu_event *emu_event_create(emu_ctx *ctx, unsigned flags);
int emu_event_valid(const emu_event *e);
void emu_event_destroy(emu_event *e);
emu_status emu_event_query(emu_event *e);    /* EMU_OK when done (or never recorded), EMU_E_NOT_READY, or the error */
emu_status emu_event_synchronize(emu_event *e);
emu_status emu_event_elapsed(emu_event *start, emu_event *end, float *ms);

/* Faults and statistics (also exported to callers through ebemu_*). */
int emu_fault_set(const char *name, long long value);
void emu_fault_reset(void);
long long emu_fault_code(void);              /* EB_EMU_FAIL_COPY_CODE, 0 when unset */
int emu_stat(const char *name, long long *value);

#endif
