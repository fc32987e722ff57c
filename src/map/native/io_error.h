/*
 * The Error a failed positional I/O rejects with, shared by span_io.c and block_fix.c: code = the
 * errno's name ("EOF" for a short read), errno = -errno, message = what failed and where. span-io.ts
 * maps these to IMAP_E_* codes.
 */
#ifndef IMAPFS_IO_ERROR_H
#define IMAPFS_IO_ERROR_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <node_api.h>

static inline const char *errno_name(int e) {
  switch (e) {
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case EBADF: return "EBADF";
    case EFBIG: return "EFBIG";
    case EDQUOT: return "EDQUOT";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    default: return "EIO";
  }
}

/* `prefix` names the call ("" or "blockFix: "); `error` is the errno, unused when hit_eof. */
static inline napi_value io_error(napi_env env, const char *prefix, int hit_eof, int error, int write,
                                  double fail_at) {
  char message[160];
  if (hit_eof) {
    snprintf(message, sizeof message, "%send of file at %.0f", prefix, fail_at);
  } else {
    snprintf(message, sizeof message, "%s%s at %.0f: %s", prefix, write ? "pwrite" : "pread", fail_at,
             strerror(error));
  }
  napi_value msg, code, err, errno_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, hit_eof ? "EOF" : errno_name(error), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &err);
  napi_create_int32(env, hit_eof ? 0 : -error, &errno_value);
  napi_set_named_property(env, err, "errno", errno_value);
  return err;
}

#endif
