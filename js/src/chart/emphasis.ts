// The hovered series brought forward (its table row, legend entry or line under the pointer):
// a canvas over Vega's washes every panel's plot area in the background colour, so that the
// other series recede, and draws the hovered series' band and line again on top. A hover
// change costs one small canvas drawing of one series, never a Vega re-render (which redraws
// every mark of every panel: the encode and paint of some 16,000 items per move).
import type { Result } from "vega-embed";
import { h } from "../dom";
import { panelsOf, type Tracks, xNumber } from "./crosshair";
import type { Row } from "./partition";

type View = Result["view"];
type Scale = (value: unknown) => number;

/** How much of the plot area's colour covers what is not hovered. */
const WASH = 0.8;
/** Bits of a row's `rg_part` (rungroup.chart.FULL_PART): drawn full, else dashed. */
const FULL_PART = 1;

export interface EmphasisHost {
  view(): View | null;
  /** The panels' metrics in the spec's order. */
  metrics(): string[];
  tracks(): Tracks;
  isolated(): string[] | null;
  background(): string;
  bandOpacity(): number;
}

function finite(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

export class Emphasis {
  private readonly canvas: HTMLCanvasElement;
  /** The key drawn last (a series, or a run on a group page); null: nothing is. */
  private key: string | null = null;
  /** Points of the hovered series drawn last (the tests read it). */
  drawn = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly host: EmphasisHost,
  ) {
    this.canvas = h("canvas", { class: "rg-emphasis", attrs: { "aria-hidden": "true" } });
    this.canvas.hidden = true;
  }

  /** Put the canvas back after the chart's element was emptied (a new embed). */
  attach(): void {
    this.el.append(this.canvas);
  }

  /** Bring `key` forward (null: nothing), drawn at once. */
  show(key: string | null): void {
    this.key = key;
    this.redraw();
  }

  /** Draw the current key again: after the view drew new data or changed its size. */
  redraw(): void {
    this.drawn = 0;
    const view = this.host.view();
    const under = this.el.querySelector<HTMLCanvasElement>("canvas:not(.rg-emphasis)");
    const isolated = this.host.isolated();
    const key = this.key;
    if (key === null || !view || !under) {
      this.canvas.hidden = true;
      return;
    }
    const tracks = this.host.tracks();
    const shown = (track: { key: string; series: string }) =>
      track.key === key && (isolated === null || isolated.includes(track.series));
    // a series the legend's isolation leaves out (or one not drawn) washes nothing back
    if (![...tracks.values()].some((panel) => panel.some(shown))) {
      this.canvas.hidden = true;
      return;
    }
    // the same place and size as Vega's canvas, at the screen's pixel density
    const box = under.getBoundingClientRect();
    const host = this.el.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const [width, height] = [Math.ceil(box.width * ratio), Math.ceil(box.height * ratio)];
    if (this.canvas.width !== width || this.canvas.height !== height) Object.assign(this.canvas, { width, height });
    Object.assign(this.canvas.style, {
      left: `${box.left - host.left + this.el.scrollLeft}px`,
      top: `${box.top - host.top + this.el.scrollTop}px`,
      width: `${box.width}px`,
      height: `${box.height}px`,
    });
    const context = this.canvas.getContext("2d");
    if (!context) return;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, box.width, box.height);
    const [ox, oy] = view.origin();
    const metrics = this.host.metrics();
    for (const panel of panelsOf(view)) {
      let x: Scale;
      let y: Scale;
      try {
        x = view.scale(`concat_${panel.index}_x`) as Scale;
        y = view.scale(`concat_${panel.index}_y`) as Scale;
      } catch {
        continue;
      }
      context.save();
      context.translate(ox + panel.x0, oy + panel.y0);
      context.beginPath();
      context.rect(0, 0, panel.width, panel.height);
      context.clip();
      context.globalAlpha = WASH;
      context.fillStyle = this.host.background();
      context.fillRect(0, 0, panel.width, panel.height);
      context.globalAlpha = 1;
      for (const track of tracks.get(metrics[panel.index]) ?? []) {
        if (shown(track)) this.drawn += this.paint(context, track.rows, x, y);
      }
      context.restore();
    }
    this.canvas.hidden = false;
  }

  /** One series' band and line in its colour; returns the points drawn. */
  private paint(context: CanvasRenderingContext2D, rows: Row[], x: Scale, y: Scale): number {
    const colour = String(rows[0]?.rg_colour ?? "currentColor");
    const at = (row: Row, field: string): [number, number] | null => {
      const value = row[field];
      if (!finite(value)) return null;
      const point: [number, number] = [x(xNumber(row.x)), y(value)];
      return Number.isFinite(point[0]) && Number.isFinite(point[1]) ? point : null;
    };
    // the band: each stretch of rows with both bounds, as one polygon
    context.fillStyle = colour;
    context.globalAlpha = this.host.bandOpacity();
    let stretch: Row[] = [];
    const fill = () => {
      if (stretch.length > 1) {
        context.beginPath();
        for (const row of stretch) context.lineTo(...(at(row, "upper") as [number, number]));
        for (let i = stretch.length - 1; i >= 0; i--) context.lineTo(...(at(stretch[i], "lower") as [number, number]));
        context.closePath();
        context.fill();
      }
      stretch = [];
    };
    for (const row of rows) {
      if (at(row, "lower") && at(row, "upper")) stretch.push(row);
      else fill();
    }
    fill();
    // the line: dashed where either end of a stretch has fewer runs than the series' most;
    // one path per run of equal style (a stroke per segment costs a millisecond per series)
    context.globalAlpha = 1;
    context.strokeStyle = colour;
    context.lineWidth = 2.5;
    context.lineJoin = "round";
    let drawn = 0;
    let path: [number, number][] = [];
    let dashed = false;
    let lastFull = true;
    const stroke = () => {
      if (path.length > 1) {
        context.setLineDash(dashed ? [4, 3] : []);
        context.beginPath();
        context.moveTo(...path[0]);
        for (let i = 1; i < path.length; i++) context.lineTo(...path[i]);
        context.stroke();
      }
      path = [];
    };
    for (const row of rows) {
      const point = at(row, "line");
      if (point === null) {
        stroke();
        continue;
      }
      drawn++;
      const full = typeof row.rg_part !== "number" || (row.rg_part & FULL_PART) !== 0;
      if (path.length > 0) {
        const segmentDashed = !(lastFull && full);
        if (path.length > 1 && segmentDashed !== dashed) {
          const joint = path[path.length - 1];
          stroke();
          path = [joint];
        }
        dashed = segmentDashed;
      }
      path.push(point);
      lastFull = full;
    }
    stroke();
    context.setLineDash([]);
    return drawn;
  }
}
