/*
 * blockFix: the checkpoint's pass over the stored blocks written since the last one, off the JS
 * thread and split over BLOCK_FIX_PARTS libuv pool threads.
 *
 *   blockFix(fd, chunkOffsets: Float64Array, lengths: Int32Array, count, sums: Uint32Array)
 *     → Promise<void>
 *
 * Block i is the IDAT chunk at file offset chunkOffsets[i] holding one stored deflate block of
 * lengths[i] payload bytes. For each: read type, stored header and payload; write the chunk's CRC-32
 * (big endian, after the payload); put the payload's Adler-32 block sums in sums[2i] (S) and
 * sums[2i+1] (W), as blockSums does. The caller folds the sums into the stream's Adler-32.
 *
 * Why here: during a checkpoint every map request waits (a full barrier), and the same loop in JS
 * kept one core busy reading, summing and writing 4-byte CRCs one block at a time while the other
 * sat idle. The blocks are independent, so the parts run in parallel.
 *
 * Ownership: the offsets and lengths are copied at the call; `sums` is referenced until the promise
 * settles and must not be read before. Errors reject with code = errno name ("EOF" for a short
 * read) and errno = -errno, like spanIo.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <node_api.h>

#include "block_fix.h"
#include "block_sums.h"
#include "io_error.h"

#define BLOCK_FIX_PARTS 2
/* "IDAT" and the 5-byte stored-block header precede the payload inside the CRC. */
#define CRC_PREFIX 9
#define CHUNK_LENGTH_FIELD 4
#define PAYLOAD_MAX 65535

typedef struct Fix Fix;

typedef struct {
  napi_async_work work;
  Fix *fix;
  uint32_t from, to;
  int error;
  int hit_eof;
  double fail_at;
  int failed_write;
} Part;

struct Fix {
  napi_deferred deferred;
  napi_ref sums_ref;
  int fd;
  double *chunk_offsets;
  int32_t *lengths;
  uint32_t *sums;
  int pending;
  Part parts[BLOCK_FIX_PARTS];
};

/* pread or pwrite all of [at, at + len), retrying short transfers and EINTR. Returns 0 or the errno;
 * a read that meets the end of the file sets *hit_eof (may be NULL for writes). */
static int transfer_fully(int fd, int write, uint8_t *buf, size_t len, off_t at, int *hit_eof) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write ? pwrite(fd, buf + done, len - done, at + (off_t)done)
                      : pread(fd, buf + done, len - done, at + (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0 && !write) {
      *hit_eof = 1;
      return 0;
    }
    done += (size_t)n;
  }
  return 0;
}

static void run_part(napi_env env, void *data) {
  Part *part = data;
  Fix *fix = part->fix;
  uint8_t *buf = malloc(CRC_PREFIX + PAYLOAD_MAX);
  if (!buf) {
    part->error = ENOMEM;
    return;
  }
  for (uint32_t i = part->from; i < part->to; i++) {
    off_t chunk = (off_t)fix->chunk_offsets[i];
    size_t len = (size_t)fix->lengths[i];
    off_t at = chunk + CHUNK_LENGTH_FIELD;
    int e = transfer_fully(fix->fd, 0, buf, CRC_PREFIX + len, at, &part->hit_eof);
    if (e != 0 || part->hit_eof) {
      part->error = e;
      part->fail_at = (double)at;
      break;
    }
    uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(CRC_PREFIX + len));
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    off_t crc_at = at + CRC_PREFIX + (off_t)len;
    e = transfer_fully(fix->fd, 1, be, 4, crc_at, NULL);
    if (e != 0) {
      part->error = e;
      part->fail_at = (double)crc_at;
      part->failed_write = 1;
      break;
    }
    block_sums_of(buf + CRC_PREFIX, (int64_t)len, &fix->sums[2 * i], &fix->sums[2 * i + 1]);
  }
  free(buf);
}

static napi_value part_error(napi_env env, const Part *p) {
  return io_error(env, "blockFix: ", p->hit_eof, p->error, p->failed_write, p->fail_at);
}

static void free_fix(napi_env env, Fix *fix) {
  if (fix->sums_ref) napi_delete_reference(env, fix->sums_ref);
  free(fix->chunk_offsets);
  free(fix->lengths);
  free(fix);
}

/* On the JS thread, once per part; the last one settles the promise. */
static void finish_part(napi_env env, napi_status status, void *data) {
  Part *part = data;
  Fix *fix = part->fix;
  if (status != napi_ok && part->error == 0 && !part->hit_eof) part->error = ECANCELED;
  napi_delete_async_work(env, part->work);
  if (--fix->pending > 0) return;
  const Part *failed = NULL;
  for (int k = 0; k < BLOCK_FIX_PARTS; k++) {
    if (fix->parts[k].error != 0 || fix->parts[k].hit_eof) {
      failed = &fix->parts[k];
      break;
    }
  }
  if (failed) {
    napi_reject_deferred(env, fix->deferred, part_error(env, failed));
  } else {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, fix->deferred, undefined);
  }
  free_fix(env, fix);
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, size_t min, void **out) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  if (napi_get_typedarray_info(env, v, &type, &length, out, NULL, NULL) != napi_ok) return 0;
  return type == want && length >= min;
}

static napi_value block_fix(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd;
  uint32_t count;
  void *offsets_src, *lengths_src, *sums;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok) {
    napi_throw_type_error(env, "IMAP_E_INVALID", "blockFix(fd, chunkOffsets, lengths, count, sums)");
    return NULL;
  }
  if (!typed(env, argv[1], napi_float64_array, count, &offsets_src) ||
      !typed(env, argv[2], napi_int32_array, count, &lengths_src) ||
      !typed(env, argv[4], napi_uint32_array, 2 * (size_t)count, &sums)) {
    napi_throw_type_error(env, "IMAP_E_INVALID",
                          "blockFix: chunkOffsets Float64Array, lengths Int32Array of count, sums "
                          "Uint32Array of 2 * count");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    int32_t len = ((int32_t *)lengths_src)[i];
    if (len < 0 || len > PAYLOAD_MAX || ((double *)offsets_src)[i] < 0) {
      napi_throw_range_error(env, "IMAP_E_INVALID", "blockFix: a block length or offset is out of range");
      return NULL;
    }
  }
  Fix *fix = calloc(1, sizeof *fix);
  if (fix) {
    fix->chunk_offsets = malloc((count ? count : 1) * sizeof(double));
    fix->lengths = malloc((count ? count : 1) * sizeof(int32_t));
  }
  if (!fix || !fix->chunk_offsets || !fix->lengths) {
    if (fix) free_fix(env, fix);
    napi_throw_error(env, "IMAP_E_NOMEM", "blockFix: out of memory");
    return NULL;
  }
  memcpy(fix->chunk_offsets, offsets_src, count * sizeof(double));
  memcpy(fix->lengths, lengths_src, count * sizeof(int32_t));
  fix->fd = fd;
  fix->sums = sums;
  napi_value promise, name;
  if (napi_create_promise(env, &fix->deferred, &promise) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &fix->sums_ref) != napi_ok ||
      napi_create_string_utf8(env, "imapfs.blockFix", NAPI_AUTO_LENGTH, &name) != napi_ok) {
    free_fix(env, fix);
    napi_throw_error(env, "IMAP_E_INTERNAL", "blockFix: could not start");
    return NULL;
  }
  fix->pending = BLOCK_FIX_PARTS;
  for (int k = 0; k < BLOCK_FIX_PARTS; k++) {
    Part *part = &fix->parts[k];
    part->fix = fix;
    part->from = (uint32_t)((uint64_t)count * k / BLOCK_FIX_PARTS);
    part->to = (uint32_t)((uint64_t)count * (k + 1) / BLOCK_FIX_PARTS);
    if (napi_create_async_work(env, NULL, name, run_part, finish_part, part, &part->work) != napi_ok ||
        napi_queue_async_work(env, part->work) != napi_ok) {
      /* Parts already queued will settle the promise; this one counts as failed. */
      part->error = ENOMEM;
      if (--fix->pending == 0) {
        napi_reject_deferred(env, fix->deferred, part_error(env, part));
        free_fix(env, fix);
      }
    }
  }
  return promise;
}

int register_block_fix(napi_env env, napi_value exports) {
  napi_value fn;
  return napi_create_function(env, "blockFix", NAPI_AUTO_LENGTH, block_fix, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "blockFix", fn) == napi_ok;
}
