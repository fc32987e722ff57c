/**
 * The ratio chart: one horizontal bar per ratio on a log scale centred on parity (1.0), green where
 * the numerator is better than the denominator (direction-aware), red where it is worse. Drawn into
 * an RGB buffer with the 5×7 font and encoded by png.ts: no browser, no native dependency.
 */
import type { Ratio } from './document';
import { GLYPH_H, GLYPH_W, glyph } from './font5x7';
import { fmt } from './markdown';
import { METRICS } from './metrics';
import { encodePng } from './png';

type Rgb = readonly [number, number, number];

const INK: Rgb = [30, 30, 30];
const GRID: Rgb = [215, 215, 215];
const PARITY: Rgb = [90, 90, 90];
const GOOD: Rgb = [46, 139, 87];
const BAD: Rgb = [200, 60, 50];

class Raster {
  readonly pixels: Uint8Array;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.pixels = new Uint8Array(width * height * 3).fill(255);
  }

  rect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y0 = Math.max(0, Math.round(y));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) this.pixels.set(c, (yy * this.width + xx) * 3);
    }
  }

  text(x: number, y: number, s: string, c: Rgb, scale = 2): void {
    let cx = x;
    for (const ch of s) {
      const cells = glyph(ch);
      if (cells) {
        cells.forEach((on, i) => {
          if (on) this.rect(cx + (i % GLYPH_W) * scale, y + Math.floor(i / GLYPH_W) * scale, scale, scale, c);
        });
      }
      cx += (GLYPH_W + 1) * scale;
    }
  }
}

const SCALE = 2;
const CHAR_W = (GLYPH_W + 1) * SCALE;
const ROW_H = GLYPH_H * SCALE + 8;
const BAR_W = 520;
const MARGIN = 16;

export function textWidth(s: string): number {
  return s.length * CHAR_W;
}

export function ratioLabel(r: Ratio): string {
  return `${r.numerator}/${r.denominator} ${METRICS[r.metric].label}`.replace(/µ/g, 'u');
}

export function renderRatioChart(ratios: readonly Ratio[], title: string): Buffer {
  const labels = ratios.map(ratioLabel);
  const labelW = Math.max(textWidth(title) - BAR_W, ...labels.map(textWidth), textWidth('(no ratios)'));
  const barX = MARGIN + labelW + 12;
  const valueW = textWidth('0.000X') + 12;
  const width = barX + BAR_W + valueW + MARGIN;
  const top = MARGIN + ROW_H * 2;
  const height = top + Math.max(1, ratios.length) * ROW_H + ROW_H * 2 + MARGIN;
  const img = new Raster(width, height);

  const values = ratios.map((r) => r.value);
  const lo = Math.min(-1, Math.floor(Math.log10(Math.max(1e-4, Math.min(...values, 1)))));
  const hi = Math.max(1, Math.ceil(Math.log10(Math.min(1e4, Math.max(...values, 1)))));
  const xOf = (v: number) => barX + ((Math.log10(Math.min(Math.max(v, 1e-4), 1e4)) - lo) / (hi - lo)) * BAR_W;

  img.text(MARGIN, MARGIN, title, INK);
  const bottom = top + Math.max(1, ratios.length) * ROW_H;
  for (let d = lo; d <= hi; d++) {
    const x = xOf(10 ** d);
    img.rect(x, top - 4, 1, bottom - top + 8, d === 0 ? PARITY : GRID);
    // At most four characters, so decade labels never run into each other.
    const tick = d > 3 ? `1E${d}` : d < -2 ? `1E${d}` : d >= 0 ? String(10 ** d) : (10 ** d).toFixed(-d);
    img.text(x - textWidth(tick) / 2, bottom + 8, tick, INK);
  }
  img.text(barX, bottom + 8 + ROW_H, 'RATIO, LOG SCALE. GREEN = FIRST TARGET BETTER', INK);
  if (ratios.length === 0) img.text(MARGIN, top, '(no ratios)', INK);

  ratios.forEach((r, i) => {
    const y = top + i * ROW_H;
    img.text(MARGIN, y + 3, labels[i] as string, INK);
    const good = METRICS[r.metric].better === 'higher' ? r.value >= 1 : r.value <= 1;
    const x1 = xOf(1);
    const x2 = xOf(r.value);
    img.rect(Math.min(x1, x2), y + 2, Math.max(2, Math.abs(x2 - x1)), ROW_H - 6, good ? GOOD : BAD);
    img.text(barX + BAR_W + 8, y + 3, `${fmt(r.value)}X`, INK);
  });
  return encodePng(width, height, img.pixels);
}
