/*
 * Many positional reads of one file in one system call, through a per-thread io_uring.
 *
 * A 1 MiB read of the map is ~512 row pieces of 2 KiB; one pread each costs ~2.5 µs of system-call
 * overhead on the VMs we run on, more than the copy. One io_uring_enter for the whole batch costs
 * ~0.85 µs per piece, and pieces not in the page cache are read by the kernel in parallel.
 */
#ifndef IMAPFS_URING_H
#define IMAPFS_URING_H

#include <stdint.h>

/*
 * Reads span i (lengths[i] bytes at file_offsets[i] into data + buffer_offsets[i]) for every i in
 * [0, count); the ring runs them in any order, so spans must not overlap in the buffer. Returns 0
 * when the ring ran the batch: res[i] is then the bytes read or -errno (anything short of
 * lengths[i] is the caller's to finish). Returns -1 when this thread has no usable ring; nothing
 * was submitted and the caller reads the spans the ordinary way.
 */
int uring_read_spans(int fd, uint8_t *data, const double *file_offsets, const int32_t *lengths,
                     const int32_t *buffer_offsets, uint32_t count, int32_t *res);

/* "io_uring" once some thread has a ring, else "pread"; *err: the errno that refused a ring (0: none). */
const char *uring_engine(int *err);

#endif
