import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, parseSize } from '../../src/config';
import { ImapError } from '../../src/protocol/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imapfs-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

function configError(fn: () => unknown): ImapError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImapError);
    expect((err as ImapError).code).toBe('IMAP_E_CONFIG');
    return err as ImapError;
  }
  throw new Error('expected an IMAP_E_CONFIG error');
}

describe('config', () => {
  test('no file gives every default', () => {
    const c = loadConfig();
    expect(c.cache.l1_bytes).toBe(64 * 1024 ** 2);
    expect(c.io.max_dirty_bytes).toBe(64 * 1024 ** 2);
    expect(c.map.grow).toBe(true);
    expect(c.fuse.max_write).toBe(1024 ** 2);
  });

  test('a YAML file with human sizes is read', () => {
    const f = write(
      'a.yaml',
      'cache:\n  l1_bytes: 16M\n  l2_bytes: 16MiB\nio:\n  max_dirty_bytes: 16777216\n',
    );
    const c = loadConfig({ file: f });
    expect(c.cache.l1_bytes).toBe(16 * 1024 ** 2);
    expect(c.cache.l2_bytes).toBe(16 * 1024 ** 2);
    expect(c.io.max_dirty_bytes).toBe(16 * 1024 ** 2);
  });

  test('-o overrides the file, flags map to keys', () => {
    const f = write('b.yaml', 'map:\n  grow: true\n');
    const c = loadConfig({ file: f, options: ['ro,nogrow', 'cache.l1_bytes=8M'] });
    expect(c.fuse.read_only).toBe(true);
    expect(c.map.grow).toBe(false);
    expect(c.cache.l1_bytes).toBe(8 * 1024 ** 2);
  });

  test('an unknown key is named in the error', () => {
    const e = configError(() => loadConfig({ file: write('c.yaml', 'cache:\n  l1_byts: 16M\n') }));
    expect(e.message).toMatch(/cache/);
    expect(e.message).toMatch(/l1_byts/);
  });

  test('a bad size is named in the error', () => {
    const e = configError(() => loadConfig({ file: write('d.yaml', 'io:\n  max_dirty_bytes: lots\n') }));
    expect(e.message).toMatch(/io\.max_dirty_bytes/);
  });

  test('broken YAML, a missing file, a non-mapping and a newer version are clear errors', () => {
    configError(() => loadConfig({ file: write('e.yaml', 'cache: [\n') }));
    configError(() => loadConfig({ file: path.join(dir, 'nope.yaml') }));
    configError(() => loadConfig({ file: write('f.yaml', '- a\n- b\n') }));
    expect(configError(() => loadConfig({ file: write('g.yaml', 'version: 99\n') })).message).toMatch(
      /newer/,
    );
  });

  test('an unknown mount flag is rejected', () => {
    configError(() => loadConfig({ options: ['frobnicate'] }));
  });

  test('a version-0 file migrates', () => {
    const c = loadConfig({ file: write('h.yaml', 'version: 0\ncache_size: 32M\ngrow: false\n') });
    expect(c.cache.l1_bytes).toBe(32 * 1024 ** 2);
    expect(c.map.grow).toBe(false);
  });

  test('cache.prefetch.neighbour_clusters: default 64, 0 turns it off, bounds and integers checked', () => {
    expect(loadConfig().cache.prefetch.neighbour_clusters).toBe(64);
    expect(
      loadConfig({ options: ['cache.prefetch.neighbour_clusters=0'] }).cache.prefetch.neighbour_clusters,
    ).toBe(0);
    const f = write('n.yaml', 'cache:\n  prefetch:\n    neighbour_clusters: 128\n');
    expect(loadConfig({ file: f }).cache.prefetch.neighbour_clusters).toBe(128);
    for (const bad of ['-1', '4097', '1.5', 'many']) {
      const e = configError(() => loadConfig({ options: [`cache.prefetch.neighbour_clusters=${bad}`] }));
      expect(e.message).toMatch(/cache\.prefetch\.neighbour_clusters/);
    }
  });

  test('sizes', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('1k')).toBe(1024);
    expect(parseSize('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(() => parseSize('-1')).toThrow(ImapError);
    expect(() => parseSize('12 parsecs')).toThrow(ImapError);
  });
});
