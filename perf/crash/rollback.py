"""Undo what a power failure would have lost: every write and truncate recorded by powercut.so
after the last fsync/fdatasync of its file, newest first. Also removes SQLite's -shm files under the
prefix (shared memory does not survive a reboot).

  python3 perf/crash/rollback.py UNDO.log PREFIX
Prints one JSON line: records read, records undone, bytes restored, files touched.
"""
import glob, json, os, struct, sys

log_path, prefix = sys.argv[1], sys.argv[2]
records = []  # (kind, path, offset, old_size, pre)
with open(log_path, 'rb') as f:
    data = f.read()
at = 0
torn = False
while at < len(data):
    # A record is logged before its write: a record cut short by the kill belongs to a write that
    # never happened, so the log simply ends there.
    if len(data) - at < 5:
        torn = True
        break
    kind = chr(data[at]); plen = struct.unpack_from('<I', data, at + 1)[0]
    if len(data) - at < 5 + plen + 20:
        torn = True
        break
    at += 5
    path = data[at:at + plen].decode('utf-8', 'surrogateescape'); at += plen
    off, old_size, pre_len = struct.unpack_from('<qqI', data, at); at += 20
    if len(data) - at < pre_len:
        torn = True
        break
    pre = data[at:at + pre_len]; at += pre_len
    records.append((kind, path, off, old_size, pre))

# A sync ends what a power cut can undo in that file; so does a rename onto its path ('R': from then
# on the path is another, fsync'd inode, and the replaced inode's records are not its history).
last_sync = {}
for i, (kind, path, *_rest) in enumerate(records):
    if kind in ('S', 'R'):
        last_sync[path] = i

undone = restored = 0
touched = set()
for i in range(len(records) - 1, -1, -1):
    kind, path, off, old_size, pre = records[i]
    if kind in ('S', 'R') or i < last_sync.get(path, -1) or not os.path.exists(path):
        continue
    with open(path, 'r+b') as f:
        if pre:
            f.seek(off)
            f.write(pre)
        if kind == 'T' or os.fstat(f.fileno()).st_size > old_size:
            f.truncate(old_size)
    undone += 1
    restored += len(pre)
    touched.add(path)

for shm in glob.glob(prefix + '*-shm'):
    os.unlink(shm)

print(json.dumps({'records': len(records), 'tornTail': torn, 'undone': undone, 'bytesRestored': restored,
                  'files': sorted(touched)}))
