/*
 * uring.h's batched reads: one io_uring per libuv pool thread (span_io.c asks only from those),
 * set up on first use and kept for the life of the process. If every environment that loaded the
 * addon goes away (all actor workers restarting at once) and it is loaded again, the old rings stay
 * open: a few pages and one fd per pool thread, per such reload. Raw system calls: liburing is not
 * on every machine we build on, and the part used here is small. IMAPFS_IO_URING=0 turns it off (every batch then uses pread, the previous behaviour).
 */
#define _GNU_SOURCE
#include "uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spans in flight per call; a 1 MiB plan has 512–1,024. */
#define RING_ENTRIES 1024u

typedef struct {
  int state; /* 0: not tried on this thread, 1: ready, -1: refused */
  int fd;
  unsigned *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;
  struct io_uring_sqe *sqes;
  unsigned entries;
} Ring;

static __thread Ring ring;
static int any_ready;   /* some thread has a ring (atomic) */
static int refused_err; /* errno of the last refusal (atomic) */

static void *map_ring(int fd, size_t len, off_t what) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);
  return p == MAP_FAILED ? NULL : p;
}

static int refuse(int err) {
  ring.state = -1;
  __atomic_store_n(&refused_err, err, __ATOMIC_RELAXED);
  return -1;
}

static int ring_setup(void) {
  const char *env = getenv("IMAPFS_IO_URING");
  if (env && strcmp(env, "0") == 0) return refuse(0);
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* Only this thread submits and it waits for its completions: cheaper completion handling (6.0+). */
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
  if (fd < 0 && errno == EINVAL) {
    memset(&p, 0, sizeof p);
    fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
  }
  if (fd < 0) return refuse(errno); /* ENOSYS, EPERM (io_uring_disabled, seccomp), ENOMEM */
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  uint8_t *sq = map_ring(fd, sq_len, IORING_OFF_SQ_RING);
  uint8_t *cq = map_ring(fd, cq_len, IORING_OFF_CQ_RING);
  struct io_uring_sqe *sqes = map_ring(fd, p.sq_entries * sizeof(struct io_uring_sqe), IORING_OFF_SQES);
  if (!sq || !cq || !sqes) {
    int err = errno;
    close(fd); /* the mappings that did succeed stay: a few pages, once per thread */
    return refuse(err);
  }
  ring.fd = fd;
  ring.sq_tail = (unsigned *)(sq + p.sq_off.tail);
  ring.sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  ring.sq_array = (unsigned *)(sq + p.sq_off.array);
  ring.cq_head = (unsigned *)(cq + p.cq_off.head);
  ring.cq_tail = (unsigned *)(cq + p.cq_off.tail);
  ring.cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  ring.cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  ring.sqes = sqes;
  ring.entries = p.sq_entries < RING_ENTRIES ? p.sq_entries : RING_ENTRIES;
  ring.state = 1;
  __atomic_store_n(&any_ready, 1, __ATOMIC_RELAXED);
  return 0;
}

/* Takes every completion posted so far into res; returns how many. */
static uint32_t reap(int32_t *res) {
  unsigned head = *ring.cq_head;
  unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
  uint32_t n = 0;
  while (head != tail) {
    const struct io_uring_cqe *c = &ring.cqes[head & *ring.cq_mask];
    res[c->user_data] = c->res;
    head++;
    n++;
  }
  __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
  return n;
}

int uring_read_spans(int fd, uint8_t *data, const double *file_offsets, const int32_t *lengths,
                     const int32_t *buffer_offsets, uint32_t count, int32_t *res) {
  if (ring.state == 0) ring_setup();
  if (ring.state != 1) return -1;
  for (uint32_t from = 0; from < count;) {
    uint32_t n = count - from < ring.entries ? count - from : ring.entries;
    unsigned tail = *ring.sq_tail;
    for (uint32_t k = 0; k < n; k++) {
      uint32_t i = from + k;
      unsigned idx = tail & *ring.sq_mask;
      struct io_uring_sqe *e = &ring.sqes[idx];
      memset(e, 0, sizeof *e);
      e->opcode = IORING_OP_READ;
      e->fd = fd;
      e->addr = (uint64_t)(uintptr_t)(data + buffer_offsets[i]);
      e->len = (uint32_t)lengths[i];
      e->off = (uint64_t)file_offsets[i];
      e->user_data = i;
      ring.sq_array[idx] = idx;
      res[i] = -EINPROGRESS;
      tail++;
    }
    __atomic_store_n(ring.sq_tail, tail, __ATOMIC_RELEASE);
    uint32_t unsubmitted = n, completed = 0, failures = 0;
    while (completed < n) {
      int r = (int)syscall(__NR_io_uring_enter, ring.fd, unsubmitted, n - completed,
                           IORING_ENTER_GETEVENTS, NULL, 0);
      if (r >= 0) {
        unsubmitted -= (uint32_t)r;
        failures = 0;
      } else if (errno != EINTR && errno != EAGAIN && errno != EBUSY && ++failures > 1000) {
        /* Only a broken ring fails like this. Spans never submitted are the caller's to read
         * (res stays -EINPROGRESS); the thread gives its ring up. */
        refuse(errno);
        return 0;
      } else if (r < 0) {
        /* A signal or a short-lived lack of kernel memory: reap what is done and go on. The spans
         * already submitted must be waited for: the kernel writes their buffers until they complete. */
        sched_yield();
      }
      completed += reap(res);
    }
    from += n;
  }
  return 0;
}

const char *uring_engine(int *err) {
  *err = __atomic_load_n(&refused_err, __ATOMIC_RELAXED);
  return __atomic_load_n(&any_ready, __ATOMIC_RELAXED) ? "io_uring" : "pread";
}
