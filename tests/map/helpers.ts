/**
 * Test helpers for src/map: temp dirs, the real pngcheck binary, upng-js as an independent decoder,
 * and a straightforward per-index d2xy that shares no code with src/map/hilbert.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function withTempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'imapfs-map-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function pngcheck(path: string): { ok: boolean; output: string } {
  try {
    const output = execFileSync('pngcheck', ['-v', path], { encoding: 'utf8' });
    return { ok: true, output };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface UpngImage {
  width: number;
  height: number;
}
interface Upng {
  decode(buf: ArrayBuffer): UpngImage;
  toRGBA8(img: UpngImage): ArrayBuffer[];
}
const load = createRequire(__filename);
const UPNG = load('upng-js') as Upng;

/** Decodes with upng-js (which throws strings) into RGBA bytes. */
export function decodePng(file: Buffer): { width: number; height: number; rgba: Uint8Array } {
  const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  let img: UpngImage;
  try {
    img = UPNG.decode(ab);
  } catch (err) {
    throw new Error(`upng-js failed: ${String(err)}`);
  }
  const frames = UPNG.toRGBA8(img);
  return { width: img.width, height: img.height, rgba: new Uint8Array(frames[0]) };
}

/** Textbook d2xy (Wikipedia), then the format's rule: transpose when log2(side) is odd. */
export function refD2xy(side: number, d: number): [number, number] {
  let x = 0;
  let y = 0;
  let t = d;
  for (let s = 1; s < side; s *= 2) {
    const rx = 1 & Math.floor(t / 2);
    const ry = 1 & (t ^ rx);
    if (ry === 0) {
      if (rx === 1) {
        x = s - 1 - x;
        y = s - 1 - y;
      }
      [x, y] = [y, x];
    }
    x += s * rx;
    y += s * ry;
    t = Math.floor(t / 4);
  }
  const order = Math.log2(side);
  return order % 2 === 1 ? [y, x] : [x, y];
}

/** Deterministic bytes for cluster c (differs per cluster and per byte). */
export function clusterPattern(c: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(4096);
  let v = (c * 2654435761 + seed * 97) >>> 0;
  for (let i = 0; i < 4096; i++) {
    v = (Math.imul(v, 1103515245) + 12345) >>> 0;
    b[i] = v >>> 24;
  }
  return b;
}

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
