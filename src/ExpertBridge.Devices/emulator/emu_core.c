/*
 * ExpertBridge device EMULATOR: shared core (devices, memory arenas, streams, events, IPC, fault injection).
 * Host memory only; see emu_core.h for what it emulates and the fault-injection knobs.
 */
#define _GNU_SOURCE
#include "emu_core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EMU_ALIGN ((size_t)512)
#define MAGIC_CTX 0xEB0C7C7Cu
#define MAGIC_STREAM 0xEB05713Au
#define MAGIC_EVENT 0xEB0E7E47u
#define IPC_MAGIC "EBEMUIPC"

/* ---------------------------------------------------------------- small helpers */

typedef struct ptr_set {
    void **items;
    size_t count, cap;
} ptr_set;

static int set_add(ptr_set *s, void *p)
{
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void **items = realloc(s->items, cap * sizeof(void *));
        if (!items) {
            return 0;
        }
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = p;
    return 1;
}

static int set_has(const ptr_set *s, const void *p)
{
    for (size_t i = 0; i < s->count; i++) {
        if (s->items[i] == p) {
            return 1;
        }
    }
    return 0;
}

static void set_remove(ptr_set *s, const void *p)
{
    for (size_t i = 0; i < s->count; i++) {
        if (s->items[i] == p) {
            s->items[i] = s->items[--s->count];
            return;
        }
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_us(long long us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Parses "123", "64K", "512M", "2G" (binary units). Returns 0 on error. */
static size_t parse_size(const char *text)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text) {
        return 0;
    }
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B') {
        end++;
    }
    if (*end == 'B') {
        end++;
    }
    return (*end == '\0' || *end == ',') ? (size_t)v : 0;
}

/* ---------------------------------------------------------------- global state */

typedef struct emu_block {
    size_t off, size;
    emu_ctx *owner;
} emu_block;

typedef struct emu_device {
    size_t total, used;
    int fd;
    unsigned char *base;
    emu_block *blocks; /* sorted by off */
    size_t nblocks, cap;
} emu_device;

typedef struct host_region {
    unsigned char *p;
    size_t n;
    int registered; /* 0: allocated by us, 1: caller's memory registered */
} host_region;

typedef struct ipc_map {
    int pid, fd, device;
    unsigned char *base;
    size_t bytes;
    int refs;
} ipc_map;

typedef struct ipc_import {
    unsigned char *p;
    size_t n;
    ipc_map *map;
} ipc_import;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_event_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_fault_cv = PTHREAD_COND_INITIALIZER;
static int g_initialized;
static int g_device_count;
static emu_device g_devices[EMU_MAX_DEVICES];
static ptr_set g_ctxs, g_streams, g_events;
static host_region *g_host;
static size_t g_nhost, g_caphost;
static ipc_map *g_maps[64];
static ipc_import *g_imports;
static size_t g_nimports, g_capimports;

static struct {
    long long fail_copy_nth, fail_copy_count, fail_copy_code, oom_alloc_nth, copy_delay_us, stall_copy_nth, no_peer;
    long long copies_seen, allocs_seen;
    long long stall_epoch;
} g_fault = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0};

static struct {
    long long copies, copy_bytes, allocations_total;
} g_stats;

static long long env_ll(const char *name, long long fallback)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return fallback;
    }
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    return (end && *end == '\0') ? x : fallback;
}

__attribute__((constructor)) static void emu_read_fault_environment(void)
{
    g_fault.fail_copy_nth = env_ll("EB_EMU_FAIL_COPY_NTH", 0);
    g_fault.fail_copy_count = env_ll("EB_EMU_FAIL_COPY_COUNT", 1);
    g_fault.fail_copy_code = env_ll("EB_EMU_FAIL_COPY_CODE", 0);
    g_fault.oom_alloc_nth = env_ll("EB_EMU_OOM_ALLOC_NTH", 0);
    g_fault.copy_delay_us = env_ll("EB_EMU_COPY_DELAY_US", 0);
    g_fault.stall_copy_nth = env_ll("EB_EMU_STALL_COPY_NTH", 0);
    g_fault.no_peer = env_ll("EB_EMU_NO_PEER", 0);
}

emu_status emu_initialize(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_initialized) {
        long long n = env_ll("EB_EMU_DEVICES", 2);
        if (n < 0 || n > EMU_MAX_DEVICES) {
            n = 2;
        }
        g_device_count = (int)n;
        const char *mem = getenv("EB_EMU_DEVICE_MEMORY");
        size_t last = (size_t)1 << 30;
        for (int d = 0; d < g_device_count; d++) {
            if (mem && *mem) {
                size_t v = parse_size(mem);
                if (v > 0) {
                    last = v;
                }
                const char *comma = strchr(mem, ',');
                mem = comma ? comma + 1 : NULL;
            }
            g_devices[d].total = round_up(last, EMU_ALIGN);
            g_devices[d].fd = -1;
        }
        g_initialized = 1;
    }
    pthread_mutex_unlock(&g_lock);
    return EMU_OK;
}

int emu_initialized(void) { return g_initialized; }

int emu_device_count(void) { return g_device_count; }

size_t emu_device_total(int device) { return (device >= 0 && device < g_device_count) ? g_devices[device].total : 0; }

size_t emu_device_used(int device)
{
    if (device < 0 || device >= g_device_count) {
        return 0;
    }
    pthread_mutex_lock(&g_lock);
    size_t used = g_devices[device].used;
    pthread_mutex_unlock(&g_lock);
    return used;
}

void emu_device_name(int device, const char *family, char *out, size_t len)
{
    if (out && len > 0) {
        snprintf(out, len, "ExpertBridge %s emulator device %d", family, device);
    }
}

int emu_can_access_peer(int device, int peer)
{
    return device != peer && device >= 0 && peer >= 0 && device < g_device_count && peer < g_device_count &&
           !g_fault.no_peer;
}

/* ---------------------------------------------------------------- faults */

typedef struct copy_fate {
    int fail;
    int stall;
    long long stall_epoch;
    long long delay_us;
} copy_fate;

/* Decides what happens to the next copy; called once per copy, in API-call order. */
static copy_fate next_copy_fate(void)
{
    copy_fate f = {0, 0, 0, 0};
    pthread_mutex_lock(&g_lock);
    long long c = ++g_fault.copies_seen;
    long long nth = g_fault.fail_copy_nth;
    long long count = g_fault.fail_copy_count;
    f.fail = nth > 0 && c >= nth && (count < 0 || c < nth + count);
    f.stall = g_fault.stall_copy_nth > 0 && c == g_fault.stall_copy_nth;
    f.stall_epoch = g_fault.stall_epoch;
    f.delay_us = g_fault.copy_delay_us;
    pthread_mutex_unlock(&g_lock);
    return f;
}

static void wait_while_stalled(long long epoch)
{
    pthread_mutex_lock(&g_lock);
    while (g_fault.stall_epoch == epoch) {
        pthread_cond_wait(&g_fault_cv, &g_lock);
    }
    pthread_mutex_unlock(&g_lock);
}

int emu_fault_set(const char *name, long long value)
{
    if (!name) {
        return -1;
    }
    if (strncmp(name, "EB_EMU_", 7) == 0) {
        name += 7;
    }
    int ok = 1;
    pthread_mutex_lock(&g_lock);
    if (strcmp(name, "FAIL_COPY_NTH") == 0) {
        g_fault.fail_copy_nth = value;
        g_fault.copies_seen = 0;
    } else if (strcmp(name, "FAIL_COPY_COUNT") == 0) {
        g_fault.fail_copy_count = value;
    } else if (strcmp(name, "FAIL_COPY_CODE") == 0) {
        g_fault.fail_copy_code = value;
    } else if (strcmp(name, "OOM_ALLOC_NTH") == 0) {
        g_fault.oom_alloc_nth = value;
        g_fault.allocs_seen = 0;
    } else if (strcmp(name, "COPY_DELAY_US") == 0) {
        g_fault.copy_delay_us = value;
    } else if (strcmp(name, "STALL_COPY_NTH") == 0) {
        g_fault.stall_copy_nth = value;
        g_fault.copies_seen = 0;
        g_fault.stall_epoch++;
        pthread_cond_broadcast(&g_fault_cv);
    } else if (strcmp(name, "NO_PEER") == 0) {
        g_fault.no_peer = value;
    } else {
        ok = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return ok ? 0 : -1;
}

void emu_fault_reset(void)
{
    pthread_mutex_lock(&g_lock);
    long long epoch = g_fault.stall_epoch + 1;
    memset(&g_fault, 0, sizeof g_fault);
    g_fault.fail_copy_count = 1;
    g_fault.stall_epoch = epoch;
    pthread_cond_broadcast(&g_fault_cv);
    pthread_mutex_unlock(&g_lock);
}

long long emu_fault_code(void) { return g_fault.fail_copy_code; }

static int next_alloc_fails(void)
{
    /* caller holds g_lock */
    long long a = ++g_fault.allocs_seen;
    return g_fault.oom_alloc_nth > 0 && a == g_fault.oom_alloc_nth;
}

/* ---------------------------------------------------------------- contexts */

emu_ctx *emu_ctx_create(int device, int primary, unsigned flags)
{
    if (device < 0 || device >= g_device_count) {
        return NULL;
    }
    emu_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    c->magic = MAGIC_CTX;
    c->device = device;
    c->primary = primary;
    c->flags = flags;
    pthread_mutex_lock(&g_lock);
    int ok = set_add(&g_ctxs, c);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(c);
        return NULL;
    }
    return c;
}

int emu_ctx_valid(const emu_ctx *ctx)
{
    if (!ctx) {
        return 0;
    }
    pthread_mutex_lock(&g_lock);
    int ok = set_has(&g_ctxs, ctx);
    pthread_mutex_unlock(&g_lock);
    return ok;
}

static void stream_close_locked(emu_stream *s);

void emu_ctx_destroy(emu_ctx *ctx)
{
    pthread_mutex_lock(&g_lock);
    if (!set_has(&g_ctxs, ctx)) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    set_remove(&g_ctxs, ctx);
    /* Abandon the context's streams: queued work still runs; arenas stay mapped, so late writes are harmless. */
    for (size_t i = 0; i < g_streams.count;) {
        emu_stream *s = g_streams.items[i];
        if (emu_stream_ctx(s) == ctx) {
            set_remove(&g_streams, s);
            stream_close_locked(s);
        } else {
            i++;
        }
    }
    emu_device *d = &g_devices[ctx->device];
    size_t keep = 0;
    for (size_t i = 0; i < d->nblocks; i++) {
        if (d->blocks[i].owner == ctx) {
            d->used -= d->blocks[i].size;
            fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)d->blocks[i].off,
                      (off_t)d->blocks[i].size);
        } else {
            d->blocks[keep++] = d->blocks[i];
        }
    }
    d->nblocks = keep;
    pthread_mutex_unlock(&g_lock);
    ctx->magic = 0;
    free(ctx);
}

emu_stream *emu_ctx_default_stream(emu_ctx *ctx)
{
    pthread_mutex_lock(&g_lock);
    emu_stream *s = ctx->default_stream;
    int valid = s && set_has(&g_streams, s);
    pthread_mutex_unlock(&g_lock);
    if (valid) {
        return s;
    }
    s = emu_stream_create(ctx, 0, 0);
    pthread_mutex_lock(&g_lock);
    if (ctx->default_stream && set_has(&g_streams, ctx->default_stream)) {
        /* another thread won the race */
        emu_stream *mine = s;
        s = ctx->default_stream;
        pthread_mutex_unlock(&g_lock);
        emu_stream_destroy(mine);
        return s;
    }
    ctx->default_stream = s;
    pthread_mutex_unlock(&g_lock);
    return s;
}

/* ---------------------------------------------------------------- device memory */

static int ensure_arena(emu_device *d, int ordinal)
{
    if (d->base) {
        return 1;
    }
    char name[32];
    snprintf(name, sizeof name, "ebemu-device-%d", ordinal);
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    if (ftruncate(fd, (off_t)d->total) != 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, d->total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return 0;
    }
    d->fd = fd;
    d->base = p;
    return 1;
}

emu_status emu_mem_alloc(emu_ctx *ctx, size_t bytes, size_t accounted, void **out)
{
    if (!out || bytes == 0) {
        return EMU_E_INVALID_VALUE;
    }
    size_t need = round_up(accounted > bytes ? accounted : bytes, EMU_ALIGN);
    pthread_mutex_lock(&g_lock);
    if (!set_has(&g_ctxs, ctx)) {
        pthread_mutex_unlock(&g_lock);
        return EMU_E_INVALID_CONTEXT;
    }
    emu_device *d = &g_devices[ctx->device];
    if (next_alloc_fails() || need > d->total - d->used || !ensure_arena(d, ctx->device)) {
        pthread_mutex_unlock(&g_lock);
        return EMU_E_OUT_OF_MEMORY;
    }
    size_t prev_end = 0, at = d->nblocks;
    for (size_t i = 0; i < d->nblocks; i++) {
        if (d->blocks[i].off - prev_end >= need) {
            at = i;
            break;
        }
        prev_end = d->blocks[i].off + d->blocks[i].size;
    }
    if (at == d->nblocks && d->total - prev_end < need) {
        pthread_mutex_unlock(&g_lock); /* fragmented */
        return EMU_E_OUT_OF_MEMORY;
    }
    if (d->nblocks == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        emu_block *b = realloc(d->blocks, cap * sizeof *b);
        if (!b) {
            pthread_mutex_unlock(&g_lock);
            return EMU_E_OUT_OF_MEMORY;
        }
        d->blocks = b;
        d->cap = cap;
    }
    memmove(&d->blocks[at + 1], &d->blocks[at], (d->nblocks - at) * sizeof *d->blocks);
    d->blocks[at] = (emu_block){prev_end, need, ctx};
    d->nblocks++;
    d->used += need;
    g_stats.allocations_total++;
    *out = d->base + prev_end;
    pthread_mutex_unlock(&g_lock);
    return EMU_OK;
}

/* caller holds g_lock; returns the device whose arena holds p, or -1 */
static int arena_of(const void *p)
{
    const unsigned char *c = p;
    for (int i = 0; i < g_device_count; i++) {
        emu_device *d = &g_devices[i];
        if (d->base && c >= d->base && c < d->base + d->total) {
            return i;
        }
    }
    return -1;
}

/* caller holds g_lock; index of the block holding offset, or -1 */
static long block_at(const emu_device *d, size_t off)
{
    size_t lo = 0, hi = d->nblocks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->blocks[mid].off + d->blocks[mid].size <= off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < d->nblocks && d->blocks[lo].off <= off && off < d->blocks[lo].off + d->blocks[lo].size) {
        return (long)lo;
    }
    return -1;
}

emu_status emu_mem_free(void *ptr)
{
    pthread_mutex_lock(&g_lock);
    int dev = arena_of(ptr);
    if (dev < 0) {
        pthread_mutex_unlock(&g_lock);
        return EMU_E_INVALID_VALUE;
    }
    emu_device *d = &g_devices[dev];
    size_t off = (size_t)((unsigned char *)ptr - d->base);
    long i = block_at(d, off);
    if (i < 0 || d->blocks[i].off != off) {
        pthread_mutex_unlock(&g_lock);
        return EMU_E_INVALID_VALUE;
    }
    size_t size = d->blocks[i].size;
    memmove(&d->blocks[i], &d->blocks[i + 1], (d->nblocks - (size_t)i - 1) * sizeof *d->blocks);
    d->nblocks--;
    d->used -= size;
    /* give the pages back, as a driver would; the range reads as zeros if reused */
    fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)size);
    pthread_mutex_unlock(&g_lock);
    return EMU_OK;
}

emu_status emu_mem_range(const void *ptr, void **base, size_t *size, int *device)
{
    pthread_mutex_lock(&g_lock);
    int dev = arena_of(ptr);
    long i = -1;
    if (dev >= 0) {
        emu_device *d = &g_devices[dev];
        i = block_at(d, (size_t)((const unsigned char *)ptr - d->base));
        if (i >= 0) {
            if (base) {
                *base = d->base + d->blocks[i].off;
            }
            if (size) {
                *size = d->blocks[i].size;
            }
            if (device) {
                *device = dev;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return i >= 0 ? EMU_OK : EMU_E_INVALID_VALUE;
}

int emu_mem_device_of(const void *ptr, size_t n)
{
    const unsigned char *c = ptr;
    int result = -1;
    pthread_mutex_lock(&g_lock);
    int dev = arena_of(ptr);
    if (dev >= 0) {
        emu_device *d = &g_devices[dev];
        long i = block_at(d, (size_t)(c - d->base));
        result = (i >= 0 && c + n <= d->base + d->blocks[i].off + d->blocks[i].size) ? dev : -2;
    } else {
        for (size_t k = 0; k < g_nimports; k++) {
            ipc_import *im = &g_imports[k];
            if (c >= im->p && c < im->p + im->n) {
                result = (c + n <= im->p + im->n) ? im->map->device : -2;
                break;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return result;
}

/* ---------------------------------------------------------------- pinned host memory */

static int host_add(unsigned char *p, size_t n, int registered)
{
    if (g_nhost == g_caphost) {
        size_t cap = g_caphost ? g_caphost * 2 : 32;
        host_region *r = realloc(g_host, cap * sizeof *r);
        if (!r) {
            return 0;
        }
        g_host = r;
        g_caphost = cap;
    }
    g_host[g_nhost++] = (host_region){p, n, registered};
    return 1;
}

static long host_find(const void *p, int registered)
{
    for (size_t i = 0; i < g_nhost; i++) {
        if (g_host[i].p == p && g_host[i].registered == registered) {
            return (long)i;
        }
    }
    return -1;
}

emu_status emu_host_alloc(size_t bytes, unsigned flags, void **out)
{
    (void)flags;
    if (!out || bytes == 0) {
        return EMU_E_INVALID_VALUE;
    }
    void *p = NULL;
    if (posix_memalign(&p, 4096, round_up(bytes, 4096)) != 0) {
        return EMU_E_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&g_lock);
    int ok = host_add(p, bytes, 0);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(p);
        return EMU_E_OUT_OF_MEMORY;
    }
    *out = p;
    return EMU_OK;
}

emu_status emu_host_free(void *ptr)
{
    pthread_mutex_lock(&g_lock);
    long i = host_find(ptr, 0);
    if (i >= 0) {
        g_host[i] = g_host[--g_nhost];
    }
    pthread_mutex_unlock(&g_lock);
    if (i < 0) {
        return EMU_E_INVALID_VALUE;
    }
    free(ptr);
    return EMU_OK;
}

int emu_host_is_pinned(const void *ptr)
{
    const unsigned char *c = ptr;
    int found = 0;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_nhost && !found; i++) {
        found = c >= g_host[i].p && c < g_host[i].p + g_host[i].n;
    }
    pthread_mutex_unlock(&g_lock);
    return found;
}

emu_status emu_host_register(void *ptr, size_t bytes)
{
    if (!ptr || bytes == 0) {
        return EMU_E_INVALID_VALUE;
    }
    pthread_mutex_lock(&g_lock);
    int ok = host_find(ptr, 1) < 0 && host_find(ptr, 0) < 0 && host_add(ptr, bytes, 1);
    pthread_mutex_unlock(&g_lock);
    return ok ? EMU_OK : EMU_E_INVALID_VALUE;
}

emu_status emu_host_unregister(void *ptr)
{
    pthread_mutex_lock(&g_lock);
    long i = host_find(ptr, 1);
    if (i >= 0) {
        g_host[i] = g_host[--g_nhost];
    }
    pthread_mutex_unlock(&g_lock);
    return i >= 0 ? EMU_OK : EMU_E_INVALID_VALUE;
}

/* ---------------------------------------------------------------- IPC */

typedef struct ipc_wire {
    char magic[8];
    int32_t pid, fd, device, reserved;
    uint64_t offset, size, arena;
} ipc_wire;

_Static_assert(sizeof(ipc_wire) <= EMU_IPC_HANDLE_BYTES, "IPC wire format must fit the handle");

emu_status emu_ipc_export(const void *ptr, unsigned char handle[EMU_IPC_HANDLE_BYTES])
{
    pthread_mutex_lock(&g_lock);
    int dev = arena_of(ptr);
    long i = -1;
    emu_device *d = NULL;
    if (dev >= 0) {
        d = &g_devices[dev];
        i = block_at(d, (size_t)((const unsigned char *)ptr - d->base));
    }
    if (i < 0 || d->blocks[i].off != (size_t)((const unsigned char *)ptr - d->base)) {
        pthread_mutex_unlock(&g_lock); /* must be the base of an allocation, as on CUDA */
        return EMU_E_INVALID_VALUE;
    }
    ipc_wire w;
    memset(&w, 0, sizeof w);
    memcpy(w.magic, IPC_MAGIC, 8);
    w.pid = (int32_t)getpid();
    w.fd = d->fd;
    w.device = dev;
    w.offset = d->blocks[i].off;
    w.size = d->blocks[i].size;
    w.arena = d->total;
    pthread_mutex_unlock(&g_lock);
    memset(handle, 0, EMU_IPC_HANDLE_BYTES);
    memcpy(handle, &w, sizeof w);
    return EMU_OK;
}

emu_status emu_ipc_import(const unsigned char handle[EMU_IPC_HANDLE_BYTES], void **out, int *device)
{
    ipc_wire w;
    memcpy(&w, handle, sizeof w);
    if (memcmp(w.magic, IPC_MAGIC, 8) != 0 || w.offset + w.size > w.arena) {
        return EMU_E_INVALID_VALUE;
    }
    pthread_mutex_lock(&g_lock);
    ipc_map *map = NULL;
    size_t slot = 64;
    for (size_t i = 0; i < 64; i++) {
        if (g_maps[i] && g_maps[i]->pid == w.pid && g_maps[i]->fd == w.fd) {
            map = g_maps[i];
            break;
        }
        if (!g_maps[i] && slot == 64) {
            slot = i;
        }
    }
    if (!map) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)w.pid, (int)w.fd);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        void *p = MAP_FAILED;
        if (fd >= 0) {
            p = mmap(NULL, (size_t)w.arena, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
            close(fd);
        }
        map = (p != MAP_FAILED && slot < 64) ? calloc(1, sizeof *map) : NULL;
        if (!map) {
            if (p != MAP_FAILED) {
                munmap(p, (size_t)w.arena);
            }
            pthread_mutex_unlock(&g_lock);
            return EMU_E_MAP_FAILED;
        }
        *map = (ipc_map){w.pid, w.fd, w.device, p, (size_t)w.arena, 0};
        g_maps[slot] = map;
    }
    if (g_nimports == g_capimports) {
        size_t cap = g_capimports ? g_capimports * 2 : 16;
        ipc_import *im = realloc(g_imports, cap * sizeof *im);
        if (!im) {
            pthread_mutex_unlock(&g_lock);
            return EMU_E_OUT_OF_MEMORY;
        }
        g_imports = im;
        g_capimports = cap;
    }
    map->refs++;
    g_imports[g_nimports++] = (ipc_import){map->base + w.offset, (size_t)w.size, map};
    *out = map->base + w.offset;
    if (device) {
        *device = map->device;
    }
    pthread_mutex_unlock(&g_lock);
    return EMU_OK;
}

emu_status emu_ipc_close(void *ptr)
{
    pthread_mutex_lock(&g_lock);
    for (size_t k = 0; k < g_nimports; k++) {
        if (g_imports[k].p == ptr) {
            ipc_map *map = g_imports[k].map;
            g_imports[k] = g_imports[--g_nimports];
            if (--map->refs == 0) {
                for (size_t i = 0; i < 64; i++) {
                    if (g_maps[i] == map) {
                        g_maps[i] = NULL;
                    }
                }
                munmap(map->base, map->bytes);
                free(map);
            }
            pthread_mutex_unlock(&g_lock);
            return EMU_OK;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return EMU_E_INVALID_VALUE;
}

static int parse_key(const char *key, ipc_wire *w)
{
    long long pid, fd, dev;
    unsigned long long off, size, arena;
    int used = 0;
    if (!key || sscanf(key, "ebemu:%lld:%lld:%lld:%llu:%llu:%llu%n", &pid, &fd, &dev, &off, &size, &arena, &used) != 6 ||
        key[used] != '\0') {
        return 0;
    }
    memset(w, 0, sizeof *w);
    memcpy(w->magic, IPC_MAGIC, 8);
    w->pid = (int32_t)pid;
    w->fd = (int32_t)fd;
    w->device = (int32_t)dev;
    w->offset = off;
    w->size = size;
    w->arena = arena;
    return 1;
}

emu_status emu_ipc_export_key(const void *ptr, char *key, size_t len)
{
    unsigned char handle[EMU_IPC_HANDLE_BYTES];
    emu_status st = emu_ipc_export(ptr, handle);
    if (st != EMU_OK) {
        return st;
    }
    ipc_wire w;
    memcpy(&w, handle, sizeof w);
    int n = snprintf(key, len, "ebemu:%d:%d:%d:%llu:%llu:%llu", (int)w.pid, (int)w.fd, (int)w.device,
                     (unsigned long long)w.offset, (unsigned long long)w.size, (unsigned long long)w.arena);
    return (n > 0 && (size_t)n < len) ? EMU_OK : EMU_E_INVALID_VALUE;
}

emu_status emu_ipc_import_key(const char *key, void **out)
{
    ipc_wire w;
    if (!parse_key(key, &w)) {
        return EMU_E_INVALID_VALUE;
    }
    unsigned char handle[EMU_IPC_HANDLE_BYTES];
    memset(handle, 0, sizeof handle);
    memcpy(handle, &w, sizeof w);
    return emu_ipc_import(handle, out, NULL);
}

emu_status emu_ipc_close_key(const char *key)
{
    ipc_wire w;
    if (!parse_key(key, &w)) {
        return EMU_E_INVALID_VALUE;
    }
    void *ptr = NULL;
    pthread_mutex_lock(&g_lock);
    for (size_t k = 0; k < g_nimports && !ptr; k++) {
        ipc_map *m = g_imports[k].map;
        if (m->pid == w.pid && m->fd == w.fd && g_imports[k].p == m->base + w.offset) {
            ptr = g_imports[k].p;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return ptr ? emu_ipc_close(ptr) : EMU_E_INVALID_VALUE;
}

/* ---------------------------------------------------------------- copies */

static emu_status run_copy(void *dst, const void *src, size_t n, copy_fate f)
{
    if (f.delay_us > 0) {
        sleep_us(f.delay_us);
    }
    if (f.stall) {
        wait_while_stalled(f.stall_epoch);
    }
    if (f.fail) {
        memmove(dst, src, n / 2); /* a torn copy: the first half landed */
        return EMU_E_INJECTED;
    }
    memmove(dst, src, n);
    pthread_mutex_lock(&g_lock);
    g_stats.copies++;
    g_stats.copy_bytes += (long long)n;
    pthread_mutex_unlock(&g_lock);
    return EMU_OK;
}

emu_status emu_copy_sync(void *dst, const void *src, size_t n)
{
    if (n == 0) {
        return EMU_OK;
    }
    return run_copy(dst, src, n, next_copy_fate());
}

emu_status emu_fill_sync(void *dst, int value, size_t n)
{
    memset(dst, value, n);
    return EMU_OK;
}

/* ---------------------------------------------------------------- events */

struct emu_event {
    uint32_t magic;
    int device;
    unsigned flags;
    int refs; /* the handle plus every queued record/wait */
    uint64_t recorded_gen, done_gen;
    int64_t t_ns;
    emu_status error;
};

emu_event *emu_event_create(emu_ctx *ctx, unsigned flags)
{
    emu_event *e = calloc(1, sizeof *e);
    if (!e) {
        return NULL;
    }
    e->magic = MAGIC_EVENT;
    e->device = ctx ? ctx->device : 0;
    e->flags = flags;
    e->refs = 1;
    pthread_mutex_lock(&g_lock);
    int ok = set_add(&g_events, e);
    pthread_mutex_unlock(&g_lock);
    if (!ok) {
        free(e);
        return NULL;
    }
    return e;
}

int emu_event_valid(const emu_event *e)
{
    if (!e) {
        return 0;
    }
    pthread_mutex_lock(&g_lock);
    int ok = set_has(&g_events, e);
    pthread_mutex_unlock(&g_lock);
    return ok;
}

/* caller holds g_lock */
static void event_unref_locked(emu_event *e)
{
    if (--e->refs == 0) {
        e->magic = 0;
        free(e);
    }
}

void emu_event_destroy(emu_event *e)
{
    pthread_mutex_lock(&g_lock);
    if (set_has(&g_events, e)) {
        set_remove(&g_events, e);
        event_unref_locked(e);
    }
    pthread_mutex_unlock(&g_lock);
}

emu_status emu_event_query(emu_event *e)
{
    pthread_mutex_lock(&g_lock);
    emu_status st = (e->done_gen >= e->recorded_gen) ? e->error : EMU_E_NOT_READY;
    pthread_mutex_unlock(&g_lock);
    return st;
}

emu_status emu_event_synchronize(emu_event *e)
{
    pthread_mutex_lock(&g_lock);
    while (e->done_gen < e->recorded_gen) {
        pthread_cond_wait(&g_event_cv, &g_lock);
    }
    emu_status st = e->error;
    pthread_mutex_unlock(&g_lock);
    return st;
}

emu_status emu_event_elapsed(emu_event *start, emu_event *end, float *ms)
{
    if (!ms) {
        return EMU_E_INVALID_VALUE;
    }
    pthread_mutex_lock(&g_lock);
    emu_status st = EMU_OK;
    if (((start->flags | end->flags) & EMU_EVENT_DISABLE_TIMING) != 0 || start->recorded_gen == 0 ||
        end->recorded_gen == 0) {
        st = EMU_E_INVALID_HANDLE;
    } else if (start->done_gen < start->recorded_gen || end->done_gen < end->recorded_gen) {
        st = EMU_E_NOT_READY;
    } else {
        *ms = (float)((double)(end->t_ns - start->t_ns) / 1e6);
    }
    pthread_mutex_unlock(&g_lock);
    return st;
}

/* ---------------------------------------------------------------- streams */

typedef enum op_kind { OP_COPY, OP_FILL, OP_RECORD, OP_WAIT } op_kind;

typedef struct emu_op {
    struct emu_op *next;
    op_kind kind;
    void *dst;
    const void *src;
    size_t n;
    int value;
    copy_fate fate;
    emu_event *event;
    uint64_t gen;
} emu_op;

struct emu_stream {
    uint32_t magic;
    emu_ctx *ctx;
    unsigned flags;
    int priority;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    emu_op *head, *tail;
    size_t pending;
    int closing;
    emu_status error;      /* first failure since the last synchronize/query */
    emu_status mark_error; /* first failure since the previous event recorded on this stream */
    pthread_t thread;
};

static void run_op(emu_stream *s, emu_op *op)
{
    emu_status st = EMU_OK;
    switch (op->kind) {
    case OP_COPY:
        st = run_copy(op->dst, op->src, op->n, op->fate);
        break;
    case OP_FILL:
        memset(op->dst, op->value, op->n);
        break;
    case OP_RECORD: {
        pthread_mutex_lock(&s->mu);
        emu_status err = s->mark_error; /* an event reports the failures of the work since the previous event */
        s->mark_error = EMU_OK;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&g_lock);
        if (op->gen > op->event->done_gen) {
            op->event->done_gen = op->gen;
            op->event->t_ns = now_ns();
            op->event->error = err;
        }
        event_unref_locked(op->event);
        pthread_cond_broadcast(&g_event_cv);
        pthread_mutex_unlock(&g_lock);
        break;
    }
    case OP_WAIT:
        pthread_mutex_lock(&g_lock);
        while (op->event->done_gen < op->gen) {
            pthread_cond_wait(&g_event_cv, &g_lock);
        }
        event_unref_locked(op->event);
        pthread_mutex_unlock(&g_lock);
        break;
    }
    if (st != EMU_OK) {
        pthread_mutex_lock(&s->mu);
        if (s->error == EMU_OK) {
            s->error = st;
        }
        if (s->mark_error == EMU_OK) {
            s->mark_error = st;
        }
        pthread_mutex_unlock(&s->mu);
    }
}

static void *stream_worker(void *arg)
{
    emu_stream *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->closing) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (!s->head) {
            break; /* closing and drained */
        }
        emu_op *op = s->head;
        s->head = op->next;
        if (!s->head) {
            s->tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        run_op(s, op);
        free(op);
        pthread_mutex_lock(&s->mu);
        s->pending--;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    s->magic = 0;
    free(s);
    return NULL;
}

emu_stream *emu_stream_create(emu_ctx *ctx, unsigned flags, int priority)
{
    emu_stream *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->magic = MAGIC_STREAM;
    s->ctx = ctx;
    s->flags = flags;
    s->priority = priority;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&s->thread, &attr, stream_worker, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&g_lock);
    set_add(&g_streams, s);
    pthread_mutex_unlock(&g_lock);
    return s;
}

int emu_stream_valid(const emu_stream *s)
{
    if (!s) {
        return 0;
    }
    pthread_mutex_lock(&g_lock);
    int ok = set_has(&g_streams, s);
    pthread_mutex_unlock(&g_lock);
    return ok;
}

emu_ctx *emu_stream_ctx(const emu_stream *s) { return s->ctx; }

int emu_stream_priority(const emu_stream *s) { return s->priority; }

unsigned emu_stream_flags(const emu_stream *s) { return s->flags; }

static void stream_close_locked(emu_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void emu_stream_destroy(emu_stream *s)
{
    pthread_mutex_lock(&g_lock);
    if (set_has(&g_streams, s)) {
        set_remove(&g_streams, s);
        stream_close_locked(s);
    }
    pthread_mutex_unlock(&g_lock);
}

emu_status emu_stream_synchronize(emu_stream *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->pending > 0) {
        pthread_cond_wait(&s->cv, &s->mu);
    }
    emu_status st = s->error;
    s->error = EMU_OK;
    pthread_mutex_unlock(&s->mu);
    return st;
}

emu_status emu_stream_query(emu_stream *s)
{
    pthread_mutex_lock(&s->mu);
    emu_status st = EMU_E_NOT_READY;
    if (s->pending == 0) {
        st = s->error;
        s->error = EMU_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

void emu_device_synchronize(int device)
{
    for (;;) {
        emu_stream *busy = NULL;
        pthread_mutex_lock(&g_lock);
        for (size_t i = 0; i < g_streams.count && !busy; i++) {
            emu_stream *s = g_streams.items[i];
            if (s->ctx && s->ctx->device == device) {
                pthread_mutex_lock(&s->mu);
                if (s->pending > 0) {
                    busy = s;
                }
                pthread_mutex_unlock(&s->mu);
            }
        }
        if (!busy) {
            pthread_mutex_unlock(&g_lock);
            return;
        }
        pthread_mutex_lock(&busy->mu);
        pthread_mutex_unlock(&g_lock);
        while (busy->pending > 0) {
            pthread_cond_wait(&busy->cv, &busy->mu);
        }
        pthread_mutex_unlock(&busy->mu);
    }
}

static emu_status enqueue(emu_stream *s, emu_op *op)
{
    if (!op) {
        return EMU_E_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&s->mu);
    op->next = NULL;
    if (s->tail) {
        s->tail->next = op;
    } else {
        s->head = op;
    }
    s->tail = op;
    s->pending++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return EMU_OK;
}

emu_status emu_stream_copy(emu_stream *s, void *dst, const void *src, size_t n)
{
    if (n == 0) {
        return EMU_OK;
    }
    emu_op *op = calloc(1, sizeof *op);
    if (op) {
        op->kind = OP_COPY;
        op->dst = dst;
        op->src = src;
        op->n = n;
        op->fate = next_copy_fate();
    }
    return enqueue(s, op);
}

emu_status emu_stream_fill(emu_stream *s, void *dst, int value, size_t n)
{
    if (n == 0) {
        return EMU_OK;
    }
    emu_op *op = calloc(1, sizeof *op);
    if (op) {
        op->kind = OP_FILL;
        op->dst = dst;
        op->value = value;
        op->n = n;
    }
    return enqueue(s, op);
}

emu_status emu_stream_record(emu_stream *s, emu_event *e)
{
    emu_op *op = calloc(1, sizeof *op);
    if (!op) {
        return EMU_E_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&g_lock);
    op->kind = OP_RECORD;
    op->event = e;
    op->gen = ++e->recorded_gen;
    e->refs++;
    pthread_mutex_unlock(&g_lock);
    return enqueue(s, op);
}

emu_status emu_stream_wait(emu_stream *s, emu_event *e)
{
    pthread_mutex_lock(&g_lock);
    uint64_t gen = e->recorded_gen;
    if (gen == 0 || e->done_gen >= gen) {
        pthread_mutex_unlock(&g_lock); /* never recorded or already complete: nothing to wait for */
        return EMU_OK;
    }
    emu_op *op = calloc(1, sizeof *op);
    if (!op) {
        pthread_mutex_unlock(&g_lock);
        return EMU_E_OUT_OF_MEMORY;
    }
    op->kind = OP_WAIT;
    op->event = e;
    op->gen = gen;
    e->refs++;
    pthread_mutex_unlock(&g_lock);
    return enqueue(s, op);
}

/* ---------------------------------------------------------------- statistics */

int emu_stat(const char *name, long long *value)
{
    if (!name || !value) {
        return -1;
    }
    int ok = 1;
    pthread_mutex_lock(&g_lock);
    if (strcmp(name, "devices") == 0) {
        *value = g_device_count;
    } else if (strcmp(name, "allocations") == 0) {
        long long n = 0;
        for (int i = 0; i < g_device_count; i++) {
            n += (long long)g_devices[i].nblocks;
        }
        *value = n;
    } else if (strcmp(name, "device_bytes") == 0) {
        long long n = 0;
        for (int i = 0; i < g_device_count; i++) {
            n += (long long)g_devices[i].used;
        }
        *value = n;
    } else if (strcmp(name, "host_allocations") == 0) {
        *value = (long long)g_nhost;
    } else if (strcmp(name, "streams") == 0) {
        *value = (long long)g_streams.count;
    } else if (strcmp(name, "events") == 0) {
        *value = (long long)g_events.count;
    } else if (strcmp(name, "contexts") == 0) {
        *value = (long long)g_ctxs.count;
    } else if (strcmp(name, "ipc_imports") == 0) {
        *value = (long long)g_nimports;
    } else if (strcmp(name, "copies") == 0) {
        *value = g_stats.copies;
    } else if (strcmp(name, "copy_bytes") == 0) {
        *value = g_stats.copy_bytes;
    } else {
        ok = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return ok ? 0 : -1;
}
