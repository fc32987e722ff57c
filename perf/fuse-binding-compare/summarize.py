"""Medians over runs of compare.sh's results; prints a Markdown table."""
import glob, json, os, re, statistics, sys

out = sys.argv[1]
def fio(path, kind):
    j = json.load(open(path))['jobs'][0][kind]
    return j
rows = {}
for b in ('binding', 'fuse-native'):
    r = {k: [] for k in ('wcold', 'wwarm', 'read', 'p50', 'p99', 'mean', 'create', 'stat', 'unlink')}
    for p in sorted(glob.glob(f'{out}/{b}.*.wwarm.json')):
        run = p.split('.')[-3]
        base = f'{out}/{b}.{run}'
        r['wcold'].append(fio(f'{base}.wcold.json', 'write')['bw_bytes'] / 1e6)
        r['wwarm'].append(fio(f'{base}.wwarm.json', 'write')['bw_bytes'] / 1e6)
        r['read'].append(fio(f'{base}.read.json', 'read')['bw_bytes'] / 1e6)
        rr = fio(f'{base}.rand.json', 'read')['clat_ns']
        r['p50'].append(rr['percentile']['50.000000'] / 1000)
        r['p99'].append(rr['percentile']['99.000000'] / 1000)
        r['mean'].append(rr['mean'] / 1000)
        m = dict(re.findall(r'(\w+)=(\d+)', open(f'{base}.meta.txt').read()))
        r['create'].append(int(m['create_per_s']))
        r['stat'].append(int(m['stat_per_s']))
        r['unlink'].append(int(m['unlink_per_s']))
    rows[b] = r
labels = [('wcold', 'seq write 1 GiB, 1 MiB blocks, first write (MB/s)'), ('wwarm', 'seq write, overwrite (MB/s)'),
          ('read', 'seq read 1 GiB, 1 MiB blocks, cold page cache (MB/s)'), ('p50', '4 KiB rand read O_DIRECT p50 (µs)'),
          ('p99', '4 KiB rand read p99 (µs)'), ('mean', '4 KiB rand read mean (µs)'), ('create', 'create/s'),
          ('stat', 'stat/s (timeouts 0)'), ('unlink', 'unlink/s')]
n = len(rows['binding']['read'])
print(f'| metric (median of {n} runs; all runs in brackets) | imapfs binding | fuse-native 2.2.6 | ratio |')
print('|---|---|---|---|')
for k, label in labels:
    a, b = rows['binding'][k], rows['fuse-native'][k]
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    fmt = lambda xs: ', '.join(f'{x:.0f}' for x in xs)
    ratio = (mb / ma) if k in ('p50', 'p99', 'mean') else (ma / mb)
    print(f'| {label} | {ma:.0f} [{fmt(a)}] | {mb:.0f} [{fmt(b)}] | {ratio:.2f}× |')
