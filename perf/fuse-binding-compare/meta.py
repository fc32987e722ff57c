"""create/s and stat/s on a mounted fs: N files created (open O_CREAT + close), then statted twice."""
import os, sys, time

mp, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000
d = os.path.join(mp, 'meta')
os.mkdir(d)
t0 = time.perf_counter()
for i in range(n):
    os.close(os.open(f'{d}/f{i}', os.O_CREAT | os.O_WRONLY, 0o644))
t1 = time.perf_counter()
for _ in range(2):
    for i in range(n):
        os.stat(f'{d}/f{i}')
t2 = time.perf_counter()
for i in range(n):
    os.unlink(f'{d}/f{i}')
t3 = time.perf_counter()
print(f'create_per_s={n / (t1 - t0):.0f} stat_per_s={2 * n / (t2 - t1):.0f} unlink_per_s={n / (t3 - t2):.0f}')
