// The series of every panel, drawn on a canvas of their own over the frame Vega draws (titles,
// axes, grid: rungroup.chart.widget_spec's `frame`), with the frame's scales. Vega's dataflow
// over every drawn point (faceting by series, joining, encoding, bounds: some 13,000 rows per
// repaint) took half of a repaint; drawing them here takes a few milliseconds. What is drawn
// follows the full spec's layers (exports still draw that through Vega): on a group page the
// thin run lines; then each series' band, lighter where it has fewer runs than its most; the
// unsmoothed line faintly; the line, dashed where it has fewer runs. Paths break at missing
// values. A series the legend's isolation leaves out is drawn faintly.
import type { Result } from "vega-embed";
import { h } from "../dom";
import { panelsOf } from "./crosshair";
import { type Track, type Tracks, valuesOf } from "./tracks";

type View = Result["view"];
export type Scale = (value: unknown) => number;

/** Bits of a row's `rg_part` (rungroup.chart.FULL_PART, THIN_PART). */
const FULL_PART = 1;
/** The share of the band's opacity where a series has fewer runs (rungroup.chart._THIN_BAND). */
const THIN_BAND = 0.35;
const DASH = [4, 3];
/** Line widths and opacities of rungroup.chart's widget layers. */
export const LOOK = {
  line: { width: 1.8, opacity: 1, isolatedOut: 0.12 },
  raw: { width: 1, opacity: 0.3, isolatedOut: 0.04 },
  run: { width: 1, opacity: 0.4 },
  /** Of the band's opacity. */
  bandIsolatedOut: 0.15,
};
/** How far (px) strokes may reach past the plot area (a line at the domain's edge keeps its
 * full width). */
const CLIP_MARGIN = 2;

/** What the spec's layers draw (its `usermeta.rungroup`). */
export interface Layers {
  grouped: boolean;
  raw: boolean;
}

/** What a drawing over the chart reads from it. */
export interface ChartState {
  view(): View | null;
  /** The panels' metrics in the spec's order. */
  metrics(): string[];
  tracks(): Tracks;
  isolated(): string[] | null;
  bandOpacity(): number;
}

export interface SeriesHost extends ChartState {
  layers(): Layers;
}

/** What the last drawing drew: the tests read it through the probe. */
export interface Drawn {
  /** Lines (series and runs) with a point drawn, and bands with a polygon drawn. */
  lines: number;
  bands: number;
  /** Series whose line has a dashed stretch. */
  dashed: number;
  /** Line points drawn above or below their neighbour the wrong way round for their values,
   * and line points drawn outside their panel's plot area (a scale left from older data). */
  misplaced: number;
  outside: number;
  /** Each drawn line's colour, by series (or run). */
  strokes: Record<string, string>;
}

function emptyDrawn(): Drawn {
  return { lines: 0, bands: 0, dashed: 0, misplaced: 0, outside: 0, strokes: {} };
}

/** A track's screen positions: x, and y of one field, NaN where there is no value to draw. */
function positions(track: Track, field: string, x: Scale, y: Scale, xs: Float64Array | null): { xs: Float64Array; ys: Float64Array } {
  const n = track.index.length;
  const px = xs ?? new Float64Array(n);
  if (xs === null) for (let k = 0; k < n; k++) px[k] = x(track.xs[k]);
  const values = valuesOf(track.columns, field);
  const ys = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const value = values[track.index[k]];
    ys[k] = typeof value === "number" && Number.isFinite(value) ? y(value) : Number.NaN;
  }
  return { xs: px, ys };
}

/** Per row: whether it belongs to a full stretch (every row, without `rg_part`). */
function fullRows(track: Track): Uint8Array {
  const parts = track.columns.values.rg_part;
  const full = new Uint8Array(track.index.length).fill(1);
  if (parts === undefined) return full;
  for (let k = 0; k < full.length; k++) {
    const part = parts[track.index[k]];
    full[k] = typeof part === "number" && (part & FULL_PART) === 0 ? 0 : 1;
  }
  return full;
}

export interface Pen {
  x: Scale;
  y: Scale;
}

/** A track's band: each stretch of rows with both bounds as one polygon, at `opacity` where
 * both ends of a step are full, else at THIN_BAND of it. Returns whether any was drawn. */
export function paintBand(context: CanvasRenderingContext2D, track: Track, pen: Pen, colour: string, opacity: number): boolean {
  const lower = positions(track, "lower", pen.x, pen.y, null);
  const upper = positions(track, "upper", pen.x, pen.y, lower.xs);
  const xs = lower.xs;
  const full = fullRows(track);
  context.fillStyle = colour;
  let drawn = false;
  const fill = (from: number, to: number, thin: boolean) => {
    if (to - from < 1) return;
    context.globalAlpha = thin ? opacity * THIN_BAND : opacity;
    context.beginPath();
    context.moveTo(xs[from], upper.ys[from]);
    for (let k = from + 1; k <= to; k++) context.lineTo(xs[k], upper.ys[k]);
    for (let k = to; k >= from; k--) context.lineTo(xs[k], lower.ys[k]);
    context.closePath();
    context.fill();
    drawn = true;
  };
  const valid = (k: number) => Number.isFinite(xs[k]) && Number.isFinite(lower.ys[k]) && Number.isFinite(upper.ys[k]);
  let start = -1;
  let thin = false;
  for (let k = 0; k < xs.length; k++) {
    if (!valid(k)) {
      if (start >= 0) fill(start, k - 1, thin);
      start = -1;
      continue;
    }
    if (start < 0) {
      start = k;
      continue;
    }
    const stepThin = !(full[k - 1] && full[k]);
    if (k - 1 > start && stepThin !== thin) {
      // the stretch so far ends at the joint, and the next starts there
      fill(start, k - 1, thin);
      start = k - 1;
    }
    thin = stepThin;
  }
  if (start >= 0) fill(start, xs.length - 1, thin);
  context.globalAlpha = 1;
  return drawn;
}

/** What one stroked line drew. */
export interface Stroked {
  points: number;
  dashed: boolean;
  misplaced: number;
  outside: number;
}

/** A track's `field` as a line: dashed where either end of a step has fewer runs than the
 * series' most (when `dashes`), broken where a value is missing; one path per stretch of
 * one style (a stroke per step costs a millisecond per series). `box`: the plot area, for
 * counting points drawn outside it. */
export function paintLine(
  context: CanvasRenderingContext2D,
  track: Track,
  pen: Pen,
  look: { field: string; colour: string; width: number; opacity: number; dashes: boolean },
  box: { width: number; height: number },
): Stroked {
  const { xs, ys } = positions(track, look.field, pen.x, pen.y, null);
  const full = look.dashes ? fullRows(track) : null;
  const values = valuesOf(track.columns, look.field);
  const stroked: Stroked = { points: 0, dashed: false, misplaced: 0, outside: 0 };
  context.globalAlpha = look.opacity;
  context.strokeStyle = look.colour;
  context.lineWidth = look.width;
  context.lineJoin = "round";
  let from = -1;
  let dashed = false;
  const stroke = (to: number) => {
    if (from >= 0 && to > from) {
      context.setLineDash(dashed ? DASH : []);
      context.beginPath();
      context.moveTo(xs[from], ys[from]);
      for (let k = from + 1; k <= to; k++) context.lineTo(xs[k], ys[k]);
      context.stroke();
      if (dashed) stroked.dashed = true;
    }
  };
  let previous = -1;
  for (let k = 0; k < xs.length; k++) {
    if (!Number.isFinite(xs[k]) || !Number.isFinite(ys[k])) {
      stroke(k - 1);
      from = -1;
      previous = -1;
      continue;
    }
    stroked.points++;
    if (xs[k] < -CLIP_MARGIN || xs[k] > box.width + CLIP_MARGIN || ys[k] < -CLIP_MARGIN || ys[k] > box.height + CLIP_MARGIN) stroked.outside++;
    if (previous >= 0) {
      // screen y grows downwards: a larger value is drawn higher up
      const [a, b] = [values[track.index[previous]] as number, values[track.index[k]] as number];
      if (Math.sign(b - a) !== Math.sign(ys[previous] - ys[k])) stroked.misplaced++;
    }
    if (from < 0) {
      from = k;
    } else {
      const stepDashed = full !== null && !(full[k - 1] && full[k]);
      if (k - 1 > from && stepDashed !== dashed) {
        stroke(k - 1);
        from = k - 1;
      }
      dashed = stepDashed;
    }
    previous = k;
  }
  stroke(xs.length - 1);
  context.setLineDash([]);
  context.globalAlpha = 1;
  return stroked;
}

/** The colour a track is drawn in (its rows' `rg_colour`). */
export function colourOf(track: Track): string {
  const colour = valuesOf(track.columns, "rg_colour")[track.index[0]];
  return typeof colour === "string" ? colour : "currentColor";
}

/** A canvas the size of Vega's, laid over it, for drawings in the panels' coordinates. */
export function overlay(canvas: HTMLCanvasElement, under: HTMLCanvasElement, place: { left: number; top: number }): CanvasRenderingContext2D | null {
  const ratio = window.devicePixelRatio || 1;
  // Vega sizes its canvas's box in CSS pixels (its backing store at the pixel density)
  const width = Number.parseFloat(under.style.width) || under.width / ratio;
  const height = Number.parseFloat(under.style.height) || under.height / ratio;
  const [w, hgt] = [Math.ceil(width * ratio), Math.ceil(height * ratio)];
  if (canvas.width !== w || canvas.height !== hgt) Object.assign(canvas, { width: w, height: hgt });
  Object.assign(canvas.style, { left: `${place.left}px`, top: `${place.top}px`, width: `${width}px`, height: `${height}px` });
  const context = canvas.getContext("2d");
  if (!context) return null;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  return context;
}

/** Each panel's scales and plot area, with `draw` called inside it (clipped to it). */
export function eachPanel(
  view: View,
  context: CanvasRenderingContext2D,
  metrics: string[],
  draw: (metric: string, pen: Pen, box: { width: number; height: number }) => void,
): void {
  const [ox, oy] = view.origin();
  for (const panel of panelsOf(view)) {
    let pen: Pen;
    try {
      pen = { x: view.scale(`concat_${panel.index}_x`) as Scale, y: view.scale(`concat_${panel.index}_y`) as Scale };
    } catch {
      continue;
    }
    context.save();
    context.translate(ox + panel.x0, oy + panel.y0);
    context.beginPath();
    context.rect(-CLIP_MARGIN, -CLIP_MARGIN, panel.width + 2 * CLIP_MARGIN, panel.height + 2 * CLIP_MARGIN);
    context.clip();
    draw(metrics[panel.index], pen, { width: panel.width, height: panel.height });
    context.restore();
  }
}

export class SeriesCanvas {
  readonly canvas: HTMLCanvasElement;
  /** What the last drawing drew. */
  drawn: Drawn = emptyDrawn();

  constructor(private readonly host: SeriesHost) {
    this.canvas = h("canvas", { class: "rg-series", attrs: { "aria-hidden": "true" } });
  }

  /** Lay the canvas over Vega's (after a new embed). */
  attach(under: HTMLCanvasElement): void {
    under.after(this.canvas);
  }

  /** Draw every panel's series for the view's current scales. */
  draw(): void {
    const drawn = emptyDrawn();
    this.drawn = drawn;
    const view = this.host.view();
    const under = this.canvas.previousElementSibling;
    if (!view || !(under instanceof HTMLCanvasElement)) return;
    // the same box as Vega's canvas: its sibling in the same positioned container
    const context = overlay(this.canvas, under, { left: under.offsetLeft, top: under.offsetTop });
    if (!context) return;
    const tracks = this.host.tracks();
    const isolated = this.host.isolated();
    const out = (track: Track) => isolated !== null && !track.run && !isolated.includes(track.series);
    const band = this.host.bandOpacity();
    const layers = this.host.layers();
    eachPanel(view, context, this.host.metrics(), (metric, pen, box) => {
      const panel = tracks.get(metric) ?? [];
      const count = (track: Track, stroked: Stroked) => {
        if (stroked.points === 0) return;
        drawn.lines++;
        drawn.misplaced += stroked.misplaced;
        drawn.outside += stroked.outside;
        if (stroked.dashed) drawn.dashed++;
        drawn.strokes[track.key] ??= colourOf(track);
      };
      for (const track of panel) {
        if (!track.run) continue;
        const look = { field: "line", colour: colourOf(track), width: LOOK.run.width, opacity: LOOK.run.opacity, dashes: false };
        count(track, paintLine(context, track, pen, look, box));
      }
      const series = panel.filter((track) => !track.run);
      if (layers.grouped) {
        for (const track of series) {
          if (paintBand(context, track, pen, colourOf(track), out(track) ? band * LOOK.bandIsolatedOut : band)) drawn.bands++;
        }
      }
      if (layers.raw) {
        for (const track of series) {
          const opacity = out(track) ? LOOK.raw.isolatedOut : LOOK.raw.opacity;
          paintLine(context, track, pen, { field: "raw", colour: colourOf(track), width: LOOK.raw.width, opacity, dashes: false }, box);
        }
      }
      for (const track of series) {
        const opacity = out(track) ? LOOK.line.isolatedOut : LOOK.line.opacity;
        count(track, paintLine(context, track, pen, { field: "line", colour: colourOf(track), width: LOOK.line.width, opacity, dashes: true }, box));
      }
    });
  }
}
