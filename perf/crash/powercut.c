/*
 * powercut.so: a power-failure model for crash tests, loaded into the daemon with LD_PRELOAD.
 *
 * SIGKILL keeps the page cache, so a killed daemon loses nothing it wrote; a power failure loses
 * everything not yet fsync'd. This shim records, for every file whose path starts with
 * $POWERCUT_PREFIX, the pre-image of each write and truncate (before it happens) and every
 * fsync/fdatasync, in an undo log ($POWERCUT_LOG). After the daemon is killed, rollback.py undoes,
 * per file, every record after that file's last sync: the files are then as a power failure at the
 * moment of the kill would have left them if no unsynced write had reached the disk (the harshest
 * case for acknowledged data; SQLite's -shm is dropped too, as after a reboot).
 *
 * Intercepted: write, pwrite, pwrite64, pwritev, pwritev64, ftruncate, ftruncate64, fsync,
 * fdatasync, close, rename. A rename onto a tracked path (the map's growth: a new file, fsync'd, put
 * in place of the old one) is logged as 'R': the file at that path from then on is another inode, so
 * the old one's undo records must not be applied to it. The rename itself counts as durable (the
 * daemon fsyncs the directory right after; a power cut in between is not modelled). Run the daemon with UV_USE_IO_URING=0 so libuv's writes go through libc.
 * Writes through mmap are not seen (imapfs writes none to the map or the sidecar; SQLite's -shm is
 * the only mapped file). A global mutex orders each pre-image, its log record and the write itself.
 *
 * Log record: u8 kind ('W' write, 'T' truncate, 'S' sync, 'R' renamed onto) | u32 path length | path | i64 offset |
 * i64 old size | u32 pre-image length | pre-image bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static const char *prefix;
static size_t prefix_len;
static unsigned char fd_state[MAX_FD]; /* 0 unknown, 1 tracked, 2 not tracked */
static char *fd_path[MAX_FD];
/* The file each cached fd_state was resolved for: libuv closes with syscall(SYS_close), which this
 * shim does not see, so a reused fd number must be recognized by its inode, not by a close. */
static dev_t fd_dev[MAX_FD];
static ino_t fd_ino[MAX_FD];
static __thread int inside;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off64_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_close)(int);
static int (*real_rename)(const char *, const char *);

__attribute__((constructor)) static void init(void) {
  real_write = dlsym(RTLD_NEXT, "write");
  real_pwrite = dlsym(RTLD_NEXT, "pwrite");
  real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
  real_pwritev = dlsym(RTLD_NEXT, "pwritev");
  real_pwritev64 = dlsym(RTLD_NEXT, "pwritev64");
  real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
  real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
  real_fsync = dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
  real_close = dlsym(RTLD_NEXT, "close");
  real_rename = dlsym(RTLD_NEXT, "rename");
  prefix = getenv("POWERCUT_PREFIX");
  const char *log = getenv("POWERCUT_LOG");
  if (prefix && log) {
    prefix_len = strlen(prefix);
    log_fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
}

static void log_bytes(const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = syscall(SYS_write, log_fd, c, n);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      abort(); /* a lost undo record would make the model lie: stop loudly */
    }
    c += w;
    n -= (size_t)w;
  }
}

/* The tracked path of fd, or NULL. Called with mu held. */
static const char *tracked(int fd) {
  if (log_fd < 0 || fd < 0 || fd >= MAX_FD || fd == log_fd) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) return NULL;
  if (fd_state[fd] != 0 && (fd_dev[fd] != st.st_dev || fd_ino[fd] != st.st_ino)) {
    if (fd_state[fd] == 1) free(fd_path[fd]);
    fd_path[fd] = NULL;
    fd_state[fd] = 0;
  }
  if (fd_state[fd] == 0) {
    fd_dev[fd] = st.st_dev;
    fd_ino[fd] = st.st_ino;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    fd_state[fd] = 2;
    if (n > 0) {
      path[n] = 0;
      if ((size_t)n >= prefix_len && memcmp(path, prefix, prefix_len) == 0 &&
          !(n > 4 && strcmp(path + n - 4, ".log") == 0)) {
        fd_state[fd] = 1;
        fd_path[fd] = strdup(path);
      }
    }
  }
  return fd_state[fd] == 1 ? fd_path[fd] : NULL;
}

static void log_record(char kind, const char *path, int64_t off, int64_t old_size, const char *pre,
                       uint32_t pre_len);

static void record(char kind, const char *path, int fd, int64_t off, size_t len) {
  struct stat st;
  int64_t old_size = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
  uint32_t pre_len = 0;
  if (kind == 'W' && off < old_size) pre_len = (uint32_t)((int64_t)len < old_size - off ? (int64_t)len : old_size - off);
  if (kind == 'T' && off < old_size) pre_len = (uint32_t)(old_size - off);
  char *pre = pre_len ? malloc(pre_len) : NULL;
  if (pre_len && !pre) abort();
  size_t got = 0;
  while (got < pre_len) {
    ssize_t r = syscall(SYS_pread64, fd, pre + got, pre_len - got, off + (int64_t)got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      break;
    }
    got += (size_t)r;
  }
  pre_len = (uint32_t)got;
  log_record(kind, path, off, old_size, pre, pre_len);
  free(pre);
}

static void log_record(char kind, const char *path, int64_t off, int64_t old_size, const char *pre,
                       uint32_t pre_len) {
  uint32_t plen = (uint32_t)strlen(path);
  /* One buffer, one append: a kill leaves at most the last record cut short (rollback.py drops it;
   * its write had not happened). */
  size_t total = 1 + 4 + plen + 8 + 8 + 4 + pre_len;
  char *rec = malloc(total);
  if (!rec) abort();
  char *p = rec;
  *p++ = kind;
  memcpy(p, &plen, 4), p += 4;
  memcpy(p, path, plen), p += plen;
  memcpy(p, &off, 8), p += 8;
  memcpy(p, &old_size, 8), p += 8;
  memcpy(p, &pre_len, 4), p += 4;
  if (pre_len) memcpy(p, pre, pre_len);
  log_bytes(rec, total);
  free(rec);
}

#define GUARDED(fd, body_tracked, body_plain)         \
  do {                                                \
    if (inside || log_fd < 0) { body_plain; }         \
    pthread_mutex_lock(&mu);                          \
    const char *path = tracked(fd);                   \
    if (!path) {                                      \
      pthread_mutex_unlock(&mu);                      \
      body_plain;                                     \
    }                                                 \
    inside = 1;                                       \
    body_tracked;                                     \
  } while (0)

#define UNLOCK_RETURN(v)       \
  do {                         \
    inside = 0;                \
    pthread_mutex_unlock(&mu); \
    return (v);                \
  } while (0)

static int64_t current_offset(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_APPEND)) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
  }
  return (int64_t)lseek(fd, 0, SEEK_CUR);
}

ssize_t write(int fd, const void *buf, size_t n) {
  GUARDED(fd, {
    record('W', path, fd, current_offset(fd), n);
    ssize_t r = real_write(fd, buf, n);
    UNLOCK_RETURN(r);
  }, return real_write(fd, buf, n));
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  GUARDED(fd, {
    record('W', path, fd, off, n);
    ssize_t r = real_pwrite(fd, buf, n, off);
    UNLOCK_RETURN(r);
  }, return real_pwrite(fd, buf, n, off));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
  GUARDED(fd, {
    record('W', path, fd, off, n);
    ssize_t r = real_pwrite64(fd, buf, n, off);
    UNLOCK_RETURN(r);
  }, return real_pwrite64(fd, buf, n, off));
}

static size_t iov_total(const struct iovec *iov, int cnt) {
  size_t t = 0;
  for (int i = 0; i < cnt; i++) t += iov[i].iov_len;
  return t;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  GUARDED(fd, {
    record('W', path, fd, off, iov_total(iov, cnt));
    ssize_t r = real_pwritev(fd, iov, cnt, off);
    UNLOCK_RETURN(r);
  }, return real_pwritev(fd, iov, cnt, off));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
  GUARDED(fd, {
    record('W', path, fd, off, iov_total(iov, cnt));
    ssize_t r = real_pwritev64(fd, iov, cnt, off);
    UNLOCK_RETURN(r);
  }, return real_pwritev64(fd, iov, cnt, off));
}

int ftruncate(int fd, off_t len) {
  GUARDED(fd, {
    record('T', path, fd, len, 0);
    int r = real_ftruncate(fd, len);
    UNLOCK_RETURN(r);
  }, return real_ftruncate(fd, len));
}

int ftruncate64(int fd, off64_t len) {
  GUARDED(fd, {
    record('T', path, fd, len, 0);
    int r = real_ftruncate64(fd, len);
    UNLOCK_RETURN(r);
  }, return real_ftruncate64(fd, len));
}

/* The sync record goes after the sync returns: a kill during the sync keeps its writes undoable. */
int fsync(int fd) {
  GUARDED(fd, {
    int r = real_fsync(fd);
    if (r == 0) record('S', path, fd, 0, 0);
    UNLOCK_RETURN(r);
  }, return real_fsync(fd));
}

int fdatasync(int fd) {
  GUARDED(fd, {
    int r = real_fdatasync(fd);
    if (r == 0) record('S', path, fd, 0, 0);
    UNLOCK_RETURN(r);
  }, return real_fdatasync(fd));
}

int close(int fd) {
  if (fd >= 0 && fd < MAX_FD && log_fd >= 0 && !inside) {
    pthread_mutex_lock(&mu);
    if (fd_state[fd] == 1) free(fd_path[fd]);
    fd_path[fd] = NULL;
    fd_state[fd] = 0;
    pthread_mutex_unlock(&mu);
  }
  return real_close(fd);
}

int rename(const char *from, const char *to) {
  if (inside || log_fd < 0) return real_rename(from, to);
  pthread_mutex_lock(&mu);
  inside = 1;
  int r = real_rename(from, to);
  char path[PATH_MAX];
  if (r == 0 && realpath(to, path) && strlen(path) >= prefix_len && memcmp(path, prefix, prefix_len) == 0) {
    log_record('R', path, 0, 0, NULL, 0);
  }
  inside = 0;
  pthread_mutex_unlock(&mu);
  return r;
}
