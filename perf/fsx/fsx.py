#!/usr/bin/env python3
"""fsx for imapfs: a re-implementation (python3, stdlib only) of the file system exerciser of
xfstests/LTP (fsx.c), which is not packaged in Debian 12.

The algorithm is fsx's: one test file and an in-memory "good" copy of what it must contain; a seeded
PRNG picks every operation, its offset and its length; every read is compared byte for byte with the
good copy and, after every operation, the file's size (fstat) with the good copy's size. The data
written by operation #n is fsx's pattern: n mod 256 at even offsets, (n + original[i]) mod 256 at odd
offsets (original = seeded random bytes), so a stale byte tells which operation wrote it.

Operations (picked uniformly, as fsx does; a disabled mmap op becomes its read()/write() twin, any
other disabled op is logged as skipped):
  read, write                 pread/pwrite on the buffered fd
  mapread, mapwrite           mmap(MAP_SHARED) of the range; mapwrite extends the file with
                              ftruncate first (as fsx), copies, msync(MS_SYNC), munmaps
  truncate                    ftruncate up or down
  fallocate                   fallocate(2) mode 0 or FALLOC_FL_KEEP_SIZE (raw syscall through
                              ctypes: glibc's posix_fallocate would silently emulate an unsupported
                              call with writes; os.posix_fallocate is used only without ctypes)
  punch_hole, zero_range,     FALLOC_FL_PUNCH_HOLE|KEEP_SIZE, FALLOC_FL_ZERO_RANGE[|KEEP_SIZE],
  collapse_range,             FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE (block aligned);
  insert_range                the first EOPNOTSUPP/ENOTSUP disables the mode (reported in the summary)
  copy_range                  copy_file_range(2) within the file (non-overlapping, as fsx)
  dread, dwrite               pread/pwrite on a second fd opened with O_DIRECT, page-aligned offsets,
                              lengths and buffers (mmap.mmap(-1, n)); a short dread is allowed only at
                              EOF. An fs that refuses O_DIRECT (EINVAL) makes fsx exit 2: no fallback
  fsync                       fsync on the buffered fd
and, after an operation, with probability 1/P (-c P, as fsx -c): close both fds, reopen, and (beyond
fsx) read the whole file back through the new fd and compare it.
At the end the whole file is read back through a fresh fd and compared.

Usage: fsx.py [options] FILE
  -N numops   operations (default 10000)          -S seed   PRNG seed (default 1; 0 = time)
  -l flen     max file length (default 262144)    -o oplen  max op size (default 65536)
  -O          every op uses oplen (fsx -O)        -c P      1 in P chance of close+reopen (default 50; 0 = never)
  -r/-w/-t N  read/write/truncate boundary (default 1; O_DIRECT ops always use the page size)
  -W          no mmap writes   -R  no mmap reads   -Z  no O_DIRECT (NB: fsx's -Z *enables* O_DIRECT)
  -F no fallocate  -H no punch hole  -z no zero range  -C no collapse  -I no insert  -E no copy range
  -f          fsync + posix_fadvise(DONTNEED) after every I/O (fsx -f)
  -y          fsync after every op (fsx -y)       -n        no size checks (fsx -n)
  -X          read the whole file and compare after every op (fsx -X)
  -P dir      on failure save FILE.fsxgood and FILE.fsxlog there (default: nowhere)
  -p N        progress line every N ops           -d        log every op   -q  quiet
Exit: 0 clean, 1 data/size mismatch or unexpected error, 2 setup error (e.g. O_DIRECT refused).
The last stdout line is a JSON summary: {result, ops, seed, byOp, skipped, unsupported, seconds, …}.
"""
import argparse
import collections
import ctypes
import ctypes.util
import errno
import json
import mmap
import os
import random
import sys
import time

PAGE = mmap.PAGESIZE
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20
NOTSUP = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}

OPS = ['read', 'write', 'mapread', 'mapwrite', 'truncate', 'fallocate', 'punch_hole', 'zero_range',
       'collapse_range', 'insert_range', 'copy_range', 'dread', 'dwrite', 'fsync']

_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _libc.fallocate.restype = ctypes.c_int
except (OSError, AttributeError):
    _libc = None


def fallocate(fd, mode, off, length):
    if _libc is None:
        if mode != 0:
            raise OSError(errno.EOPNOTSUPP, 'fallocate modes need ctypes')
        os.posix_fallocate(fd, off, length)
        return
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Failure(Exception):
    pass


class Fsx:
    def __init__(self, a):
        self.a = a
        self.fname = a.file
        self.seed = a.seed if a.seed else int(time.time()) % 1_000_000
        self.rng = random.Random(self.seed)
        self.maxlen = a.flen
        self.original = self.rng.randbytes(self.maxlen)
        self.good = bytearray(self.maxlen)  # invariant: good[size:] is all zero
        self.size = 0
        self.testcalls = 0
        self.log = collections.deque(maxlen=50)
        self.by_op = collections.Counter()
        self.skipped = collections.Counter()
        self.unsupported = []
        self.disabled = set()
        if a.W:
            self.disabled.add('mapwrite')
        if a.R:
            self.disabled.add('mapread')
        if a.Z:
            self.disabled |= {'dread', 'dwrite'}
        if a.F:
            self.disabled.add('fallocate')
        if a.H:
            self.disabled.add('punch_hole')
        if a.z:
            self.disabled.add('zero_range')
        if a.C:
            self.disabled.add('collapse_range')
        if a.I:
            self.disabled.add('insert_range')
        if a.E:
            self.disabled.add('copy_range')
        self.tables = [bytes((b + x) & 0xFF for x in range(256)) for b in range(256)]
        self.dbuf = mmap.mmap(-1, max(PAGE, -(-a.oplen // PAGE) * PAGE + PAGE))  # page aligned
        self.fd = -1
        self.dfd = -1
        self.reopens = 0

    # ---- files ----

    def open_fds(self, create=False):
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self.fd = os.open(self.fname, flags, 0o666)
        if 'dread' not in self.disabled:
            try:
                self.dfd = os.open(self.fname, os.O_RDWR | os.O_DIRECT)
            except OSError as e:
                if e.errno == errno.EINVAL:
                    raise SystemExit(self.setup_error(
                        f'open(O_DIRECT) refused with EINVAL on {self.fname}: the filesystem does not '
                        'support O_DIRECT (run with -Z to test without it; there is no fallback)'))
                raise

    def close_fds(self):
        for fd in (self.fd, self.dfd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.dfd = -1

    def setup_error(self, msg):
        print(f'fsx: {msg}', file=sys.stderr)
        print(json.dumps({'result': 'error', 'error': msg, 'seed': self.seed, 'file': self.fname}))
        sys.stdout.flush()
        return 2

    # ---- model ----

    def gendata(self, off, size):
        """fsx's pattern for op #testcalls, written into good[off:off+size]; returns those bytes."""
        base = self.testcalls % 256
        seg = bytearray([base]) * size
        first_odd = off | 1
        if first_odd < off + size:
            seg[first_odd - off::2] = self.original[first_odd:off + size:2].translate(self.tables[base])
        self.good[off:off + size] = seg
        return seg

    def set_size(self, new):
        if new < self.size:
            self.good[new:self.size] = bytes(self.size - new)
        self.size = new

    # ---- logging / failure ----

    def note(self, op, off=0, length=0, extra=''):
        entry = (self.testcalls, op, off, length, extra)
        self.log.append(entry)
        if self.a.d:
            print(self.fmt(entry))

    @staticmethod
    def fmt(entry):
        n, op, off, length, extra = entry
        if length:
            rng = f'0x{off:x} thru 0x{off + length - 1:x}\t(0x{length:x} bytes)'
        elif off:
            rng = f'0x{off:x}'
        else:
            rng = ''
        return f'{n:6d}({n % 256:3d} mod 256): {op.upper():<15s}{rng} {extra}'.rstrip()

    def fail(self, msg, got=None, off=0):
        lines = [f'fsx: FAILURE at op {self.testcalls} (seed {self.seed}): {msg}']
        if got is not None:
            want = bytes(self.good[off:off + len(got)])
            diffs = [i for i in range(len(got)) if got[i] != want[i]] if len(got) == len(want) else []
            if len(got) != len(want):
                lines.append(f'short read: got {len(got)} bytes, expected {len(want)}')
                m = min(len(got), len(want))
                diffs = [i for i in range(m) if got[i] != want[i]]
            if diffs:
                first = off + diffs[0]
                lines.append(f'first differing offset: 0x{first:x} ({first}); '
                             f'{len(diffs)} differing bytes in 0x{off:x}..0x{off + len(got):x}, '
                             f'last at 0x{off + diffs[-1]:x}')
                lines.append('OFFSET\tGOOD\tBAD\tRANGE')
                for i in diffs[:16]:
                    lines.append(f'0x{off + i:05x}\t0x{want[i]:02x}\t0x{got[i]:02x}\t0x{diffs[-1] - i + 1:x}')
                bad, o = got[diffs[0]], first
                step = bad if o % 2 == 0 else (bad - self.original[o]) & 0xFF
                lines.append('Step# for the bad data unknown, probably zero-filled' if bad == 0
                             else f'Step# (mod 256) for a bad data byte may be {step}')
        lines.append(f'file size: model {self.size}, fstat {self.fstat_size()}')
        lines.append(f'LOG DUMP (last {len(self.log)} ops):')
        lines += [self.fmt(e) for e in self.log]
        text = '\n'.join(lines)
        print(text, file=sys.stderr)
        if self.a.P:
            base = os.path.join(self.a.P, os.path.basename(self.fname))
            with open(base + '.fsxgood', 'wb') as f:
                f.write(self.good[:self.size])
            with open(base + '.fsxlog', 'w') as f:
                f.write(text + '\n')
            print(f'fsx: saved {base}.fsxgood and {base}.fsxlog', file=sys.stderr)
        raise Failure(msg)

    def fstat_size(self):
        try:
            return os.fstat(self.fd).st_size
        except OSError as e:
            return f'fstat failed: {e}'

    def check_size(self):
        if self.a.n:
            return
        st = os.fstat(self.fd).st_size
        if st != self.size:
            self.fail(f'size error: expected 0x{self.size:x} ({self.size}) stat 0x{st:x} ({st})')

    def check_buffers(self, got, off):
        if bytes(got) != self.good[off:off + len(got)]:
            self.fail(f'READ BAD DATA: offset 0x{off:x}, size 0x{len(got):x}', bytes(got), off)

    def check_file(self, fd=None):
        fd = self.fd if fd is None else fd
        got = bytearray()
        while len(got) < self.size + 1:
            chunk = os.pread(fd, self.size + 1 - len(got), len(got))
            if not chunk:
                break
            got += chunk
        if len(got) != self.size:
            self.fail(f'whole-file read returned {len(got)} bytes, expected {self.size}',
                      bytes(got), 0)
        self.check_buffers(got, 0)

    # ---- random sizes (fsx's TRIM_OFF_LEN) ----

    def opsize(self):
        return self.a.oplen if self.a.O else self.rng.randrange(self.a.oplen) + 1

    def trim(self, off, size, limit):
        off = off % limit if limit else 0
        if off + size > limit:
            size = limit - off
        return off, size

    # ---- operations ----

    def doread(self, off, size):
        off, size = self.trim(off, size, self.size)
        off -= off % self.a.r
        if size == 0:
            return self.skip('read', 'zero size read')
        self.note('read', off, size)
        got = os.pread(self.fd, size, off)
        if len(got) != size:
            self.fail(f'short read: 0x{len(got):x} bytes instead of 0x{size:x}', got, off)
        self.check_buffers(got, off)

    def dowrite(self, off, size):
        off, size = self.trim(off, size, self.maxlen)
        off -= off % self.a.w
        if size == 0:
            return self.skip('write', 'zero size write')
        extra = 'HOLE' if off > self.size else ('EXTEND' if off + size > self.size else '')
        self.note('write', off, size, extra)
        data = self.gendata(off, size)
        if off + size > self.size:
            self.size = off + size
        n = os.pwrite(self.fd, data, off)
        if n != size:
            self.fail(f'short write: 0x{n:x} bytes instead of 0x{size:x}')

    def domapread(self, off, size):
        off, size = self.trim(off, size, self.size)
        off -= off % self.a.r
        if size == 0:
            return self.skip('mapread', 'zero size read')
        self.note('mapread', off, size)
        pg = off % PAGE
        m = mmap.mmap(self.fd, pg + size, mmap.MAP_SHARED, mmap.PROT_READ, offset=off - pg)
        try:
            got = m[pg:pg + size]
        finally:
            m.close()
        self.check_buffers(got, off)

    def domapwrite(self, off, size):
        off, size = self.trim(off, size, self.maxlen)
        off -= off % self.a.w
        if size == 0:
            return self.skip('mapwrite', 'zero size write')
        extra = 'HOLE' if off > self.size else ('EXTEND' if off + size > self.size else '')
        self.note('mapwrite', off, size, extra)
        if off + size > self.size:
            os.ftruncate(self.fd, off + size)  # fsx extends with ftruncate before mapping
            self.size = off + size
            self.check_size()
        data = self.gendata(off, size)
        pg = off % PAGE
        m = mmap.mmap(self.fd, pg + size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                      offset=off - pg)
        try:
            m[pg:pg + size] = data
            m.flush()  # msync(MS_SYNC)
        finally:
            m.close()

    def dotruncate(self, _off, _size):
        new = self.rng.randrange(self.maxlen + 1)
        new -= new % self.a.t
        self.note('truncate', new, 0, f'{"UP" if new > self.size else "DOWN"} from 0x{self.size:x}')
        os.ftruncate(self.fd, new)
        self.set_size(new)

    def dofallocate(self, off, size):
        keep = self.rng.randrange(2)
        off, size = self.trim(off, size, self.maxlen)
        if size == 0:
            return self.skip('fallocate', 'zero size')
        mode = FALLOC_FL_KEEP_SIZE if keep else 0
        end = off + size
        extra = ('KEEP_SIZE' if keep else '') + (' PAST_EOF' if end > self.size else '')
        if not self.try_falloc('fallocate', mode, off, size, extra):
            return
        if not keep and end > self.size:
            self.size = end  # good[] beyond the old size is already zero

    def dopunch(self, off, size):
        off, size = self.trim(off, size, self.size)
        if size == 0:
            return self.skip('punch_hole', 'zero size or empty file')
        if self.try_falloc('punch_hole', FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, size):
            self.good[off:off + size] = bytes(size)

    def dozero(self, off, size):
        keep = self.rng.randrange(2)
        off, size = self.trim(off, size, self.maxlen)
        if size == 0:
            return self.skip('zero_range', 'zero size')
        mode = FALLOC_FL_ZERO_RANGE | (FALLOC_FL_KEEP_SIZE if keep else 0)
        if not self.try_falloc('zero_range', mode, off, size, 'KEEP_SIZE' if keep else ''):
            return
        end = min(off + size, self.size) if keep else off + size
        if off < end:
            self.good[off:end] = bytes(end - off)
        if not keep and off + size > self.size:
            self.size = off + size

    def docollapse(self, off, size):
        off = (off % self.size) // PAGE * PAGE if self.size else 0
        size -= size % PAGE
        if size == 0 or off + size >= self.size:
            return self.skip('collapse_range', 'range not inside the file')
        if self.try_falloc('collapse_range', FALLOC_FL_COLLAPSE_RANGE, off, size):
            tail = bytes(self.good[off + size:self.size])
            old = self.size
            self.good[off:off + len(tail)] = tail
            self.good[old - size:old] = bytes(size)
            self.size = old - size

    def doinsert(self, off, size):
        off = (off % self.size) // PAGE * PAGE if self.size else 0
        size -= size % PAGE
        if size == 0 or off >= self.size or self.size + size > self.maxlen:
            return self.skip('insert_range', 'range outside the file or too long')
        if self.try_falloc('insert_range', FALLOC_FL_INSERT_RANGE, off, size):
            tail = bytes(self.good[off:self.size])
            self.good[off + size:off + size + len(tail)] = tail
            self.good[off:off + size] = bytes(size)
            self.size += size

    def try_falloc(self, op, mode, off, size, extra=''):
        self.note(op, off, size, extra)
        try:
            fallocate(self.fd, mode, off, size)
            return True
        except OSError as e:
            if e.errno in NOTSUP:
                self.disable(op, e)
                return False
            raise

    def disable(self, op, e):
        self.disabled.add(op)
        self.unsupported.append(f'{op}: {errno.errorcode.get(e.errno, e.errno)}')
        if not self.a.q:
            print(f'fsx: {op} not supported ({errno.errorcode.get(e.errno, e.errno)}), disabling',
                  file=sys.stderr)
        self.by_op[op] -= 1
        self.skipped[op] += 1

    def docopy(self, off, size):
        off, size = self.trim(off, size, self.size)
        if size == 0:
            return self.skip('copy_range', 'empty file')
        dst = self.rng.randrange(self.maxlen)
        dst -= dst % self.a.w
        dst, size = self.trim(dst, size, self.maxlen)
        if size == 0 or (dst < off + size and off < dst + size):
            return self.skip('copy_range', 'overlapping ranges')
        self.note('copy_range', off, size, f'to 0x{dst:x}')
        done = 0
        try:
            while done < size:
                n = os.copy_file_range(self.fd, self.fd, size - done, off + done, dst + done)
                if n == 0:
                    break
                done += n
        except OSError as e:
            if e.errno in NOTSUP | {errno.EXDEV} and done == 0:
                return self.disable('copy_range', e)
            raise
        if done != size:
            self.fail(f'copy_file_range copied 0x{done:x} bytes instead of 0x{size:x}')
        self.good[dst:dst + size] = self.good[off:off + size]
        if dst + size > self.size:
            self.size = dst + size

    def dodread(self, off, size):
        if self.size == 0:
            return self.skip('dread', 'empty file')
        off = (off % self.size) // PAGE * PAGE
        size = max(PAGE, size // PAGE * PAGE)
        want = min(size, self.size - off)
        self.note('dread', off, size, f'(expect 0x{want:x})' if want != size else '')
        view = memoryview(self.dbuf)[:size]
        try:
            n = os.preadv(self.dfd, [view], off)
            got = bytes(view[:n])
        finally:
            view.release()
        if n != want:
            self.fail(f'O_DIRECT read returned 0x{n:x} bytes, expected 0x{want:x}', got, off)
        self.check_buffers(got, off)

    def dodwrite(self, off, size):
        off = (off % self.maxlen) // PAGE * PAGE
        size = max(PAGE, size // PAGE * PAGE)
        if off + size > self.maxlen:
            size = (self.maxlen - off) // PAGE * PAGE
        if size == 0:
            return self.skip('dwrite', 'zero size')
        extra = 'HOLE' if off > self.size else ('EXTEND' if off + size > self.size else '')
        self.note('dwrite', off, size, extra)
        data = self.gendata(off, size)
        if off + size > self.size:
            self.size = off + size
        view = memoryview(self.dbuf)[:size]
        try:
            view[:] = data
            n = os.pwritev(self.dfd, [view], off)
        finally:
            view.release()
        if n != size:
            self.fail(f'short O_DIRECT write: 0x{n:x} bytes instead of 0x{size:x}')

    def dofsync(self, _off, _size):
        self.note('fsync')
        os.fsync(self.fd)

    def skip(self, op, why):
        self.by_op[op] -= 1
        self.skipped[op] += 1
        self.note(op, 0, 0, f'SKIPPED ({why})')

    # ---- main loop ----

    def test(self):
        self.testcalls += 1
        op = OPS[self.rng.randrange(len(OPS))]
        off = self.rng.randrange(1 << 31)
        size = self.opsize()
        if op == 'mapread' and 'mapread' in self.disabled:
            op = 'read'
        elif op == 'mapwrite' and 'mapwrite' in self.disabled:
            op = 'write'
        if op in self.disabled:
            self.skipped[op] += 1
            self.note(op, 0, 0, 'SKIPPED (disabled)')
        else:
            self.by_op[op] += 1
            getattr(self, 'do' + {'punch_hole': 'punch', 'zero_range': 'zero',
                                  'collapse_range': 'collapse', 'insert_range': 'insert',
                                  'copy_range': 'copy'}.get(op, op))(off, size)
        if self.a.f and op in ('write', 'mapwrite', 'dwrite', 'read', 'mapread', 'dread'):
            os.fsync(self.fd)
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if self.a.y:
            os.fsync(self.fd)
        self.check_size()
        if self.a.X:
            self.check_file()
        if self.a.c and self.rng.randrange(self.a.c) == 0:
            self.by_op['closeopen'] += 1
            self.note('closeopen')
            self.close_fds()
            self.open_fds()
            self.check_size()
            self.check_file()  # beyond fsx: the reopened file is verified whole
        if self.a.p and self.testcalls % self.a.p == 0 and not self.a.q:
            print(f'fsx: {self.testcalls} ops, size 0x{self.size:x}', file=sys.stderr)

    def run(self):
        t0 = time.monotonic()
        self.open_fds(create=True)
        result, error = 'pass', None
        try:
            try:
                while self.testcalls < self.a.N:
                    self.test()
                self.note('final check')
                fd = os.open(self.fname, os.O_RDONLY)
                try:
                    if not self.a.n and os.fstat(fd).st_size != self.size:
                        self.fail(f'final size {os.fstat(fd).st_size}, expected {self.size}')
                    self.check_file(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                try:
                    self.fail(f'unexpected error: {e!r}')
                except Failure:
                    pass
                raise Failure(repr(e))
        except Failure as e:
            result, error = 'fail', str(e)
        finally:
            self.close_fds()
        summary = {
            'result': result, 'ops': self.testcalls, 'seed': self.seed, 'file': self.fname,
            'flen': self.maxlen, 'oplen': self.a.oplen, 'byOp': dict(sorted(self.by_op.items())),
            'skipped': dict(sorted(self.skipped.items())), 'unsupported': self.unsupported,
            'finalSize': self.size, 'seconds': round(time.monotonic() - t0, 2),
        }
        if error:
            summary['error'] = error
        if result == 'pass' and not self.a.q:
            print('All operations completed A-OK!', file=sys.stderr)
        print(json.dumps(summary))
        return 0 if result == 'pass' else 1


def main(argv):
    p = argparse.ArgumentParser(prog='fsx.py', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-N', type=int, default=10000)
    p.add_argument('-S', dest='seed', type=int, default=1)
    p.add_argument('-l', dest='flen', type=int, default=256 * 1024)
    p.add_argument('-o', dest='oplen', type=int, default=64 * 1024)
    p.add_argument('-O', action='store_true')
    p.add_argument('-c', type=int, default=50)
    p.add_argument('-r', type=int, default=1)
    p.add_argument('-w', type=int, default=1)
    p.add_argument('-t', type=int, default=1)
    for flag in 'WRZFHzCIEfynXdq':
        p.add_argument('-' + flag, action='store_true')
    p.add_argument('-P')
    p.add_argument('-p', type=int, default=0)
    p.add_argument('file')
    a = p.parse_args(argv)
    if a.flen <= 0 or a.oplen <= 0 or min(a.r, a.w, a.t) <= 0:
        p.error('lengths and boundaries must be positive')
    return Fsx(a).run()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
