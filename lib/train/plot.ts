// Loss plots (training layer), with no dependencies: an SVG chart, the same chart as a PNG (a small rasteriser with
// a 5x7 bitmap font, encoded with node's zlib), and a braille-dot chart for the terminal. The y axis is the loss in
// nats per token; the right axis labels the same lines as perplexity (exp(loss)). chartSvg/chartPng/writeChart draw
// several labelled series on one chart (linear or log y axis), for comparisons such as the examples' plots.
import * as fs from "fs";
import * as path from "path";
import { deflateSync } from "zlib";
import { writeFileAtomic } from "../io/atomic";

/** One point per step; val where an evaluation ran. */
export interface LossPoint {
  step: number;
  loss: number;
  val_loss?: number;
}

const W = 720, H = 400, ML = 64, MR = 64, MT = 36, MB = 48;

/** Round numbers for axis ticks covering [lo, hi]. */
function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 10000) return `${+(v / 1000).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Centred moving average over `half` points on each side (no lag), for the smoothed line. */
function smooth(ys: number[], half: number): number[] {
  const prefix = [0];
  for (const y of ys) prefix.push(prefix[prefix.length - 1] + y);
  return ys.map((_, i) => {
    const a = Math.max(0, i - half), b = Math.min(ys.length, i + half + 1);
    return (prefix[b] - prefix[a]) / (b - a);
  });
}

interface Layout {
  x: (step: number) => number;
  y: (loss: number) => number;
  xt: number[];
  yt: number[];
  train: [number, number][];
  smooth: [number, number][];
  val: [number, number][];
}

function layout(points: LossPoint[]): Layout | null {
  const pts = points.filter((p) => Number.isFinite(p.loss));
  if (pts.length === 0) return null;
  const s0 = Math.min(...pts.map((p) => p.step)), s1 = Math.max(...pts.map((p) => p.step));
  const all = pts.flatMap((p) => (p.val_loss !== undefined && Number.isFinite(p.val_loss) ? [p.loss, p.val_loss] : [p.loss]));
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-6) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const xs = s1 > s0 ? s1 - s0 : 1;
  const x = (s: number) => ML + ((s - s0) / xs) * (W - ML - MR);
  const y = (l: number) => MT + (1 - (l - lo) / (hi - lo)) * (H - MT - MB);
  // at most ~1000 points per line
  const every = Math.max(1, Math.ceil(pts.length / 1000));
  const sm = smooth(pts.map((p) => p.loss), Math.floor(pts.length / 80));
  const pick = <T>(arr: T[]) => arr.filter((_, i) => i % every === 0 || i === arr.length - 1);
  return {
    x, y,
    xt: ticks(s0, s1),
    yt: ticks(lo, hi),
    train: pick(pts.map((p) => [x(p.step), y(p.loss)] as [number, number])),
    smooth: pick(pts.map((p, i) => [x(p.step), y(sm[i])] as [number, number])),
    val: pts.filter((p) => p.val_loss !== undefined && Number.isFinite(p.val_loss)).map((p) => [x(p.step), y(p.val_loss!)] as [number, number]),
  };
}

/** The chart as an SVG document (a placeholder text when there are no points). */
export function lossSvg(points: LossPoint[], title = "training loss"): string {
  const L = layout(points);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="#fff"/>`];
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  if (!L) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no steps yet</text></svg>`);
    return parts.join("\n");
  }
  const f = (v: number) => v.toFixed(1);
  for (const t of L.yt) {
    parts.push(`<line x1="${ML}" x2="${W - MR}" y1="${f(L.y(t))}" y2="${f(L.y(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${ML - 6}" y="${f(L.y(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
    parts.push(`<text x="${W - MR + 6}" y="${f(L.y(t) + 4)}">${fmt(Math.exp(t))}</text>`);
  }
  for (const t of L.xt) parts.push(`<text x="${f(L.x(t))}" y="${H - MB + 18}" text-anchor="middle">${fmt(t)}</text>`);
  parts.push(`<rect x="${ML}" y="${MT}" width="${W - ML - MR}" height="${H - MT - MB}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle">step</text>`);
  parts.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">loss (nats/token)</text>`);
  parts.push(`<text transform="translate(${W - 12} ${H / 2}) rotate(90)" text-anchor="middle">perplexity</text>`);
  const poly = (pts: [number, number][], style: string) => `<polyline fill="none" ${style} points="${pts.map(([a, b]) => `${f(a)},${f(b)}`).join(" ")}"/>`;
  parts.push(poly(L.train, 'stroke="#9ecae1" stroke-width="1"'));
  parts.push(poly(L.smooth, 'stroke="#1f77b4" stroke-width="2"'));
  if (L.val.length) {
    parts.push(poly(L.val, 'stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 3"'));
    for (const [a, b] of L.val) parts.push(`<circle cx="${f(a)}" cy="${f(b)}" r="3" fill="#d62728"/>`);
  }
  const lx = W - MR - 150;
  parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${MT + 14}" y2="${MT + 14}" stroke="#1f77b4" stroke-width="2"/><text x="${lx + 26}" y="${MT + 18}">train (smoothed)</text>`);
  if (L.val.length) parts.push(`<line x1="${lx}" x2="${lx + 20}" y1="${MT + 30}" y2="${MT + 30}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 3"/><text x="${lx + 26}" y="${MT + 34}">validation</text>`);
  parts.push("</svg>");
  return parts.join("\n");
}

// ---- PNG ---------------------------------------------------------------------------------------------------------

// 5x7 glyphs, one byte per row, bit 4 = leftmost column (HD44780-style); uppercase is drawn as lowercase.
const FONT: Record<string, number[]> = {
  "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31], "3": [31, 2, 4, 2, 1, 17, 14],
  "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14], "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8],
  "8": [14, 17, 17, 14, 17, 17, 14], "9": [14, 17, 17, 15, 1, 2, 12], ".": [0, 0, 0, 0, 0, 12, 12], "-": [0, 0, 0, 31, 0, 0, 0],
  "+": [0, 4, 4, 31, 4, 4, 0], ":": [0, 12, 12, 0, 12, 12, 0], "(": [2, 4, 8, 8, 8, 4, 2], ")": [8, 4, 2, 2, 2, 4, 8], "/": [0, 1, 2, 4, 8, 16, 0],
  " ": [0, 0, 0, 0, 0, 0, 0], a: [0, 0, 14, 1, 15, 17, 15], b: [16, 16, 22, 25, 17, 17, 30], c: [0, 0, 14, 16, 16, 17, 14], d: [1, 1, 13, 19, 17, 17, 15],
  e: [0, 0, 14, 17, 31, 16, 14], f: [6, 9, 8, 28, 8, 8, 8], g: [0, 15, 17, 17, 15, 1, 14], h: [16, 16, 22, 25, 17, 17, 17], i: [4, 0, 12, 4, 4, 4, 14],
  j: [2, 0, 6, 2, 2, 18, 12], k: [16, 16, 18, 20, 24, 20, 18], l: [12, 4, 4, 4, 4, 4, 14], m: [0, 0, 26, 21, 21, 17, 17], n: [0, 0, 22, 25, 17, 17, 17],
  o: [0, 0, 14, 17, 17, 17, 14], p: [0, 0, 30, 17, 30, 16, 16], q: [0, 0, 13, 19, 15, 1, 1], r: [0, 0, 22, 25, 16, 16, 16], s: [0, 0, 14, 16, 14, 1, 30],
  t: [8, 8, 28, 8, 8, 9, 6], u: [0, 0, 17, 17, 17, 19, 13], v: [0, 0, 17, 17, 17, 10, 4], w: [0, 0, 17, 17, 21, 21, 10], x: [0, 0, 17, 10, 4, 10, 17],
  y: [0, 0, 17, 17, 15, 1, 14], z: [0, 0, 31, 2, 4, 8, 31], "[": [14, 8, 8, 8, 8, 8, 14], "]": [14, 2, 2, 2, 2, 2, 14],
  "=": [0, 0, 31, 0, 31, 0, 0], ",": [0, 0, 0, 0, 12, 4, 8], "%": [24, 25, 2, 4, 8, 19, 3], "_": [0, 0, 0, 0, 0, 0, 31],
};

class Canvas {
  readonly px: Uint8Array;
  constructor(
    readonly w: number,
    readonly h: number,
  ) {
    this.px = new Uint8Array(w * h * 3).fill(255);
  }
  set(x: number, y: number, c: [number, number, number]): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.w || y >= this.h) return;
    const i = (y * this.w + x) * 3;
    this.px[i] = c[0];
    this.px[i + 1] = c[1];
    this.px[i + 2] = c[2];
  }
  line(x0: number, y0: number, x1: number, y1: number, c: [number, number, number], width = 1, dash = 0): void {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; ++i) {
      if (dash && Math.floor(i / dash) % 2 === 1) continue;
      const x = x0 + ((x1 - x0) * i) / n, y = y0 + ((y1 - y0) * i) / n;
      for (let dx = 0; dx < width; ++dx) for (let dy = 0; dy < width; ++dy) this.set(x + dx - (width - 1) / 2, y + dy - (width - 1) / 2, c);
    }
  }
  text(s: string, x: number, y: number, c: [number, number, number], align: "left" | "center" | "right" = "left"): void {
    const adv = 6;
    let cx = Math.round(align === "left" ? x : align === "center" ? x - (s.length * adv) / 2 : x - s.length * adv);
    for (const ch of s.toLowerCase()) {
      const g = FONT[ch] ?? FONT[" "];
      for (let r = 0; r < 7; ++r) for (let col = 0; col < 5; ++col) if (g[r] & (16 >> col)) this.set(cx + col, y - 7 + r, c);
      cx += adv;
    }
  }
  /** Text rotated 90° counter-clockwise, reading bottom to top, centred on (x, y). */
  textUp(s: string, x: number, y: number, c: [number, number, number]): void {
    let cy = Math.round(y + (s.length * 6) / 2);
    for (const ch of s.toLowerCase()) {
      const g = FONT[ch] ?? FONT[" "];
      for (let r = 0; r < 7; ++r) for (let col = 0; col < 5; ++col) if (g[r] & (16 >> col)) this.set(x - 7 + r, cy - col, c);
      cy -= 6;
    }
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; ++n) {
    let c = n;
    for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bufs: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const b of bufs) for (let i = 0; i < b.length; ++i) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32([head.subarray(4), data]), 0);
  return Buffer.concat([head, data, crc]);
}

/** Encode 8-bit RGB pixels (row-major) as a PNG file. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) throw new RangeError(`encodePng: ${rgb.length} bytes for ${width}x${height} RGB (expected ${width * height * 3})`);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; ++y) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (width * 3 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))]);
}

// PNG colours (RGB) of both charts
type RGB = [number, number, number];
const grey: RGB = [153, 153, 153], light: RGB = [229, 229, 229], black: RGB = [34, 34, 34];
const blue: RGB = [31, 119, 180], paleBlue: RGB = [158, 202, 225], red: RGB = [214, 39, 40];

/** The chart of lossSvg as a PNG image. */
export function lossPng(points: LossPoint[], title = "training loss"): Buffer {
  const c = new Canvas(W, H);
  c.text(title, W / 2, 24, black, "center");
  const L = layout(points);
  if (!L) {
    c.text("no steps yet", W / 2, H / 2, black, "center");
    return encodePng(W, H, c.px);
  }
  for (const t of L.yt) {
    c.line(ML, L.y(t), W - MR, L.y(t), light);
    c.text(fmt(t), ML - 6, L.y(t) + 4, black, "right");
    c.text(fmt(Math.exp(t)), W - MR + 6, L.y(t) + 4, black);
  }
  for (const t of L.xt) c.text(fmt(t), L.x(t), H - MB + 20, black, "center");
  c.line(ML, MT, W - MR, MT, grey);
  c.line(ML, H - MB, W - MR, H - MB, grey);
  c.line(ML, MT, ML, H - MB, grey);
  c.line(W - MR, MT, W - MR, H - MB, grey);
  c.text("step", W / 2, H - 10, black, "center");
  c.textUp("loss (nats/token)", 20, H / 2, black);
  c.textUp("perplexity", W - 8, H / 2, black);
  const poly = (pts: [number, number][], col: [number, number, number], width: number, dash = 0) => {
    for (let i = 1; i < pts.length; ++i) c.line(pts[i - 1][0], pts[i - 1][1], pts[i][0], pts[i][1], col, width, dash);
  };
  poly(L.train, paleBlue, 1);
  poly(L.smooth, blue, 2);
  if (L.val.length) {
    poly(L.val, red, 1, 4);
    for (const [a, b] of L.val) for (let dx = -2; dx <= 2; ++dx) for (let dy = -2; dy <= 2; ++dy) if (dx * dx + dy * dy <= 5) c.set(a + dx, b + dy, red);
  }
  const lx = W - MR - 150;
  c.line(lx, MT + 14, lx + 20, MT + 14, blue, 2);
  c.text("train (smoothed)", lx + 26, MT + 18, black);
  if (L.val.length) {
    c.line(lx, MT + 30, lx + 20, MT + 30, red, 1, 4);
    c.text("validation", lx + 26, MT + 34, black);
  }
  return encodePng(W, H, c.px);
}

// ---- several series on one chart (the examples' comparison plots) -------------------------------------------------

/** One line of a chart, points in x order (non-finite points, and y <= 0 on a log axis, are left out). */
export interface ChartSeries {
  label: string;
  points: { x: number; y: number }[];
  /** "#rrggbb". Default: the next colour of a ten-colour palette. */
  color?: string;
  /** Dashed line. Default false. */
  dashed?: boolean;
  /** A dot at every point. Default false. */
  markers?: boolean;
  /** Line width in pixels. Default 2. */
  width?: number;
}

export interface ChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Logarithmic y axis. Default false. */
  logY?: boolean;
  /** Fixed ends of the axes (default: the data's range; on the y axis padded by 5 %). */
  xMin?: number;
  xMax?: number;
  yMin?: number;
  yMax?: number;
  /** Corner of the plot area that holds the legend. Default "top-right". */
  legend?: "top-right" | "top-left" | "bottom-right" | "bottom-left";
  /** Vertical reference lines, e.g. the longest training length. */
  markX?: { x: number; label?: string }[];
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const CML = 64, CMR = 24;

interface ChartLine {
  label: string;
  color: string;
  dashed: boolean;
  markers: boolean;
  width: number;
  pts: [number, number][];
}

interface ChartLayout {
  x: (v: number) => number;
  y: (v: number) => number;
  xt: number[];
  yt: number[];
  lines: ChartLine[];
  marks: { x: number; label: string }[];
  legend: { x: number; y: number; w: number; h: number };
}

/** Ticks on a log axis: the densest of 1-2-3-5-style mantissa sets that gives at most 8 ticks in [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const sets = [[1, 1.5, 2, 3, 4, 5, 6, 8], [1, 2, 3, 5], [1, 2, 5], [1, 3], [1]];
  let best: number[] = [];
  for (const set of sets) {
    const out: number[] = [];
    for (let k = Math.floor(Math.log10(lo)) - 1; k <= Math.ceil(Math.log10(hi)); ++k)
      for (const m of set) {
        const v = +(m * Math.pow(10, k)).toPrecision(12);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
      }
    best = out;
    if (out.length <= 8) break;
  }
  // less than a decade or so: plain round numbers read better
  return best.length >= 3 ? best : ticks(lo, hi);
}

function chartLayout(series: ChartSeries[], o: ChartOptions): ChartLayout | null {
  const logY = !!o.logY;
  const ok = (p: { x: number; y: number }) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!logY || p.y > 0);
  const kept = series.map((s) => s.points.filter(ok));
  const all = kept.flat();
  if (all.length === 0) return null;
  let x0 = o.xMin ?? Math.min(...all.map((p) => p.x)), x1 = o.xMax ?? Math.max(...all.map((p) => p.x));
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x1 + 1];
  const tf = (v: number) => (logY ? Math.log(v) : v);
  let lo = o.yMin ?? Math.min(...all.map((p) => p.y)), hi = o.yMax ?? Math.max(...all.map((p) => p.y));
  if (logY && !(lo > 0)) lo = Math.min(...all.map((p) => p.y));
  if (!(hi > lo)) [lo, hi] = logY ? [lo / 2, hi * 2] : [lo - 0.5, hi + 0.5];
  let tlo = tf(lo), thi = tf(hi);
  const pad = (thi - tlo) * 0.05;
  if (o.yMin === undefined) tlo -= pad;
  if (o.yMax === undefined) thi += pad;
  const x = (v: number) => CML + ((v - x0) / (x1 - x0)) * (W - CML - CMR);
  const y = (v: number) => MT + (1 - (tf(v) - tlo) / (thi - tlo)) * (H - MT - MB);
  const yt = logY ? logTicks(Math.exp(tlo), Math.exp(thi)) : ticks(tlo, thi);
  const lines = series.map((s, i) => {
    const every = Math.max(1, Math.ceil(kept[i].length / 1000));
    const pts = kept[i].filter((_, j) => j % every === 0 || j === kept[i].length - 1);
    return { label: s.label, color: s.color ?? PALETTE[i % PALETTE.length], dashed: !!s.dashed, markers: !!s.markers, width: s.width ?? 2, pts: pts.map((p) => [x(p.x), y(p.y)] as [number, number]) };
  });
  const lw = 34 + 6 * Math.max(...series.map((s) => s.label.length)), lh = 8 + 16 * series.length;
  const corner = o.legend ?? "top-right";
  const legend = {
    x: corner.endsWith("left") ? CML + 8 : W - CMR - 8 - lw,
    y: corner.startsWith("top") ? MT + 8 : H - MB - 8 - lh,
    w: lw,
    h: lh,
  };
  const marks = (o.markX ?? []).filter((m) => m.x >= x0 && m.x <= x1).map((m) => ({ x: x(m.x), label: m.label ?? "" }));
  return { x, y, xt: ticks(x0, x1), yt, lines, marks, legend };
}

/**
 * Several series on one chart as an SVG document (a placeholder text when no series has a point).
 * @example fs.writeFileSync("ppl.svg", chartSvg([{ label: "a", points: [{ x: 0, y: 3 }, { x: 1, y: 2 }] }], { logY: true }))
 */
export function chartSvg(series: ChartSeries[], options: ChartOptions = {}): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const f = (v: number) => v.toFixed(1);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="#fff"/>`];
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title ?? "")}</text>`);
  const L = chartLayout(series, options);
  if (!L) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text></svg>`);
    return parts.join("\n");
  }
  for (const t of L.yt) {
    parts.push(`<line x1="${CML}" x2="${W - CMR}" y1="${f(L.y(t))}" y2="${f(L.y(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${CML - 6}" y="${f(L.y(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of L.xt) parts.push(`<text x="${f(L.x(t))}" y="${H - MB + 18}" text-anchor="middle">${fmt(t)}</text>`);
  parts.push(`<rect x="${CML}" y="${MT}" width="${W - CML - CMR}" height="${H - MT - MB}" fill="none" stroke="#999"/>`);
  for (const m of L.marks) {
    parts.push(`<line x1="${f(m.x)}" x2="${f(m.x)}" y1="${MT}" y2="${H - MB}" stroke="#999" stroke-dasharray="2 3"/>`);
    if (m.label) parts.push(`<text x="${f(m.x + 4)}" y="${H - MB - 6}" fill="#666">${esc(m.label)}</text>`);
  }
  parts.push(`<text x="${(CML + W - CMR) / 2}" y="${H - 10}" text-anchor="middle">${esc(options.xLabel ?? "")}</text>`);
  parts.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel ?? "")}</text>`);
  for (const l of L.lines) {
    if (l.pts.length === 0) continue;
    const style = `stroke="${l.color}" stroke-width="${l.width}"${l.dashed ? ' stroke-dasharray="6 4"' : ""}`;
    parts.push(`<polyline fill="none" ${style} points="${l.pts.map(([a, b]) => `${f(a)},${f(b)}`).join(" ")}"/>`);
    if (l.markers) for (const [a, b] of l.pts) parts.push(`<circle cx="${f(a)}" cy="${f(b)}" r="3" fill="${l.color}"/>`);
  }
  const g = L.legend;
  parts.push(`<rect x="${g.x}" y="${g.y}" width="${g.w}" height="${g.h}" fill="#fff" fill-opacity="0.85" stroke="#ccc"/>`);
  L.lines.forEach((l, i) => {
    const ly = g.y + 12 + 16 * i;
    parts.push(`<line x1="${g.x + 6}" x2="${g.x + 26}" y1="${ly}" y2="${ly}" stroke="${l.color}" stroke-width="${l.width}"${l.dashed ? ' stroke-dasharray="6 4"' : ""}/><text x="${g.x + 32}" y="${ly + 4}">${esc(l.label)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function rgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [0, 0, 0];
}

/** The chart of chartSvg as a PNG image. */
export function chartPng(series: ChartSeries[], options: ChartOptions = {}): Buffer {
  const c = new Canvas(W, H);
  c.text(options.title ?? "", W / 2, 24, black, "center");
  const L = chartLayout(series, options);
  if (!L) {
    c.text("no data", W / 2, H / 2, black, "center");
    return encodePng(W, H, c.px);
  }
  for (const t of L.yt) {
    c.line(CML, L.y(t), W - CMR, L.y(t), light);
    c.text(fmt(t), CML - 6, L.y(t) + 4, black, "right");
  }
  for (const t of L.xt) c.text(fmt(t), L.x(t), H - MB + 20, black, "center");
  c.line(CML, MT, W - CMR, MT, grey);
  c.line(CML, H - MB, W - CMR, H - MB, grey);
  c.line(CML, MT, CML, H - MB, grey);
  c.line(W - CMR, MT, W - CMR, H - MB, grey);
  for (const m of L.marks) {
    c.line(m.x, MT, m.x, H - MB, grey, 1, 3);
    if (m.label) c.text(m.label, m.x + 4, H - MB - 6, grey);
  }
  c.text(options.xLabel ?? "", (CML + W - CMR) / 2, H - 10, black, "center");
  c.textUp(options.yLabel ?? "", 20, H / 2, black);
  for (const l of L.lines) {
    const col = rgb(l.color);
    for (let i = 1; i < l.pts.length; ++i) c.line(l.pts[i - 1][0], l.pts[i - 1][1], l.pts[i][0], l.pts[i][1], col, l.width, l.dashed ? 5 : 0);
    if (l.markers) for (const [a, b] of l.pts) for (let dx = -2; dx <= 2; ++dx) for (let dy = -2; dy <= 2; ++dy) if (dx * dx + dy * dy <= 5) c.set(a + dx, b + dy, col);
  }
  const g = L.legend;
  for (let yy = g.y; yy <= g.y + g.h; ++yy) for (let xx = g.x; xx <= g.x + g.w; ++xx) c.set(xx, yy, [255, 255, 255]);
  c.line(g.x, g.y, g.x + g.w, g.y, light);
  c.line(g.x, g.y + g.h, g.x + g.w, g.y + g.h, light);
  c.line(g.x, g.y, g.x, g.y + g.h, light);
  c.line(g.x + g.w, g.y, g.x + g.w, g.y + g.h, light);
  L.lines.forEach((l, i) => {
    const ly = g.y + 12 + 16 * i;
    c.line(g.x + 6, ly, g.x + 26, ly, rgb(l.color), l.width, l.dashed ? 5 : 0);
    c.text(l.label, g.x + 32, ly + 4, black);
  });
  return encodePng(W, H, c.px);
}

/**
 * Write `<base>.svg` and `<base>.png` (atomically); returns both paths.
 * @example writeChart("run/perplexity", series, { title: "validation perplexity", logY: true })
 */
export function writeChart(base: string, series: ChartSeries[], options: ChartOptions = {}): { svg: string; png: string } {
  const svg = `${base}.svg`, png = `${base}.png`;
  writeFileAtomic(svg, Buffer.from(chartSvg(series, options)), { fsync: false });
  writeFileAtomic(png, chartPng(series, options), { fsync: false });
  return { svg, png };
}

/**
 * A braille-dot chart of the loss for the terminal (`width` x `height` characters plus axis labels).
 * @example process.stderr.write(terminalChart(points) + "\n")
 */
export function terminalChart(points: LossPoint[], width = 60, height = 10): string {
  const pts = points.filter((p) => Number.isFinite(p.loss));
  if (pts.length === 0) return "(no steps)";
  const dw = width * 2, dh = height * 4;
  const s0 = pts[0].step, s1 = pts[pts.length - 1].step;
  const grid = Array.from({ length: height }, () => new Uint8Array(width));
  const bit = [
    [0x01, 0x08],
    [0x02, 0x10],
    [0x04, 0x20],
    [0x40, 0x80],
  ];
  // per dot column: the mean loss of the steps that fall there
  const sum = new Float64Array(dw), cnt = new Uint32Array(dw);
  for (const p of pts) {
    const col = s1 > s0 ? Math.min(dw - 1, Math.floor(((p.step - s0) / (s1 - s0)) * dw)) : 0;
    sum[col] += p.loss;
    cnt[col]++;
  }
  // columns without a step of their own are interpolated between their neighbours
  const val = new Float64Array(dw).fill(NaN);
  for (let col = 0; col < dw; ++col) if (cnt[col]) val[col] = sum[col] / cnt[col];
  let known = -1;
  for (let col = 0; col < dw; ++col) {
    if (!Number.isNaN(val[col])) {
      if (known >= 0) for (let k = known + 1; k < col; ++k) val[k] = val[known] + ((val[col] - val[known]) * (k - known)) / (col - known);
      known = col;
    }
  }
  // the range of what is drawn (column means), so averaging does not leave empty rows
  const drawn = Array.from(val).filter((v) => !Number.isNaN(v));
  const lo = Math.min(...drawn);
  let hi = Math.max(...drawn);
  if (hi - lo < 1e-9) hi = lo + 1;
  let prev = -1;
  for (let col = 0; col < dw; ++col) {
    if (Number.isNaN(val[col])) continue;
    const row = Math.min(dh - 1, Math.max(0, Math.round((1 - (val[col] - lo) / (hi - lo)) * (dh - 1))));
    const from = prev < 0 ? row : Math.min(prev, row), to = prev < 0 ? row : Math.max(prev, row);
    for (let r = from; r <= to; ++r) grid[r >> 2][col >> 1] |= bit[r & 3][col & 1];
    prev = row;
  }
  const label = (v: number) => v.toFixed(3).padStart(8);
  const lines = grid.map((row, i) => `${i === 0 ? label(hi) : i === height - 1 ? label(lo) : " ".repeat(8)} ${i === 0 || i === height - 1 ? "┤" : "│"}${Array.from(row, (b) => String.fromCharCode(0x2800 + b)).join("")}`);
  lines.push(`${" ".repeat(9)}└${"─".repeat(width)}`);
  const left = `step ${s0}`, right = `${s1}`;
  lines.push(`${" ".repeat(10)}${left}${" ".repeat(Math.max(1, width - left.length - right.length))}${right}`);
  return ["loss", ...lines].join("\n");
}

/** Write loss.svg and loss.png in `dir` (atomically). */
export function writePlots(dir: string, points: LossPoint[]): void {
  writeFileAtomic(path.join(dir, "loss.svg"), Buffer.from(lossSvg(points)), { fsync: false });
  writeFileAtomic(path.join(dir, "loss.png"), lossPng(points), { fsync: false });
}

/** Points from a metrics.jsonl file. */
export function readLossPoints(file: string): LossPoint[] {
  if (!fs.existsSync(file)) return [];
  const out: LossPoint[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    try {
      const r = JSON.parse(line);
      if (typeof r.step === "number" && typeof r.loss === "number") out.push(r);
    } catch {
      // skip blank or torn lines
    }
  }
  return out;
}
