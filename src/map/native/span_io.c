/*
 * imapfs_span_io: positional I/O of many spans of one file in one call, off the JS thread.
 *
 *   spanIo(fd, write, buffer, fileOffsets: Float64Array, lengths: Int32Array,
 *          bufferOffsets: Int32Array, count) → Promise<void>
 *
 * A cluster of the map is 32 tile rows spread over 32 image rows, so one cluster costs 32 preads;
 * from JS each costs a binding crossing and a libuv hop. Here the whole batch is one napi async
 * work item: the spans run back to back in a libuv thread-pool thread, and several batches (from
 * several requests) run in parallel in different pool threads. That is the scheduler's parallel
 * executor's source of concurrency.
 *
 * Ownership: the span arrays are copied at the call, so the caller may reuse its plan at once. The
 * data buffer is referenced (napi_ref) until the promise settles; the caller must not touch its
 * bytes before then (the scheduler's RunPlan pool guarantees it).
 *
 * Errors: a failed syscall rejects with an Error whose `code` is the errno name (EIO, ENOSPC, ...)
 * and whose `errno` is the number; a read that meets end of file rejects with code "EOF".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <node_api.h>

#include "block_fix.h"
#include "block_sums.h"
#include "io_error.h"
#include "uring.h"

/* Fewer spans than this are cheaper as preads than as a ring submission. */
#define URING_MIN_SPANS 4

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref;
  int fd;
  int write;
  uint8_t *data;
  size_t data_length;
  uint32_t count;
  double *file_offsets;
  int32_t *lengths;
  int32_t *buffer_offsets;
  int advise;      /* spanAdvise: only POSIX_FADV_WILLNEED each span; `refused` counts refusals */
  int in_pool;     /* runs on a libuv pool thread (which may use its io_uring) */
  uint32_t refused;
  int error;       /* errno of the first failure, 0 if none */
  int hit_eof;     /* a read found end of file */
  double fail_at;  /* file offset of the failure */
} Batch;

#define CHECK(call)                                                                 \
  do {                                                                              \
    if ((call) != napi_ok) {                                                        \
      napi_throw_error(env, "IMAP_E_INTERNAL", "span_io: N-API call failed: " #call); \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

static void free_batch(Batch *b) {
  free(b->file_offsets);
  free(b->lengths);
  free(b->buffer_offsets);
  free(b);
}

/*
 * A read batch whose bytes are not in the page cache would otherwise go to the disk one span at a
 * time (the spans of a cluster are rows apart in the file, so the kernel's read-ahead sees random
 * reads): the first span that would block (preadv2 RWF_NOWAIT → EAGAIN) makes us ask for all the
 * remaining spans at once (POSIX_FADV_WILLNEED starts their reads asynchronously), so the device
 * gets a deep queue instead of a depth of one. A batch already cached costs nothing extra.
 */
static void announce_rest(Batch *b, uint32_t from) {
  for (uint32_t i = from; i < b->count; i++) {
    /* Advice only: a failure just means the reads below go one at a time. */
    (void)posix_fadvise(b->fd, (off_t)b->file_offsets[i], (off_t)b->lengths[i], POSIX_FADV_WILLNEED);
  }
}

/*
 * A write that covers only part of a page whose bytes are not in the page cache makes the kernel
 * read that page first, synchronously, inside pwrite: a batch into a region evicted from the cache
 * went to the disk one page at a time (a sequential write after a drop_caches ran at half speed,
 * reading 40 MB/s). Asking for every span's partial edge pages first gives the device those reads
 * as one deep queue; pages in the page cache cost one cheap call each, and whole pages, which the
 * write replaces, are not read at all.
 */
static void announce_write_edges(Batch *b) {
  const off_t page = 4096;
  for (uint32_t i = 0; i < b->count; i++) {
    off_t start = (off_t)b->file_offsets[i];
    off_t end = start + (off_t)b->lengths[i];
    off_t first = start & ~(page - 1);
    off_t last = (end - 1) & ~(page - 1);
    if (start != first) (void)posix_fadvise(b->fd, first, page, POSIX_FADV_WILLNEED);
    if ((end & (page - 1)) != 0 && (last != first || start == first))
      (void)posix_fadvise(b->fd, last, page, POSIX_FADV_WILLNEED);
  }
}

/*
 * The per-span byte counts of a ring read: one buffer per pool thread, grown as needed and kept,
 * like the thread's ring, for the life of the process (a batch of 1 MiB is thousands of spans; a
 * malloc per batch bought nothing; a reload of the addon leaves it behind, as it does the ring).
 * NULL when it cannot grow: the batch then uses pread.
 */
static int32_t *ring_done_buffer(uint32_t count) {
  static __thread int32_t *buffer;
  static __thread uint32_t capacity;
  if (count > capacity) {
    int32_t *grown = realloc(buffer, count * sizeof *grown);
    if (!grown) return NULL;
    buffer = grown;
    capacity = count;
  }
  return buffer;
}

static void run_batch(napi_env env, void *data) {
  Batch *b = data;
  if (b->advise) {
    for (uint32_t i = 0; i < b->count; i++) {
      if (b->lengths[i] <= 0) continue;
      if (posix_fadvise(b->fd, (off_t)b->file_offsets[i], (off_t)b->lengths[i], POSIX_FADV_WILLNEED) != 0)
        b->refused++;
    }
    return;
  }
  int announced = b->write || b->count < 2;
  if (b->write && b->count > 1) announce_write_edges(b);
  /* Reads on a pool thread go through its io_uring when it has one (writes stay pwrite: through
   * the ring they measured no faster). Only pool threads: they live as long as the process, while
   * an actor's worker thread ends at each restart, and a ring it made would leak (a thread-exit
   * destructor is no way out: the addon may be unloaded with the worker's environment first).
   * Whatever the ring did not finish (a short read, an error, a span it never ran) is read below
   * from where it stopped, so an error or end of file is reported exactly as pread reports it, at
   * the first span in order that has one. */
  int32_t *done = NULL;
  if (b->in_pool && !b->write && b->count >= URING_MIN_SPANS) {
    done = ring_done_buffer(b->count);
    if (done && uring_read_spans(b->fd, b->data, b->file_offsets, b->lengths, b->buffer_offsets,
                                 b->count, done) != 0)
      done = NULL;
    if (done) announced = 1; /* the ring already read the cold spans in parallel */
  }
  for (uint32_t i = 0; i < b->count && b->error == 0 && !b->hit_eof; i++) {
    size_t skip = done && done[i] > 0 ? (size_t)done[i] : 0;
    if (done && skip >= (size_t)b->lengths[i]) continue;
    off_t pos = (off_t)b->file_offsets[i] + (off_t)skip;
    uint8_t *p = b->data + b->buffer_offsets[i] + skip;
    size_t left = (size_t)b->lengths[i] - skip;
    while (left > 0) {
      ssize_t n;
      if (!announced) {
        struct iovec iov = {.iov_base = p, .iov_len = left};
        n = preadv2(b->fd, &iov, 1, pos, RWF_NOWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL)) {
          announce_rest(b, i);
          announced = 1;
          continue;
        }
      } else {
        n = b->write ? pwrite(b->fd, p, left, pos) : pread(b->fd, p, left, pos);
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        b->error = errno;
        b->fail_at = (double)pos;
        break;
      }
      if (n == 0) {
        if (b->write) {
          b->error = EIO;
        } else {
          b->hit_eof = 1;
        }
        b->fail_at = (double)pos;
        break;
      }
      p += n;
      pos += n;
      left -= (size_t)n;
    }
  }
}

/* The Error for a failed batch: code = errno name (or "EOF"), errno = -errno. */
static napi_value batch_error(napi_env env, Batch *b) {
  return io_error(env, "", b->hit_eof, b->error, b->write, b->fail_at);
}

static void finish_batch(napi_env env, napi_status status, void *data) {
  Batch *b = data;
  if (status != napi_ok && b->error == 0) b->error = ECANCELED;
  if (b->error == 0 && !b->hit_eof) {
    napi_value result;
    if (b->advise) napi_create_uint32(env, b->refused, &result);
    else napi_get_undefined(env, &result);
    napi_resolve_deferred(env, b->deferred, result);
  } else {
    napi_reject_deferred(env, b->deferred, batch_error(env, b));
  }
  if (b->buffer_ref) napi_delete_reference(env, b->buffer_ref);
  napi_delete_async_work(env, b->work);
  free_batch(b);
}

/* Copies `count` elements of a typed array of the expected type into fresh memory. */
static void *copy_typed(napi_env env, napi_value value, napi_typedarray_type want, size_t elem,
                        uint32_t count, const char *what) {
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  if (!is_typed) {
    napi_throw_type_error(env, "IMAP_E_INVALID", what);
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *src;
  if (napi_get_typedarray_info(env, value, &type, &length, &src, NULL, NULL) != napi_ok ||
      type != want || length < count) {
    napi_throw_type_error(env, "IMAP_E_INVALID", what);
    return NULL;
  }
  void *copy = malloc(count == 0 ? 1 : count * elem);
  if (!copy) {
    napi_throw_error(env, "IMAP_E_NOMEM", "span_io: out of memory");
    return NULL;
  }
  memcpy(copy, src, count * elem);
  return copy;
}

/* Parses and checks the 7 arguments into a fresh Batch (NULL with a pending exception). */
static Batch *parse_batch(napi_env env, napi_callback_info info, napi_value *buffer) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) {
    napi_throw_type_error(env, "IMAP_E_INVALID", "spanIo takes 7 arguments");
    return NULL;
  }
  int32_t fd;
  bool write;
  uint32_t count;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_bool(env, argv[1], &write));
  CHECK(napi_get_value_uint32(env, argv[6], &count));

  bool is_typed = false;
  napi_is_typedarray(env, argv[2], &is_typed);
  if (!is_typed) {
    napi_throw_type_error(env, "IMAP_E_INVALID", "spanIo: buffer must be a Uint8Array");
    return NULL;
  }
  napi_typedarray_type type;
  size_t data_length;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &data_length, &data, NULL, NULL));
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, "IMAP_E_INVALID", "spanIo: buffer must be a Uint8Array");
    return NULL;
  }

  Batch *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "IMAP_E_NOMEM", "span_io: out of memory");
    return NULL;
  }
  b->fd = fd;
  b->write = write;
  b->data = data;
  b->data_length = data_length;
  b->count = count;
  b->file_offsets = copy_typed(env, argv[3], napi_float64_array, sizeof(double), count,
                               "spanIo: fileOffsets must be a Float64Array of count entries");
  if (b->file_offsets)
    b->lengths = copy_typed(env, argv[4], napi_int32_array, sizeof(int32_t), count,
                            "spanIo: lengths must be an Int32Array of count entries");
  if (b->lengths)
    b->buffer_offsets = copy_typed(env, argv[5], napi_int32_array, sizeof(int32_t), count,
                                   "spanIo: bufferOffsets must be an Int32Array of count entries");
  if (!b->buffer_offsets) {
    free_batch(b);
    return NULL;
  }
  /* Every span must lie inside the buffer: a bad plan must not become a wild write. */
  for (uint32_t i = 0; i < count; i++) {
    int64_t start = b->buffer_offsets[i];
    int64_t len = b->lengths[i];
    if (start < 0 || len < 0 || (uint64_t)(start + len) > data_length || b->file_offsets[i] < 0) {
      free_batch(b);
      napi_throw_range_error(env, "IMAP_E_INVALID", "spanIo: a span lies outside the buffer");
      return NULL;
    }
  }
  *buffer = argv[2];
  return b;
}

/* The batch off the JS thread: a promise settled from a libuv pool thread's work. */
static napi_value span_io(napi_env env, napi_callback_info info) {
  napi_value buffer;
  Batch *b = parse_batch(env, info, &buffer);
  if (!b) return NULL;
  b->in_pool = 1;
  napi_value promise, name;
  if (napi_create_promise(env, &b->deferred, &promise) != napi_ok ||
      napi_create_reference(env, buffer, 1, &b->buffer_ref) != napi_ok ||
      napi_create_string_utf8(env, "imapfs.spanIo", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, run_batch, finish_batch, b, &b->work) != napi_ok ||
      napi_queue_async_work(env, b->work) != napi_ok) {
    free_batch(b);
    napi_throw_error(env, "IMAP_E_INTERNAL", "span_io: could not queue the batch");
    return NULL;
  }
  return promise;
}

/*
 * The same batch on the calling thread (the scheduler's inline path for a lone request): no thread
 * hand-off, but the read-ahead announcement of run_batch, which plain readSync calls cannot make.
 */
static napi_value span_io_sync(napi_env env, napi_callback_info info) {
  napi_value buffer;
  Batch *b = parse_batch(env, info, &buffer);
  if (!b) return NULL;
  run_batch(env, b);
  if (b->error != 0 || b->hit_eof) napi_throw(env, batch_error(env, b));
  free_batch(b);
  return NULL;
}

/*
 * blockSums(buffer, offset, length, out: Uint32Array(2)): the Adler-32 block sums of
 * buffer[offset, offset+length) as src/map/adler32.ts defines them (out[0] = S, out[1] = W, both
 * mod 65521). The same recurrence as the TypeScript version, which stays the reference; here it is
 * the checkpoint's hot loop (every dirty 32 KiB block is summed again), 2-3x faster than in JS.
 */
static napi_value block_sums(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "IMAP_E_INTERNAL", "blockSums: 4 arguments expected");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length, out_length;
  void *data, *out_data;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, "IMAP_E_INTERNAL", "blockSums: buffer must be a Uint8Array");
    return NULL;
  }
  CHECK(napi_get_typedarray_info(env, argv[3], &type, &out_length, &out_data, NULL, NULL));
  if (type != napi_uint32_array || out_length < 2) {
    napi_throw_type_error(env, "IMAP_E_INTERNAL", "blockSums: out must be a Uint32Array of 2");
    return NULL;
  }
  int64_t off, len;
  CHECK(napi_get_value_int64(env, argv[1], &off));
  CHECK(napi_get_value_int64(env, argv[2], &len));
  if (off < 0 || len < 0 || (uint64_t)(off + len) > length) {
    napi_throw_range_error(env, "IMAP_E_INTERNAL", "blockSums: range outside the buffer");
    return NULL;
  }
  uint32_t *out = out_data;
  block_sums_of((const uint8_t *)data + off, len, &out[0], &out[1]);
  return NULL;
}

/*
 * tileCopy(store, toStore, count, orientations: Int32Array, rowAt: Int32Array, rowRoom: Int32Array,
 *          gap, data, dataOffset, lut: Uint16Array)
 *
 * RunPlan's permutation between cluster order and the file's tile rows (run-plan.ts), here because
 * in JS it was the scheduler thread's largest cost after the syscalls (~2.5 ms per MiB written).
 * Tile row ty of plan cluster k is 128 bytes at store[rowAt[32k + ty]], except that a row straddling
 * two stored blocks has only its first rowRoom[32k + ty] bytes there and the rest `gap` bytes
 * further (past the framing between the blocks). Curve pixel i of cluster k is the 4 bytes at
 * data[dataOffset + 4096k + 4i] and sits at tile pixel lut[1024 * orientations[k] + i].
 * toStore: data → store (a write's scatter); otherwise store → data (a read's gather).
 */
#define TILE_SIDE 32
#define TILE_ROW 128
#define TILE_PX 1024
static napi_value tile_copy(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) {
    napi_throw_type_error(env, "IMAP_E_INTERNAL", "tileCopy takes 10 arguments");
    return NULL;
  }
  bool to_store;
  uint32_t count, gap;
  int64_t data_offset;
  CHECK(napi_get_value_bool(env, argv[1], &to_store));
  CHECK(napi_get_value_uint32(env, argv[2], &count));
  CHECK(napi_get_value_uint32(env, argv[6], &gap));
  CHECK(napi_get_value_int64(env, argv[8], &data_offset));
  napi_typedarray_type t_store, t_orient, t_at, t_room, t_data, t_lut;
  size_t n_store, n_orient, n_at, n_room, n_data, n_lut;
  void *v_store, *v_orient, *v_at, *v_room, *v_data, *v_lut;
  CHECK(napi_get_typedarray_info(env, argv[0], &t_store, &n_store, &v_store, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[3], &t_orient, &n_orient, &v_orient, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[4], &t_at, &n_at, &v_at, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[5], &t_room, &n_room, &v_room, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[7], &t_data, &n_data, &v_data, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[9], &t_lut, &n_lut, &v_lut, NULL, NULL));
  if (t_store != napi_uint8_array || t_data != napi_uint8_array || t_orient != napi_int32_array ||
      t_at != napi_int32_array || t_room != napi_int32_array || t_lut != napi_uint16_array ||
      n_orient < count || n_at < (size_t)count * TILE_SIDE || n_room < (size_t)count * TILE_SIDE ||
      n_lut < 8 * TILE_PX) {
    napi_throw_type_error(env, "IMAP_E_INTERNAL", "tileCopy: argument types or lengths");
    return NULL;
  }
  if (data_offset < 0 || (uint64_t)data_offset + (uint64_t)count * 4096 > n_data) {
    napi_throw_range_error(env, "IMAP_E_INTERNAL", "tileCopy: clusters outside the data buffer");
    return NULL;
  }
  const int32_t *orient = v_orient, *row_at = v_at, *row_room = v_room;
  const uint16_t *lut = v_lut;
  uint8_t *store = v_store, *data = (uint8_t *)v_data + data_offset;
  /* Every row must lie inside the store (with its gap when split): a bad plan must not become a
   * wild write. LUT entries are tile pixels by construction; checked anyway, it costs 8 K loads. */
  for (uint32_t r = 0; r < count * TILE_SIDE; r++) {
    int64_t at = row_at[r], room = row_room[r];
    int64_t end = at + TILE_ROW + (room < TILE_ROW ? (int64_t)gap : 0);
    if (at < 0 || room <= 0 || (uint64_t)end > n_store) {
      napi_throw_range_error(env, "IMAP_E_INTERNAL", "tileCopy: a tile row lies outside the store");
      return NULL;
    }
  }
  for (uint32_t k = 0; k < count; k++) {
    if (orient[k] < 0 || orient[k] > 7) {
      napi_throw_range_error(env, "IMAP_E_INTERNAL", "tileCopy: orientation outside 0..7");
      return NULL;
    }
  }
  for (uint32_t i = 0; i < 8 * TILE_PX; i++) {
    if (lut[i] >= TILE_PX) {
      napi_throw_range_error(env, "IMAP_E_INTERNAL", "tileCopy: LUT entry outside the tile");
      return NULL;
    }
  }
  uint32_t tile[TILE_PX];
  for (uint32_t k = 0; k < count; k++) {
    const uint16_t *l = lut + (size_t)orient[k] * TILE_PX;
    uint8_t *cluster = data + (size_t)k * 4096;
    const int32_t *at = row_at + (size_t)k * TILE_SIDE, *room = row_room + (size_t)k * TILE_SIDE;
    if (to_store) {
      for (uint32_t i = 0; i < TILE_PX; i++) memcpy(&tile[l[i]], cluster + 4 * i, 4);
      for (uint32_t ty = 0; ty < TILE_SIDE; ty++) {
        const uint8_t *src = (const uint8_t *)tile + ty * TILE_ROW;
        uint8_t *dst = store + at[ty];
        if (room[ty] >= TILE_ROW) {
          memcpy(dst, src, TILE_ROW);
        } else {
          memcpy(dst, src, (size_t)room[ty]);
          memcpy(dst + room[ty] + gap, src + room[ty], (size_t)(TILE_ROW - room[ty]));
        }
      }
    } else {
      for (uint32_t ty = 0; ty < TILE_SIDE; ty++) {
        uint8_t *dst = (uint8_t *)tile + ty * TILE_ROW;
        const uint8_t *src = store + at[ty];
        if (room[ty] >= TILE_ROW) {
          memcpy(dst, src, TILE_ROW);
        } else {
          memcpy(dst, src, (size_t)room[ty]);
          memcpy(dst + room[ty], src + room[ty] + gap, (size_t)(TILE_ROW - room[ty]));
        }
      }
      for (uint32_t i = 0; i < TILE_PX; i++) memcpy(cluster + 4 * i, &tile[l[i]], 4);
    }
  }
  return NULL;
}

/*
 * spanAdvise(fd, fileOffsets: Float64Array, lengths: Int32Array, count) → Promise<number>:
 * POSIX_FADV_WILLNEED for each span, in a pool thread (the kernel allocates and queues the pages
 * inside the call, ≈3 ms per MiB of 2 KiB spans here, too long for the scheduler's own thread).
 * Resolves to the spans the kernel refused: advice only, a refusal costs speed, never data.
 *
 * The read-ahead of a sequential reader uses it for the map region it will want next: the spans
 * of a large region are long (a square of n tiles has rows of sqrt(n) tiles), so the device gets
 * fewer, larger reads than the many page-sized ones of a 1 MiB window's own spans.
 */
static napi_value span_advise(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    napi_throw_type_error(env, "IMAP_E_INVALID", "spanAdvise takes 4 arguments");
    return NULL;
  }
  int32_t fd;
  uint32_t count;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_uint32(env, argv[3], &count));
  Batch *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "IMAP_E_NOMEM", "span_io: out of memory");
    return NULL;
  }
  b->fd = fd;
  b->advise = 1;
  b->count = count;
  b->file_offsets = copy_typed(env, argv[1], napi_float64_array, sizeof(double), count,
                               "spanAdvise: fileOffsets must be a Float64Array of count entries");
  if (b->file_offsets)
    b->lengths = copy_typed(env, argv[2], napi_int32_array, sizeof(int32_t), count,
                            "spanAdvise: lengths must be an Int32Array of count entries");
  if (!b->lengths) {
    free_batch(b);
    return NULL;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &b->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "imapfs.spanAdvise", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, run_batch, finish_batch, b, &b->work) != napi_ok ||
      napi_queue_async_work(env, b->work) != napi_ok) {
    free_batch(b);
    napi_throw_error(env, "IMAP_E_INTERNAL", "span_io: could not queue the advice");
    return NULL;
  }
  return promise;
}

/* ioEngine() → { engine: "io_uring" | "pread", refusedErrno }: how read batches reach the kernel. */
static napi_value io_engine(napi_env env, napi_callback_info info) {
  (void)info;
  int err = 0;
  const char *engine = uring_engine(&err);
  napi_value out, name, code;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_string_utf8(env, engine, NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_int32(env, err, &code));
  CHECK(napi_set_named_property(env, out, "engine", name));
  CHECK(napi_set_named_property(env, out, "refusedErrno", code));
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn, fn_sync, fn_sums, fn_tiles, fn_advise, fn_engine;
  if (napi_create_function(env, "ioEngine", NAPI_AUTO_LENGTH, io_engine, NULL, &fn_engine) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "ioEngine", fn_engine) != napi_ok) return NULL;
  if (napi_create_function(env, "spanAdvise", NAPI_AUTO_LENGTH, span_advise, NULL, &fn_advise) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "spanAdvise", fn_advise) != napi_ok) return NULL;
  if (napi_create_function(env, "tileCopy", NAPI_AUTO_LENGTH, tile_copy, NULL, &fn_tiles) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "tileCopy", fn_tiles) != napi_ok) return NULL;
  if (napi_create_function(env, "blockSums", NAPI_AUTO_LENGTH, block_sums, NULL, &fn_sums) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "blockSums", fn_sums) != napi_ok) return NULL;
  if (napi_create_function(env, "spanIo", NAPI_AUTO_LENGTH, span_io, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "spanIo", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "spanIoSync", NAPI_AUTO_LENGTH, span_io_sync, NULL, &fn_sync) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "spanIoSync", fn_sync) != napi_ok) return NULL;
  if (!register_block_fix(env, exports)) return NULL;
  return exports;
}
