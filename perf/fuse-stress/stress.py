"""Random-op stress on a mounted filesystem: THREADS threads for SECONDS seconds.

Each thread owns a directory and a model of its files (contents, links), and checks every read
against the model; all threads also race on one shared directory (create/rename/unlink/readdir,
where ENOENT/EEXIST/ENOTEMPTY are expected). The daemon's RSS is sampled every 5 s.

  python3 perf/fuse-stress/stress.py MOUNTPOINT DAEMON_PID [THREADS=16] [SECONDS=60]
Prints one JSON line: ops, ops/s, errors, check failures, RSS samples (KiB).
"""
import errno, json, os, random, sys, threading, time

mp, pid = sys.argv[1], int(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 16
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 60
shared = os.path.join(mp, 'shared')
os.makedirs(shared, exist_ok=True)
EXPECTED = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR}
stop = time.time() + seconds
lock = threading.Lock()
totals = {'ops': 0, 'unexpected_errors': [], 'check_failures': []}


def rss():
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return -1


def worker(k):
    rnd = random.Random(k)
    d = os.path.join(mp, f'w{k}')
    os.mkdir(d)
    model = {}  # name -> bytearray (hard links share the object)
    ops = 0
    fails = []
    errs = []

    def check(name):
        with open(os.path.join(d, name), 'rb') as f:
            got = f.read()
        if got != bytes(model[name]):
            fails.append(f'{name}: {len(got)} bytes, model {len(model[name])}')

    while time.time() < stop:
        op = rnd.randrange(14)
        names = list(model)
        try:
            if op <= 2 or not names:  # write at a random offset
                name = rnd.choice(names) if names and rnd.random() < 0.7 else f'f{rnd.randrange(50)}'
                data = model.setdefault(name, bytearray())
                off = rnd.randrange(0, 3 << 20)
                n = rnd.choice([1, 100, 4096, 65536, 1 << 20])
                buf = rnd.randbytes(n)
                fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_WRONLY, 0o644)
                os.pwrite(fd, buf, off)
                os.close(fd)
                if len(data) < off:
                    data.extend(bytes(off - len(data)))
                data[off:off + n] = buf
            elif op == 3:
                name = rnd.choice(names)
                size = rnd.randrange(0, 2 << 20)
                os.truncate(os.path.join(d, name), size)
                data = model[name]
                if size < len(data):
                    del data[size:]
                else:
                    data.extend(bytes(size - len(data)))
            elif op == 4:
                check(rnd.choice(names))
            elif op == 5:  # rename within own dir
                a = rnd.choice(names)
                b = f'f{rnd.randrange(50)}'
                os.rename(os.path.join(d, a), os.path.join(d, b))
                # rename between two names of one inode does nothing (POSIX)
                if a != b and not (b in model and model[b] is model[a]):
                    model[b] = model.pop(a)
            elif op == 6:  # hard link
                a = rnd.choice(names)
                b = f'l{rnd.randrange(50)}'
                if b in model:
                    continue
                os.link(os.path.join(d, a), os.path.join(d, b))
                model[b] = model[a]
            elif op == 7:
                a = rnd.choice(names)
                os.unlink(os.path.join(d, a))
                del model[a]
            elif op == 8:
                listed = sorted(os.listdir(d))
                if listed != sorted(model):
                    fails.append(f'listdir {listed[:5]}… vs model {sorted(model)[:5]}…')
            elif op == 9:
                a = rnd.choice(names)
                os.setxattr(os.path.join(d, a), b'user.k', rnd.randbytes(rnd.randrange(1, 300)))
                os.getxattr(os.path.join(d, a), b'user.k')
            elif op == 10:
                a = rnd.choice(names)
                st = os.stat(os.path.join(d, a))
                if st.st_size != len(model[a]):
                    fails.append(f'stat {a}: {st.st_size} vs {len(model[a])}')
            else:  # shared directory races
                s = os.path.join(shared, f's{rnd.randrange(40)}')
                t = os.path.join(shared, f's{rnd.randrange(40)}')
                c = rnd.randrange(5)
                if c == 0:
                    os.close(os.open(s, os.O_CREAT | os.O_WRONLY, 0o644))
                elif c == 1:
                    os.rename(s, t)
                elif c == 2:
                    os.unlink(s)
                elif c == 3:
                    os.mkdir(s + 'd')
                else:
                    os.listdir(shared)
                    os.rmdir(s + 'd')
            ops += 1
        except OSError as e:
            if e.errno not in EXPECTED:
                errs.append(f'op {op}: {e}')
            ops += 1
    for name in list(model):
        check(name)
    with lock:
        totals['ops'] += ops
        totals['unexpected_errors'] += errs[:20]
        totals['check_failures'] += fails[:20]


samples = [rss()]
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
t0 = time.time()
for t in ts:
    t.start()
while any(t.is_alive() for t in ts):
    time.sleep(5)
    samples.append(rss())
for t in ts:
    t.join()
el = time.time() - t0
print(json.dumps({'threads': threads, 'seconds': round(el, 1), 'ops': totals['ops'],
                  'ops_per_s': round(totals['ops'] / el), 'unexpected_errors': totals['unexpected_errors'],
                  'check_failures': totals['check_failures'], 'rss_kib': samples}))
