/*
 * imapfs_fuse: a small N-API binding to libfuse3's low-level (inode-based) API.
 *
 * Threading model
 * ---------------
 *   kernel ──/dev/fuse──▶ loop thread (one per session: poll + read into a pooled 1 MiB chunk,
 *                          fuse_session_process_buf → one op handler below)
 *                            │ handler: take the caller context, park the fuse_req_t in the
 *                            │ global slot table (→ numeric handle), queue a Req
 *                            ▼
 *                         napi_threadsafe_function (one wake-up drains every queued Req: batching)
 *                            ▼
 *                         JS dispatch(op, handle, uid, gid, pid, umask, ...args) on the main thread
 *                            ▼
 *                         reply*(handle, ...) from ANY thread that loaded this addon (main or a
 *                         worker): the slot table is process-wide and guarded by slot_mu.
 *
 * Ownership
 * ---------
 *   - A slot owns its fuse_req_t until exactly one reply takes it; a second reply on the same
 *     handle finds a newer generation and returns false (no double free).
 *   - A receive chunk is owned by the loop thread until a handler that keeps pointers into it
 *     (names, xattr values, write data) takes it. Non-write requests give it back once the
 *     arguments are copied into JS values; a write keeps it in its slot until the reply, because
 *     the JS Buffer for the data is external memory inside the chunk. Chunks are pooled and never
 *     freed, so a stale JS reference reads reused bytes but never freed memory.
 *   - A Session is freed by the threadsafe function's finalizer, after close() joined the loop
 *     thread, failed every pending slot of the session and destroyed the fuse_session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <node_api.h>

/* ---------------------------------------------------------------------------------------------- */
/* Op codes: the order of OP_NAMES is the contract with src/fuse/binding.ts (checked at load).   */

enum {
  OP_INIT, OP_DESTROY, OP_EXIT, OP_LOOKUP, OP_FORGET, OP_FORGET_MULTI, OP_GETATTR, OP_SETATTR,
  OP_READLINK, OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN,
  OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_READDIRPLUS,
  OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR,
  OP_ACCESS, OP_CREATE, OP_FALLOCATE, OP_COPY_FILE_RANGE, OP_LSEEK, OP_COUNT
};

static const char *const OP_NAMES[OP_COUNT] = {
  "init", "destroy", "exit", "lookup", "forget", "forgetMulti", "getattr", "setattr",
  "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open",
  "read", "write", "flush", "release", "fsync", "opendir", "readdir", "readdirplus",
  "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr",
  "access", "create", "fallocate", "copyFileRange", "lseek",
};

/* Attr layout shared with types.ts (ATTR_FIELDS). */
enum {
  A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS, A_BLKSIZE, A_ATIME_S, A_ATIME_NS,
  A_MTIME_S, A_MTIME_NS, A_CTIME_S, A_CTIME_NS, A_COUNT
};

/* Open reply flags shared with types.ts. */
#define OPEN_DIRECT_IO 1
#define OPEN_KEEP_CACHE 2
#define OPEN_NONSEEKABLE 4
#define OPEN_CACHE_READDIR 8
#define OPEN_NOFLUSH 16

#define CHUNK_SIZE (1024 * 1024 + 2 * 4096)
#define POOL_MAX 4096

/* ---------------------------------------------------------------------------------------------- */
/* Receive-chunk pool (process-wide; chunks are reused, never freed below POOL_MAX).              */

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static void *pool_free[POOL_MAX];
static int pool_n;
static atomic_int pool_allocated;

static void *chunk_get(void) {
  void *p = NULL;
  pthread_mutex_lock(&pool_mu);
  if (pool_n > 0) p = pool_free[--pool_n];
  pthread_mutex_unlock(&pool_mu);
  if (p) return p;
  if (posix_memalign(&p, 4096, CHUNK_SIZE) != 0) return NULL;
  atomic_fetch_add(&pool_allocated, 1);
  return p;
}

static void chunk_put(void *p) {
  if (!p) return;
  pthread_mutex_lock(&pool_mu);
  if (pool_n < POOL_MAX) {
    pool_free[pool_n++] = p;
    p = NULL;
  }
  pthread_mutex_unlock(&pool_mu);
  free(p);
}

/* ---------------------------------------------------------------------------------------------- */
/* Session and queued request.                                                                   */

typedef struct Req Req;

typedef struct Session {
  struct fuse_session *se;
  char *mountpoint;
  int fd;
  int wake[2];
  pthread_t thread;
  bool thread_started;
  atomic_bool closing;
  bool closed;
  napi_threadsafe_function tsfn;
  pthread_mutex_t qmu; /* protects qhead, qtail, scheduled */
  Req *qhead, *qtail;
  bool scheduled;
  void *cur_chunk; /* owned by the loop thread */
  int replying;    /* replies in progress; protected by slot_mu */
  pthread_cond_t replying_cv;
  /* options */
  unsigned max_write, max_background, congestion_threshold;
  bool writeback, posix_acl, auto_inval_data;
} Session;

struct Req {
  Req *next;
  int op;
  double handle;
  uid_t uid;
  gid_t gid;
  pid_t pid;
  mode_t umask;
  uint64_t ino, ino2;
  const char *name, *name2; /* NUL-terminated, inside chunk */
  const char *data;         /* write data / xattr value, inside chunk */
  size_t datalen;
  void *chunk;
  uint64_t off, off2, len, fh, fh2, lock_owner;
  size_t size;
  int flags, whence, datasync, valid;
  bool has_fh, writepage;
  mode_t mode;
  dev_t rdev;
  struct stat st;
  uint64_t *forgets; /* forget_multi: ino, nlookup pairs */
  size_t nforgets;
  /* init */
  unsigned proto_major, proto_minor, capable, want, max_write, max_read, max_readahead;
  int err; /* exit */
};

/* ---------------------------------------------------------------------------------------------- */
/* Slot table: numeric handle ↔ fuse_req_t. handle = gen * 2^21 + index (< 2^53).                 */

#define SLOT_BITS 21
#define SLOT_MAX (1u << SLOT_BITS)

typedef struct {
  fuse_req_t req; /* NULL when free */
  Session *s;
  void *chunk; /* write data chunk, returned on reply */
  uint32_t gen;
  int32_t next_free;
} Slot;

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static Slot *slots;
static uint32_t slot_cap, slot_used_hi;
static int32_t slot_free_head = -1;
static atomic_int slots_in_use;

/* Returns 0 when the table is full. */
static double slot_alloc(Session *s, fuse_req_t req, void *chunk) {
  pthread_mutex_lock(&slot_mu);
  int32_t idx;
  if (slot_free_head >= 0) {
    idx = slot_free_head;
    slot_free_head = slots[idx].next_free;
  } else {
    if (slot_used_hi == slot_cap) {
      uint32_t ncap = slot_cap ? slot_cap * 2 : 1024;
      if (ncap > SLOT_MAX) ncap = SLOT_MAX;
      Slot *n = ncap > slot_cap ? realloc(slots, ncap * sizeof(Slot)) : NULL;
      if (!n) {
        pthread_mutex_unlock(&slot_mu);
        return 0;
      }
      memset(n + slot_cap, 0, (ncap - slot_cap) * sizeof(Slot));
      slots = n;
      slot_cap = ncap;
    }
    idx = (int32_t)slot_used_hi++;
  }
  Slot *sl = &slots[idx];
  sl->gen = (sl->gen + 1) & 0xffffffffu;
  if (sl->gen == 0) sl->gen = 1;
  sl->req = req;
  sl->s = s;
  sl->chunk = chunk;
  double h = (double)sl->gen * (double)SLOT_MAX + (double)idx;
  pthread_mutex_unlock(&slot_mu);
  atomic_fetch_add(&slots_in_use, 1);
  return h;
}

static void slot_release_locked(int32_t idx) {
  slots[idx].req = NULL;
  slots[idx].s = NULL;
  slots[idx].chunk = NULL;
  slots[idx].next_free = slot_free_head;
  slot_free_head = idx;
  atomic_fetch_sub(&slots_in_use, 1);
}

/* Takes the request out of its slot; the caller must reply and then call slot_done(). */
static bool slot_take(double h, fuse_req_t *req, Session **s, void **chunk) {
  if (!(h >= 0) || h > 9007199254740991.0) return false;
  uint64_t v = (uint64_t)h;
  uint32_t idx = (uint32_t)(v & (SLOT_MAX - 1));
  uint32_t gen = (uint32_t)(v >> SLOT_BITS);
  bool ok = false;
  pthread_mutex_lock(&slot_mu);
  if (idx < slot_used_hi && slots[idx].req && slots[idx].gen == gen) {
    *req = slots[idx].req;
    *s = slots[idx].s;
    *chunk = slots[idx].chunk;
    (*s)->replying++;
    slot_release_locked((int32_t)idx);
    ok = true;
  }
  pthread_mutex_unlock(&slot_mu);
  return ok;
}

static void slot_done(Session *s, void *chunk) {
  chunk_put(chunk);
  pthread_mutex_lock(&slot_mu);
  if (--s->replying == 0) pthread_cond_broadcast(&s->replying_cv);
  pthread_mutex_unlock(&slot_mu);
}

/* ---------------------------------------------------------------------------------------------- */
/* Loop thread side: queue a Req and wake JS.                                                    */

static void queue_push(Session *s, Req *q) {
  bool wake = false;
  pthread_mutex_lock(&s->qmu);
  if (s->qtail) s->qtail->next = q;
  else s->qhead = q;
  s->qtail = q;
  if (!s->scheduled) {
    s->scheduled = true;
    wake = true;
  }
  pthread_mutex_unlock(&s->qmu);
  if (wake) napi_call_threadsafe_function(s->tsfn, NULL, napi_tsfn_nonblocking);
}

static void req_free(Req *q) {
  chunk_put(q->chunk);
  free(q->forgets);
  free(q);
}

/* Starts a Req for a kernel request; keeps_chunk says the arguments point into the chunk. */
static Req *req_new(fuse_req_t r, int op, bool keeps_chunk) {
  Session *s = fuse_req_userdata(r);
  Req *q = calloc(1, sizeof(Req));
  if (!q) {
    fuse_reply_err(r, ENOMEM);
    return NULL;
  }
  q->op = op;
  const struct fuse_ctx *c = fuse_req_ctx(r);
  q->uid = c->uid;
  q->gid = c->gid;
  q->pid = c->pid;
  q->umask = c->umask;
  void *wchunk = NULL;
  if (keeps_chunk) {
    if (op == OP_WRITE) wchunk = s->cur_chunk;
    else q->chunk = s->cur_chunk;
    s->cur_chunk = NULL;
  }
  q->handle = slot_alloc(s, r, wchunk);
  if (q->handle == 0) {
    chunk_put(wchunk);
    req_free(q);
    fuse_reply_err(r, ENOMEM);
    return NULL;
  }
  return q;
}

static void submit(fuse_req_t r, Req *q) { queue_push(fuse_req_userdata(r), q); }

static void set_fi(Req *q, struct fuse_file_info *fi) {
  if (fi) {
    q->has_fh = true;
    q->fh = fi->fh;
    q->flags = fi->flags;
    q->lock_owner = fi->lock_owner;
    q->writepage = fi->writepage;
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* Op handlers, in the order the kernel meets them.                                              */

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  Session *s = userdata;
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  /* AUTO_INVAL_DATA makes the kernel ask getattr before reads whose attrs expired, to notice
   * changes made behind its back; an fs that is the only writer of its files does not need it. */
  if (!s->auto_inval_data) conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (s->max_write) conn->max_write = s->max_write;
  if (s->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  else conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (s->posix_acl && (conn->capable & FUSE_CAP_POSIX_ACL)) conn->want |= FUSE_CAP_POSIX_ACL;
  if (s->max_background) conn->max_background = s->max_background;
  if (s->congestion_threshold) conn->congestion_threshold = s->congestion_threshold;
  conn->time_gran = 1;
  Req *q = calloc(1, sizeof(Req));
  if (!q) return;
  q->op = OP_INIT;
  q->proto_major = conn->proto_major;
  q->proto_minor = conn->proto_minor;
  q->capable = conn->capable;
  q->want = conn->want;
  q->max_write = conn->max_write;
  q->max_read = conn->max_read;
  q->max_readahead = conn->max_readahead;
  queue_push(s, q);
}

static void ll_destroy(void *userdata) {
  (void)userdata; /* the JS side learns of the end from OP_EXIT / close() */
}

static void ll_lookup(fuse_req_t r, fuse_ino_t parent, const char *name) {
  Req *q = req_new(r, OP_LOOKUP, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  submit(r, q);
}

static void ll_forget(fuse_req_t r, fuse_ino_t ino, uint64_t nlookup) {
  Session *s = fuse_req_userdata(r);
  fuse_reply_none(r);
  Req *q = calloc(1, sizeof(Req));
  if (!q) return;
  q->op = OP_FORGET;
  q->ino = ino;
  q->len = nlookup;
  queue_push(s, q);
}

static void ll_forget_multi(fuse_req_t r, size_t count, struct fuse_forget_data *forgets) {
  Session *s = fuse_req_userdata(r);
  Req *q = calloc(1, sizeof(Req));
  if (q) q->forgets = malloc(count * 2 * sizeof(uint64_t));
  if (q && q->forgets) {
    q->op = OP_FORGET_MULTI;
    q->nforgets = count;
    for (size_t i = 0; i < count; i++) {
      q->forgets[2 * i] = forgets[i].ino;
      q->forgets[2 * i + 1] = forgets[i].nlookup;
    }
  }
  fuse_reply_none(r);
  if (q && q->forgets) queue_push(s, q);
  else if (q) free(q);
}

static void ll_getattr(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_GETATTR, false);
  if (!q) return;
  q->ino = ino;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_setattr(fuse_req_t r, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_SETATTR, false);
  if (!q) return;
  q->ino = ino;
  q->st = *attr;
  q->valid = to_set;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_readlink(fuse_req_t r, fuse_ino_t ino) {
  Req *q = req_new(r, OP_READLINK, false);
  if (!q) return;
  q->ino = ino;
  submit(r, q);
}

static void ll_mknod(fuse_req_t r, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  Req *q = req_new(r, OP_MKNOD, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  q->mode = mode;
  q->rdev = rdev;
  submit(r, q);
}

static void ll_mkdir(fuse_req_t r, fuse_ino_t parent, const char *name, mode_t mode) {
  Req *q = req_new(r, OP_MKDIR, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  q->mode = mode;
  submit(r, q);
}

static void ll_unlink(fuse_req_t r, fuse_ino_t parent, const char *name) {
  Req *q = req_new(r, OP_UNLINK, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  submit(r, q);
}

static void ll_rmdir(fuse_req_t r, fuse_ino_t parent, const char *name) {
  Req *q = req_new(r, OP_RMDIR, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  submit(r, q);
}

static void ll_symlink(fuse_req_t r, const char *link, fuse_ino_t parent, const char *name) {
  Req *q = req_new(r, OP_SYMLINK, true);
  if (!q) return;
  q->name2 = link;
  q->ino = parent;
  q->name = name;
  submit(r, q);
}

static void ll_rename(fuse_req_t r, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  Req *q = req_new(r, OP_RENAME, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  q->ino2 = newparent;
  q->name2 = newname;
  q->flags = (int)flags;
  submit(r, q);
}

static void ll_link(fuse_req_t r, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  Req *q = req_new(r, OP_LINK, true);
  if (!q) return;
  q->ino = ino;
  q->ino2 = newparent;
  q->name = newname;
  submit(r, q);
}

static void ll_open(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_OPEN, false);
  if (!q) return;
  q->ino = ino;
  q->flags = fi->flags;
  submit(r, q);
}

static void ll_read(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_READ, false);
  if (!q) return;
  q->ino = ino;
  q->size = size;
  q->off = (uint64_t)off;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_write(fuse_req_t r, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_WRITE, true);
  if (!q) return;
  q->ino = ino;
  q->data = buf;
  q->datalen = size;
  q->off = (uint64_t)off;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_flush(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_FLUSH, false);
  if (!q) return;
  q->ino = ino;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_release(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_RELEASE, false);
  if (!q) return;
  q->ino = ino;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_fsync(fuse_req_t r, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_FSYNC, false);
  if (!q) return;
  q->ino = ino;
  q->datasync = datasync;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_opendir(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_OPENDIR, false);
  if (!q) return;
  q->ino = ino;
  q->flags = fi->flags;
  submit(r, q);
}

static void ll_readdir(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_READDIR, false);
  if (!q) return;
  q->ino = ino;
  q->size = size;
  q->off = (uint64_t)off;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_readdirplus(fuse_req_t r, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_READDIRPLUS, false);
  if (!q) return;
  q->ino = ino;
  q->size = size;
  q->off = (uint64_t)off;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_releasedir(fuse_req_t r, fuse_ino_t ino, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_RELEASEDIR, false);
  if (!q) return;
  q->ino = ino;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_fsyncdir(fuse_req_t r, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_FSYNCDIR, false);
  if (!q) return;
  q->ino = ino;
  q->datasync = datasync;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_statfs(fuse_req_t r, fuse_ino_t ino) {
  Req *q = req_new(r, OP_STATFS, false);
  if (!q) return;
  q->ino = ino;
  submit(r, q);
}

static void ll_setxattr(fuse_req_t r, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags) {
  Req *q = req_new(r, OP_SETXATTR, true);
  if (!q) return;
  q->ino = ino;
  q->name = name;
  q->data = value;
  q->datalen = size;
  q->flags = flags;
  submit(r, q);
}

static void ll_getxattr(fuse_req_t r, fuse_ino_t ino, const char *name, size_t size) {
  Req *q = req_new(r, OP_GETXATTR, true);
  if (!q) return;
  q->ino = ino;
  q->name = name;
  q->size = size;
  submit(r, q);
}

static void ll_listxattr(fuse_req_t r, fuse_ino_t ino, size_t size) {
  Req *q = req_new(r, OP_LISTXATTR, false);
  if (!q) return;
  q->ino = ino;
  q->size = size;
  submit(r, q);
}

static void ll_removexattr(fuse_req_t r, fuse_ino_t ino, const char *name) {
  Req *q = req_new(r, OP_REMOVEXATTR, true);
  if (!q) return;
  q->ino = ino;
  q->name = name;
  submit(r, q);
}

static void ll_access(fuse_req_t r, fuse_ino_t ino, int mask) {
  Req *q = req_new(r, OP_ACCESS, false);
  if (!q) return;
  q->ino = ino;
  q->flags = mask;
  submit(r, q);
}

static void ll_create(fuse_req_t r, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_CREATE, true);
  if (!q) return;
  q->ino = parent;
  q->name = name;
  q->mode = mode;
  q->flags = fi->flags;
  submit(r, q);
}

static void ll_fallocate(fuse_req_t r, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_FALLOCATE, false);
  if (!q) return;
  q->ino = ino;
  q->whence = mode;
  q->off = (uint64_t)offset;
  q->len = (uint64_t)length;
  set_fi(q, fi);
  submit(r, q);
}

static void ll_copy_file_range(fuse_req_t r, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags) {
  Req *q = req_new(r, OP_COPY_FILE_RANGE, false);
  if (!q) return;
  q->ino = ino_in;
  q->off = (uint64_t)off_in;
  q->fh = fi_in->fh;
  q->ino2 = ino_out;
  q->off2 = (uint64_t)off_out;
  q->fh2 = fi_out->fh;
  q->len = len;
  q->flags = flags;
  submit(r, q);
}

static void ll_lseek(fuse_req_t r, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  Req *q = req_new(r, OP_LSEEK, false);
  if (!q) return;
  q->ino = ino;
  q->off = (uint64_t)off;
  q->whence = whence;
  set_fi(q, fi);
  submit(r, q);
}

/* ---------------------------------------------------------------------------------------------- */
/* Loop thread.                                                                                  */

static void *loop_main(void *arg) {
  Session *s = arg;
  struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
  int err = 0;
  while (!atomic_load(&s->closing)) {
    int n = poll(p, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (p[1].revents) break;
    if (!s->cur_chunk) s->cur_chunk = chunk_get();
    if (!s->cur_chunk) {
      err = ENOMEM;
      break;
    }
    ssize_t got = read(s->fd, s->cur_chunk, CHUNK_SIZE);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      if (errno != ENODEV) err = errno; /* ENODEV: unmounted or aborted */
      break;
    }
    struct fuse_buf fb = {.size = (size_t)got, .flags = 0, .mem = s->cur_chunk, .fd = -1, .pos = 0};
    fuse_session_process_buf(s->se, &fb);
    if (fuse_session_exited(s->se)) {
      err = EPROTO;
      break;
    }
  }
  chunk_put(s->cur_chunk);
  s->cur_chunk = NULL;
  if (!atomic_load(&s->closing)) {
    Req *q = calloc(1, sizeof(Req));
    if (q) {
      q->op = OP_EXIT;
      q->err = err;
      queue_push(s, q);
    }
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* JS side: dispatch queued Reqs.                                                                */

#define CHECK(call)                                                                                  \
  do {                                                                                               \
    if ((call) != napi_ok) goto fail;                                                                \
  } while (0)

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value bytes(napi_env env, const void *p, size_t n) {
  napi_value r;
  void *out;
  if (napi_create_buffer_copy(env, n, p, &out, &r) != napi_ok) napi_get_undefined(env, &r);
  return r;
}

static napi_value cstr_bytes(napi_env env, const char *s) { return bytes(env, s, strlen(s)); }

static napi_value timespec_pair(napi_env env, double *f, const struct timespec *ts) {
  f[0] = (double)ts->tv_sec;
  f[1] = (double)ts->tv_nsec;
  return NULL;
}

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)data;
  Session *s = context;
  pthread_mutex_lock(&s->qmu);
  Req *q = s->qhead;
  s->qhead = s->qtail = NULL;
  s->scheduled = false;
  pthread_mutex_unlock(&s->qmu);
  if (!env) {
    while (q) {
      Req *n = q->next;
      req_free(q);
      q = n;
    }
    return;
  }
  napi_value undef;
  napi_get_undefined(env, &undef);
  while (q) {
    Req *next = q->next;
    napi_value argv[16];
    size_t argc = 6;
    argv[0] = num(env, q->op);
    argv[1] = num(env, q->handle);
    argv[2] = num(env, q->uid);
    argv[3] = num(env, q->gid);
    argv[4] = num(env, q->pid);
    argv[5] = num(env, q->umask);
#define A(v) (argv[argc++] = (v))
#define FH() num(env, q->has_fh ? (double)q->fh : -1)
    switch (q->op) {
    case OP_INIT: {
      A(num(env, q->proto_major));
      A(num(env, q->proto_minor));
      A(num(env, q->capable));
      A(num(env, q->want));
      A(num(env, q->max_write));
      A(num(env, q->max_read));
      A(num(env, q->max_readahead));
      break;
    }
    case OP_DESTROY: break;
    case OP_EXIT: A(num(env, q->err)); break;
    case OP_LOOKUP: case OP_UNLINK: case OP_RMDIR: case OP_REMOVEXATTR:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      break;
    case OP_FORGET:
      A(num(env, (double)q->ino));
      A(num(env, (double)q->len));
      break;
    case OP_FORGET_MULTI: {
      napi_value ab, arr;
      void *p;
      napi_create_arraybuffer(env, q->nforgets * 2 * sizeof(double), &p, &ab);
      for (size_t i = 0; i < q->nforgets * 2; i++) ((double *)p)[i] = (double)q->forgets[i];
      napi_create_typedarray(env, napi_float64_array, q->nforgets * 2, ab, 0, &arr);
      A(arr);
      break;
    }
    case OP_GETATTR: case OP_RELEASEDIR:
      A(num(env, (double)q->ino));
      A(FH());
      break;
    case OP_SETATTR: {
      napi_value ab, arr;
      void *p;
      napi_create_arraybuffer(env, A_COUNT * sizeof(double), &p, &ab);
      double *f = p;
      f[A_INO] = (double)q->ino;
      f[A_MODE] = q->st.st_mode;
      f[A_NLINK] = (double)q->st.st_nlink;
      f[A_UID] = q->st.st_uid;
      f[A_GID] = q->st.st_gid;
      f[A_RDEV] = (double)q->st.st_rdev;
      f[A_SIZE] = (double)q->st.st_size;
      f[A_BLOCKS] = 0;
      f[A_BLKSIZE] = 0;
      timespec_pair(env, f + A_ATIME_S, &q->st.st_atim);
      timespec_pair(env, f + A_MTIME_S, &q->st.st_mtim);
      timespec_pair(env, f + A_CTIME_S, &q->st.st_ctim);
      napi_create_typedarray(env, napi_float64_array, A_COUNT, ab, 0, &arr);
      A(num(env, (double)q->ino));
      A(arr);
      A(num(env, q->valid));
      A(FH());
      break;
    }
    case OP_READLINK: case OP_STATFS:
      A(num(env, (double)q->ino));
      break;
    case OP_MKNOD:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      A(num(env, q->mode));
      A(num(env, (double)q->rdev));
      break;
    case OP_MKDIR:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      A(num(env, q->mode));
      break;
    case OP_SYMLINK:
      A(cstr_bytes(env, q->name2));
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      break;
    case OP_RENAME:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      A(num(env, (double)q->ino2));
      A(cstr_bytes(env, q->name2));
      A(num(env, q->flags));
      break;
    case OP_LINK:
      A(num(env, (double)q->ino));
      A(num(env, (double)q->ino2));
      A(cstr_bytes(env, q->name));
      break;
    case OP_OPEN: case OP_OPENDIR: case OP_ACCESS:
      A(num(env, (double)q->ino));
      A(num(env, q->flags));
      break;
    case OP_READ: case OP_READDIR: case OP_READDIRPLUS:
      A(num(env, (double)q->ino));
      A(num(env, (double)q->size));
      A(num(env, (double)q->off));
      A(FH());
      break;
    case OP_WRITE: {
      napi_value b;
      if (napi_create_external_buffer(env, q->datalen, (void *)q->data, NULL, NULL, &b) != napi_ok)
        b = bytes(env, q->data, q->datalen);
      A(num(env, (double)q->ino));
      A(b);
      A(num(env, (double)q->off));
      A(FH());
      A(num(env, q->flags));
      A(num(env, q->writepage ? 1 : 0));
      break;
    }
    case OP_FLUSH:
      A(num(env, (double)q->ino));
      A(FH());
      A(num(env, (double)q->lock_owner));
      break;
    case OP_RELEASE:
      A(num(env, (double)q->ino));
      A(FH());
      A(num(env, q->flags));
      break;
    case OP_FSYNC: case OP_FSYNCDIR:
      A(num(env, (double)q->ino));
      A(num(env, q->datasync));
      A(FH());
      break;
    case OP_SETXATTR:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      A(bytes(env, q->data, q->datalen));
      A(num(env, q->flags));
      break;
    case OP_GETXATTR:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      A(num(env, (double)q->size));
      break;
    case OP_LISTXATTR:
      A(num(env, (double)q->ino));
      A(num(env, (double)q->size));
      break;
    case OP_CREATE:
      A(num(env, (double)q->ino));
      A(cstr_bytes(env, q->name));
      A(num(env, q->mode));
      A(num(env, q->flags));
      break;
    case OP_FALLOCATE:
      A(num(env, (double)q->ino));
      A(num(env, q->whence));
      A(num(env, (double)q->off));
      A(num(env, (double)q->len));
      A(FH());
      break;
    case OP_COPY_FILE_RANGE:
      A(num(env, (double)q->ino));
      A(num(env, (double)q->off));
      A(num(env, (double)q->fh));
      A(num(env, (double)q->ino2));
      A(num(env, (double)q->off2));
      A(num(env, (double)q->fh2));
      A(num(env, (double)q->len));
      A(num(env, q->flags));
      break;
    case OP_LSEEK:
      A(num(env, (double)q->ino));
      A(num(env, (double)q->off));
      A(num(env, q->whence));
      A(FH());
      break;
    default: break;
    }
#undef A
#undef FH
    /* Arguments are JS values now: the chunk can serve the next request (writes keep theirs). */
    chunk_put(q->chunk);
    q->chunk = NULL;
    napi_status st = napi_call_function(env, undef, fn, argc, argv, NULL);
    if (st == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
    req_free(q);
    q = next;
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* mount / close                                                                                 */

static void session_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Session *s = data;
  pthread_mutex_destroy(&s->qmu);
  pthread_cond_destroy(&s->replying_cv);
  free(s->mountpoint);
  free(s);
}

static napi_value throw_err(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static bool get_u32_prop(napi_env env, napi_value obj, const char *key, unsigned *out) {
  napi_value v;
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  uint32_t u;
  if (napi_get_value_uint32(env, v, &u) != napi_ok) return false;
  *out = u;
  return true;
}

static bool get_bool_prop(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  bool has = false, b = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return false;
  return b;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* mount(mountpoint: string, args: string[], ops: number[], config: object, dispatch: Function) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_err(env, "EINVAL", "mount: expected 5 arguments");

  struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.init = ll_init;
  ops.destroy = ll_destroy;
  uint32_t nops = 0;
  napi_get_array_length(env, argv[2], &nops);
  for (uint32_t i = 0; i < nops; i++) {
    napi_value v;
    uint32_t op;
    napi_get_element(env, argv[2], i, &v);
    if (napi_get_value_uint32(env, v, &op) != napi_ok) continue;
    switch (op) {
    case OP_LOOKUP: ops.lookup = ll_lookup; break;
    case OP_FORGET: ops.forget = ll_forget; ops.forget_multi = ll_forget_multi; break;
    case OP_GETATTR: ops.getattr = ll_getattr; break;
    case OP_SETATTR: ops.setattr = ll_setattr; break;
    case OP_READLINK: ops.readlink = ll_readlink; break;
    case OP_MKNOD: ops.mknod = ll_mknod; break;
    case OP_MKDIR: ops.mkdir = ll_mkdir; break;
    case OP_UNLINK: ops.unlink = ll_unlink; break;
    case OP_RMDIR: ops.rmdir = ll_rmdir; break;
    case OP_SYMLINK: ops.symlink = ll_symlink; break;
    case OP_RENAME: ops.rename = ll_rename; break;
    case OP_LINK: ops.link = ll_link; break;
    case OP_OPEN: ops.open = ll_open; break;
    case OP_READ: ops.read = ll_read; break;
    case OP_WRITE: ops.write = ll_write; break;
    case OP_FLUSH: ops.flush = ll_flush; break;
    case OP_RELEASE: ops.release = ll_release; break;
    case OP_FSYNC: ops.fsync = ll_fsync; break;
    case OP_OPENDIR: ops.opendir = ll_opendir; break;
    case OP_READDIR: ops.readdir = ll_readdir; break;
    case OP_READDIRPLUS: ops.readdirplus = ll_readdirplus; break;
    case OP_RELEASEDIR: ops.releasedir = ll_releasedir; break;
    case OP_FSYNCDIR: ops.fsyncdir = ll_fsyncdir; break;
    case OP_STATFS: ops.statfs = ll_statfs; break;
    case OP_SETXATTR: ops.setxattr = ll_setxattr; break;
    case OP_GETXATTR: ops.getxattr = ll_getxattr; break;
    case OP_LISTXATTR: ops.listxattr = ll_listxattr; break;
    case OP_REMOVEXATTR: ops.removexattr = ll_removexattr; break;
    case OP_ACCESS: ops.access = ll_access; break;
    case OP_CREATE: ops.create = ll_create; break;
    case OP_FALLOCATE: ops.fallocate = ll_fallocate; break;
    case OP_COPY_FILE_RANGE: ops.copy_file_range = ll_copy_file_range; break;
    case OP_LSEEK: ops.lseek = ll_lseek; break;
    default: break;
    }
  }

  Session *s = calloc(1, sizeof(Session));
  if (!s) return throw_err(env, "ENOMEM", "mount: out of memory");
  s->fd = -1;
  s->wake[0] = s->wake[1] = -1;
  pthread_mutex_init(&s->qmu, NULL);
  pthread_cond_init(&s->replying_cv, NULL);
  get_u32_prop(env, argv[3], "maxWrite", &s->max_write);
  get_u32_prop(env, argv[3], "maxBackground", &s->max_background);
  get_u32_prop(env, argv[3], "congestionThreshold", &s->congestion_threshold);
  s->writeback = get_bool_prop(env, argv[3], "writebackCache");
  s->posix_acl = get_bool_prop(env, argv[3], "posixAcl");
  s->auto_inval_data = get_bool_prop(env, argv[3], "autoInvalData");
  s->mountpoint = get_string(env, argv[0]);

  uint32_t nargs = 0;
  napi_get_array_length(env, argv[1], &nargs);
  char **cargv = calloc(nargs + 2, sizeof(char *));
  cargv[0] = strdup("imapfs");
  for (uint32_t i = 0; i < nargs; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    cargv[i + 1] = get_string(env, v);
  }
  struct fuse_args fargs = FUSE_ARGS_INIT((int)nargs + 1, cargv);
  char errbuf[512] = "";
  const char *code = "EIO";

  s->se = fuse_session_new(&fargs, &ops, sizeof ops, s);
  fuse_opt_free_args(&fargs);
  for (uint32_t i = 0; i < nargs + 1; i++) free(cargv[i]);
  free(cargv);
  if (!s->se) {
    code = "EINVAL";
    snprintf(errbuf, sizeof errbuf, "fuse_session_new failed (bad mount option?)");
    goto fail_session;
  }
  if (!s->mountpoint || fuse_session_mount(s->se, s->mountpoint) != 0) {
    snprintf(errbuf, sizeof errbuf, "fuse_session_mount failed on %s", s->mountpoint ? s->mountpoint : "?");
    goto fail_session;
  }
  s->fd = fuse_session_fd(s->se);
  if (pipe2(s->wake, O_CLOEXEC) != 0) {
    snprintf(errbuf, sizeof errbuf, "pipe2: %s", strerror(errno));
    goto fail_mounted;
  }
  napi_value name;
  napi_create_string_utf8(env, "imapfs_fuse", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, s, session_finalize, s, call_js,
                                      &s->tsfn) != napi_ok) {
    snprintf(errbuf, sizeof errbuf, "napi_create_threadsafe_function failed");
    goto fail_mounted;
  }
  if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
    snprintf(errbuf, sizeof errbuf, "pthread_create: %s", strerror(errno));
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    s->tsfn = NULL;
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    close(s->wake[0]);
    close(s->wake[1]);
    return throw_err(env, code, errbuf); /* s is freed by the finalizer */
  }
  s->thread_started = true;
  napi_value ext;
  napi_create_external(env, s, NULL, NULL, &ext);
  return ext;

fail_mounted:
  fuse_session_unmount(s->se);
fail_session:
  if (s->se) fuse_session_destroy(s->se);
  if (s->wake[0] >= 0) close(s->wake[0]);
  if (s->wake[1] >= 0) close(s->wake[1]);
  session_finalize(env, s, NULL);
  return throw_err(env, code, errbuf);
}

static Session *get_session(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* close(session): stops the loop, fails pending requests with EIO, unmounts, frees. Idempotent. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Session *s = argc ? get_session(env, argv[0]) : NULL;
  napi_value res;
  napi_get_boolean(env, s && !s->closed, &res);
  if (!s || s->closed) return res;
  s->closed = true;
  atomic_store(&s->closing, true);
  fuse_session_exit(s->se);
  ssize_t wr = write(s->wake[1], "x", 1);
  (void)wr;
  if (s->thread_started) pthread_join(s->thread, NULL);

  /* Fail every request of this session still parked in the slot table. */
  pthread_mutex_lock(&slot_mu);
  for (uint32_t i = 0; i < slot_used_hi; i++) {
    if (slots[i].req && slots[i].s == s) {
      fuse_req_t r = slots[i].req;
      void *chunk = slots[i].chunk;
      slot_release_locked((int32_t)i);
      fuse_reply_err(r, EIO);
      chunk_put(chunk);
    }
  }
  while (s->replying > 0) pthread_cond_wait(&s->replying_cv, &slot_mu);
  pthread_mutex_unlock(&slot_mu);

  pthread_mutex_lock(&s->qmu);
  Req *q = s->qhead;
  s->qhead = s->qtail = NULL;
  pthread_mutex_unlock(&s->qmu);
  while (q) {
    Req *n = q->next;
    req_free(q);
    q = n;
  }
  fuse_session_unmount(s->se);
  fuse_session_destroy(s->se);
  s->se = NULL;
  close(s->wake[0]);
  close(s->wake[1]);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  return res;
}

/* ref(session, bool): whether a mounted session keeps the event loop alive (default: yes). */
static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Session *s = argc ? get_session(env, argv[0]) : NULL;
  bool on = true;
  if (argc > 1) napi_get_value_bool(env, argv[1], &on);
  if (s && !s->closed) {
    if (on) napi_ref_threadsafe_function(env, s->tsfn);
    else napi_unref_threadsafe_function(env, s->tsfn);
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Replies. Each takes the numeric handle first and returns true if it answered the request,      */
/* false if the handle was stale (already answered, or its session closed).                       */

typedef struct {
  fuse_req_t req;
  Session *s;
  void *chunk;
  napi_value argv[8];
  size_t argc;
} ReplyCtx;

static bool reply_begin(napi_env env, napi_callback_info info, ReplyCtx *c, size_t want) {
  c->argc = 8;
  napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL);
  if (c->argc < want) {
    napi_throw_type_error(env, "EINVAL", "reply: missing arguments");
    return false;
  }
  double h;
  if (napi_get_value_double(env, c->argv[0], &h) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "reply: handle must be a number");
    return false;
  }
  return slot_take(h, &c->req, &c->s, &c->chunk);
}

static napi_value reply_end(napi_env env, ReplyCtx *c) {
  slot_done(c->s, c->chunk);
  napi_value t;
  napi_get_boolean(env, true, &t);
  return t;
}

static napi_value js_false(napi_env env) {
  napi_value f;
  napi_get_boolean(env, false, &f);
  return f;
}

static double arg_num(napi_env env, napi_value v, double dflt) {
  double d;
  return napi_get_value_double(env, v, &d) == napi_ok ? d : dflt;
}

static bool get_f64s(napi_env env, napi_value v, double **p, size_t need) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) != napi_ok) return false;
  if (t != napi_float64_array || len < need) return false;
  *p = data;
  return true;
}

static void fill_stat(const double *a, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)a[A_INO];
  st->st_mode = (mode_t)a[A_MODE];
  st->st_nlink = (nlink_t)a[A_NLINK];
  st->st_uid = (uid_t)a[A_UID];
  st->st_gid = (gid_t)a[A_GID];
  st->st_rdev = (dev_t)a[A_RDEV];
  st->st_size = (off_t)a[A_SIZE];
  st->st_blocks = (blkcnt_t)a[A_BLOCKS];
  st->st_blksize = (blksize_t)a[A_BLKSIZE];
  st->st_atim.tv_sec = (time_t)a[A_ATIME_S];
  st->st_atim.tv_nsec = (long)a[A_ATIME_NS];
  st->st_mtim.tv_sec = (time_t)a[A_MTIME_S];
  st->st_mtim.tv_nsec = (long)a[A_MTIME_NS];
  st->st_ctim.tv_sec = (time_t)a[A_CTIME_S];
  st->st_ctim.tv_nsec = (long)a[A_CTIME_NS];
}

static void fill_fi(struct fuse_file_info *fi, double fh, unsigned flags) {
  memset(fi, 0, sizeof *fi);
  fi->fh = (uint64_t)fh;
  fi->direct_io = (flags & OPEN_DIRECT_IO) != 0;
  fi->keep_cache = (flags & OPEN_KEEP_CACHE) != 0;
  fi->nonseekable = (flags & OPEN_NONSEEKABLE) != 0;
  fi->cache_readdir = (flags & OPEN_CACHE_READDIR) != 0;
  fi->noflush = (flags & OPEN_NOFLUSH) != 0;
}

/* The request was taken but the arguments are unusable: answer EIO rather than leak it. */
static napi_value reply_bad(napi_env env, ReplyCtx *c, const char *what) {
  fuse_reply_err(c->req, EIO);
  slot_done(c->s, c->chunk);
  napi_throw_type_error(env, "EINVAL", what);
  return NULL;
}

/* replyErr(h, errno): errno 0 is success for ops that answer with a plain status. */
static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 2)) return js_false(env);
  int e = (int)arg_num(env, c.argv[1], EIO);
  fuse_reply_err(c.req, e < 0 ? -e : e);
  return reply_end(env, &c);
}

/* replyEntry(h, attr: Float64Array, entryTimeout, attrTimeout, generation) */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 5)) return js_false(env);
  double *a;
  if (!get_f64s(env, c.argv[1], &a, A_COUNT)) return reply_bad(env, &c, "replyEntry: attr must be a Float64Array");
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  fill_stat(a, &e.attr);
  e.ino = (fuse_ino_t)a[A_INO];
  e.entry_timeout = arg_num(env, c.argv[2], 1);
  e.attr_timeout = arg_num(env, c.argv[3], 1);
  e.generation = (uint64_t)arg_num(env, c.argv[4], 0);
  fuse_reply_entry(c.req, &e);
  return reply_end(env, &c);
}

/* replyCreate(h, attr, entryTimeout, attrTimeout, generation, fh, openFlags) */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 7)) return js_false(env);
  double *a;
  if (!get_f64s(env, c.argv[1], &a, A_COUNT)) return reply_bad(env, &c, "replyCreate: attr must be a Float64Array");
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  fill_stat(a, &e.attr);
  e.ino = (fuse_ino_t)a[A_INO];
  e.entry_timeout = arg_num(env, c.argv[2], 1);
  e.attr_timeout = arg_num(env, c.argv[3], 1);
  e.generation = (uint64_t)arg_num(env, c.argv[4], 0);
  struct fuse_file_info fi;
  fill_fi(&fi, arg_num(env, c.argv[5], 0), (unsigned)arg_num(env, c.argv[6], 0));
  fuse_reply_create(c.req, &e, &fi);
  return reply_end(env, &c);
}

/* replyAttr(h, attr, attrTimeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 3)) return js_false(env);
  double *a;
  if (!get_f64s(env, c.argv[1], &a, A_COUNT)) return reply_bad(env, &c, "replyAttr: attr must be a Float64Array");
  struct stat st;
  fill_stat(a, &st);
  fuse_reply_attr(c.req, &st, arg_num(env, c.argv[2], 1));
  return reply_end(env, &c);
}

/* replyOpen(h, fh, openFlags) */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 3)) return js_false(env);
  struct fuse_file_info fi;
  fill_fi(&fi, arg_num(env, c.argv[1], 0), (unsigned)arg_num(env, c.argv[2], 0));
  fuse_reply_open(c.req, &fi);
  return reply_end(env, &c);
}

/* replyWrite(h, count) */
static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 2)) return js_false(env);
  fuse_reply_write(c.req, (size_t)arg_num(env, c.argv[1], 0));
  return reply_end(env, &c);
}

/* replyBuf(h, data?: Uint8Array, offset = 0, length = rest): read, getxattr and listxattr data. */
static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 1)) return js_false(env);
  const char *p = NULL;
  size_t len = 0;
  if (c.argc > 1) {
    napi_valuetype t;
    napi_typeof(env, c.argv[1], &t);
    if (t != napi_undefined && t != napi_null) {
      napi_typedarray_type tt;
      void *data;
      if (napi_get_typedarray_info(env, c.argv[1], &tt, &len, &data, NULL, NULL) != napi_ok || tt != napi_uint8_array)
        return reply_bad(env, &c, "replyBuf: data must be a Uint8Array");
      p = data;
    }
  }
  size_t off = c.argc > 2 ? (size_t)arg_num(env, c.argv[2], 0) : 0;
  if (off > len) off = len;
  size_t n = len - off;
  if (c.argc > 3) {
    double want = arg_num(env, c.argv[3], (double)n);
    if (want >= 0 && want < (double)n) n = (size_t)want;
  }
  fuse_reply_buf(c.req, p ? p + off : NULL, n);
  return reply_end(env, &c);
}

/* replyReadlink(h, target: Uint8Array) */
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 2)) return js_false(env);
  napi_typedarray_type tt;
  void *data;
  size_t len;
  if (napi_get_typedarray_info(env, c.argv[1], &tt, &len, &data, NULL, NULL) != napi_ok || tt != napi_uint8_array)
    return reply_bad(env, &c, "replyReadlink: target must be a Uint8Array");
  char *z = malloc(len + 1);
  if (!z) {
    fuse_reply_err(c.req, ENOMEM);
    return reply_end(env, &c);
  }
  memcpy(z, data, len);
  z[len] = 0;
  fuse_reply_readlink(c.req, z);
  free(z);
  return reply_end(env, &c);
}

/* replyXattrSize(h, size): the answer to a size query (size 0). */
static napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 2)) return js_false(env);
  fuse_reply_xattr(c.req, (size_t)arg_num(env, c.argv[1], 0));
  return reply_end(env, &c);
}

/* replyStatfs(h, Float64Array[bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax]) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 2)) return js_false(env);
  double *a;
  if (!get_f64s(env, c.argv[1], &a, 11)) return reply_bad(env, &c, "replyStatfs: expected a Float64Array(11)");
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  sv.f_bsize = (unsigned long)a[0];
  sv.f_frsize = (unsigned long)a[1];
  sv.f_blocks = (fsblkcnt_t)a[2];
  sv.f_bfree = (fsblkcnt_t)a[3];
  sv.f_bavail = (fsblkcnt_t)a[4];
  sv.f_files = (fsfilcnt_t)a[5];
  sv.f_ffree = (fsfilcnt_t)a[6];
  sv.f_favail = (fsfilcnt_t)a[7];
  sv.f_fsid = (unsigned long)a[8];
  sv.f_flag = (unsigned long)a[9];
  sv.f_namemax = (unsigned long)a[10];
  fuse_reply_statfs(c.req, &sv);
  return reply_end(env, &c);
}

/* replyLseek(h, offset) */
static napi_value js_reply_lseek(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  if (!reply_begin(env, info, &c, 2)) return js_false(env);
  fuse_reply_lseek(c.req, (off_t)arg_num(env, c.argv[1], 0));
  return reply_end(env, &c);
}

/*
 * replyDir(h, plus: boolean, size, entries: Array<[name: Uint8Array, nextOffset, attr: Float64Array]>,
 *          entryTimeout, attrTimeout): packs entries until `size` bytes are full and replies.
 * Returns the number of entries sent (for readdirplus each one, except . and .., is a lookup), or
 * -1 if the handle was stale.
 */
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  ReplyCtx c;
  napi_value out;
  if (!reply_begin(env, info, &c, 4)) {
    napi_create_int32(env, -1, &out);
    return out;
  }
  bool plus = false;
  napi_get_value_bool(env, c.argv[1], &plus);
  size_t size = (size_t)arg_num(env, c.argv[2], 4096);
  double et = c.argc > 4 ? arg_num(env, c.argv[4], 1) : 1;
  double at = c.argc > 5 ? arg_num(env, c.argv[5], 1) : 1;
  uint32_t n = 0;
  napi_get_array_length(env, c.argv[3], &n);
  char *buf = malloc(size ? size : 1);
  char name[1024];
  size_t pos = 0;
  uint32_t sent = 0;
  if (!buf) {
    fuse_reply_err(c.req, ENOMEM);
    reply_end(env, &c);
    napi_create_int32(env, 0, &out);
    return out;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value ent, vname, voff, vattr;
    if (napi_get_element(env, c.argv[3], i, &ent) != napi_ok) break;
    napi_get_element(env, ent, 0, &vname);
    napi_get_element(env, ent, 1, &voff);
    napi_get_element(env, ent, 2, &vattr);
    napi_typedarray_type tt;
    void *data;
    size_t nlen;
    double *a;
    if (napi_get_typedarray_info(env, vname, &tt, &nlen, &data, NULL, NULL) != napi_ok || nlen >= sizeof name ||
        !get_f64s(env, vattr, &a, A_COUNT)) {
      free(buf);
      return reply_bad(env, &c, "replyDir: bad entry");
    }
    memcpy(name, data, nlen);
    name[nlen] = 0;
    off_t next = (off_t)arg_num(env, voff, 0);
    size_t used;
    if (plus) {
      struct fuse_entry_param e;
      memset(&e, 0, sizeof e);
      fill_stat(a, &e.attr);
      e.ino = (fuse_ino_t)a[A_INO];
      e.entry_timeout = et;
      e.attr_timeout = at;
      used = fuse_add_direntry_plus(c.req, buf + pos, size - pos, name, &e, next);
    } else {
      struct stat st;
      fill_stat(a, &st);
      used = fuse_add_direntry(c.req, buf + pos, size - pos, name, &st, next);
    }
    if (used > size - pos) break;
    pos += used;
    sent++;
  }
  fuse_reply_buf(c.req, buf, pos);
  free(buf);
  reply_end(env, &c);
  napi_create_uint32(env, sent, &out);
  return out;
}

/* stats(): { chunks: allocated receive chunks, pooled: free ones, pending: parked requests } */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o;
  napi_create_object(env, &o);
  pthread_mutex_lock(&pool_mu);
  int pooled = pool_n;
  pthread_mutex_unlock(&pool_mu);
  napi_set_named_property(env, o, "chunks", num(env, atomic_load(&pool_allocated)));
  napi_set_named_property(env, o, "pooled", num(env, pooled));
  napi_set_named_property(env, o, "pending", num(env, atomic_load(&slots_in_use)));
  return o;
}

/* ---------------------------------------------------------------------------------------------- */

static napi_value init_module(napi_env env, napi_value exports) {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
    {"mount", js_mount},
    {"close", js_close},
    {"ref", js_ref},
    {"replyErr", js_reply_err},
    {"replyEntry", js_reply_entry},
    {"replyCreate", js_reply_create},
    {"replyAttr", js_reply_attr},
    {"replyOpen", js_reply_open},
    {"replyWrite", js_reply_write},
    {"replyBuf", js_reply_buf},
    {"replyReadlink", js_reply_readlink},
    {"replyXattrSize", js_reply_xattr},
    {"replyStatfs", js_reply_statfs},
    {"replyLseek", js_reply_lseek},
    {"replyDir", js_reply_dir},
    {"stats", js_stats},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  napi_value names;
  CHECK(napi_create_array_with_length(env, OP_COUNT, &names));
  for (uint32_t i = 0; i < OP_COUNT; i++) {
    napi_value s;
    CHECK(napi_create_string_utf8(env, OP_NAMES[i], NAPI_AUTO_LENGTH, &s));
    CHECK(napi_set_element(env, names, i, s));
  }
  CHECK(napi_set_named_property(env, exports, "opNames", names));
  napi_value ver;
  CHECK(napi_create_int32(env, fuse_version(), &ver));
  CHECK(napi_set_named_property(env, exports, "fuseVersion", ver));
  return exports;
fail:
  return NULL;
}

NAPI_MODULE_INIT() { return init_module(env, exports); }
