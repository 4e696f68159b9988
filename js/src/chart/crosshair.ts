// Tooltips at any x (as W&B's charts have them): hovering anywhere in a panel draws a rule at
// the nearest x any series has a point at and lists every visible series there, with its
// line and band named by what they are, n, and values to 4 significant digits. The series
// nearest the pointer (in pixels) is the hovered one: it and its table row come forward.
// Pure DOM over the chart's canvases: a pointer move costs a few binary searches and one
// small list, never a Vega re-render.
import type { Result } from "vega-embed";
import { h } from "../dom";
import type { LegendData, LegendEntry } from "./legend";
import type { Row } from "./partition";
import { rowOf, type Track, type Tracks, xNumber } from "./tracks";

type View = Result["view"];

interface SceneItem {
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  items?: SceneMark[];
}
interface SceneMark {
  marktype?: string;
  name?: string;
  items?: SceneItem[];
}

const significant = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });
/** How far (px) from a line the pointer still hovers its series. */
const HOVER_REACH = 24;

export function formatValue(value: unknown): string {
  if (typeof value !== "number" || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-4)) return value.toPrecision(4);
  return significant.format(value);
}

/** Index of the value in sorted `xs` nearest to `x` (-1 for none). */
export function nearest(xs: Float64Array, x: number): number {
  if (xs.length === 0) return -1;
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}

export interface CrosshairHost {
  view(): View | null;
  /** The panels' metrics in the spec's order. */
  metrics(): string[];
  tracks(): Tracks;
  legend(): LegendData;
  isolated(): string[] | null;
  hover(key: string | null): void;
}

export class Crosshair {
  private readonly rule: HTMLDivElement;
  private readonly tip: HTMLDivElement;
  private pending: PointerEvent | null = null;
  private hovered: string | null = null;
  /** Series listed in the tooltip shown last (the tests read it). */
  listed = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly host: CrosshairHost,
  ) {
    this.rule = h("div", { class: "rg-crosshair", attrs: { "aria-hidden": "true" } });
    this.tip = h("div", { class: "rg-tooltip", attrs: { role: "tooltip" } });
    this.rule.hidden = true;
    this.tip.hidden = true;
    el.addEventListener("pointermove", (event) => {
      // one update per frame, with the latest position
      if (this.pending === null) requestAnimationFrame(() => this.update());
      this.pending = event;
    });
    el.addEventListener("pointerleave", () => {
      this.pending = null;
      this.hide();
    });
  }

  /** Put the overlay back after the chart's element was emptied (a new embed). */
  attach(): void {
    this.el.append(this.rule, this.tip);
  }

  hide(): void {
    this.rule.hidden = true;
    this.tip.hidden = true;
    this.listed = 0;
    this.setHovered(null);
  }

  private setHovered(key: string | null): void {
    if (key === this.hovered) return;
    this.hovered = key;
    this.host.hover(key);
  }

  /** Handle a pointer position now (the rAF path calls it; tests call it directly). */
  moveTo(clientX: number, clientY: number): void {
    this.pending = { clientX, clientY } as PointerEvent;
    this.update();
  }

  private update(): void {
    const event = this.pending;
    this.pending = null;
    const view = this.host.view();
    if (!event || !view) return;
    const canvas = this.el.querySelector<HTMLCanvasElement>("canvas.marks");
    if (!canvas) return this.hide();
    const box = canvas.getBoundingClientRect();
    const [ox, oy] = view.origin();
    const px = event.clientX - box.left - ox;
    const py = event.clientY - box.top - oy;
    const panel = this.panelAt(view, px, py);
    if (panel === null) return this.hide();
    const { index, x0, y0, width, height } = panel;
    const metric = this.host.metrics()[index];
    let xScale: ((v: number) => number) & { invert(v: number): number };
    let yScale: (v: number) => number;
    try {
      xScale = view.scale(`concat_${index}_x`) as typeof xScale;
      yScale = view.scale(`concat_${index}_y`) as typeof yScale;
    } catch {
      return this.hide();
    }
    const isolated = this.host.isolated();
    const tracks = (this.host.tracks().get(metric) ?? []).filter((t) => isolated === null || isolated.includes(t.series));
    const target = xNumber(xScale.invert(px - x0));
    // the nearest x any visible line has a point at
    let best = Number.NaN;
    for (const track of tracks) {
      const i = nearest(track.xs, target);
      if (i >= 0 && (Number.isNaN(best) || Math.abs(track.xs[i] - target) < Math.abs(best - target))) best = track.xs[i];
    }
    if (Number.isNaN(best)) return this.hide();
    const legend = this.host.legend();
    const entries = new Map<string, LegendEntry>(legend.entries.map((e) => [e.series, e]));
    type Listed = { track: Track; row: Row; entry: LegendEntry | undefined; distance: number };
    const listed: Listed[] = [];
    for (const track of tracks) {
      const i = nearest(track.xs, best);
      // a line without a point within half a step of x is not there
      if (i < 0 || !closeEnough(track.xs, i, best)) continue;
      const row = rowOf(track, i);
      const y = typeof row.line === "number" ? yScale(row.line) : Number.NaN;
      listed.push({ track, row, entry: entries.get(track.key) ?? entries.get(track.series), distance: Math.abs(y - (py - y0)) });
    }
    if (listed.length === 0) return this.hide();
    const closest = listed.reduce((a, b) => (b.distance < a.distance ? b : a));
    this.setHovered(closest.distance <= HOVER_REACH ? closest.track.key : null);
    listed.sort((a, b) => (Number(b.row.line) || -Infinity) - (Number(a.row.line) || -Infinity));

    const elBox = this.el.getBoundingClientRect();
    const left = box.left - elBox.left + this.el.scrollLeft + ox + x0 + xScale(best);
    const top = box.top - elBox.top + oy + y0;
    Object.assign(this.rule.style, { left: `${left}px`, top: `${top}px`, height: `${height}px` });
    this.rule.hidden = false;
    this.renderTip(legend, listed, best, closest.distance <= HOVER_REACH ? closest.track.key : null);
    this.tip.hidden = false;
    // beside the rule, on the side with room, inside the chart's element
    const tipWidth = this.tip.offsetWidth;
    const right = left + 12 + tipWidth <= this.el.clientWidth + this.el.scrollLeft;
    const tipLeft = right ? left + 12 : Math.max(this.el.scrollLeft, left - 12 - tipWidth);
    const pointerTop = event.clientY - elBox.top;
    const tipTop = Math.max(0, Math.min(pointerTop - 20, this.el.clientHeight - this.tip.offsetHeight));
    Object.assign(this.tip.style, { left: `${tipLeft}px`, top: `${tipTop}px` });
    void width;
  }

  private renderTip(
    legend: LegendData,
    listed: { track: Track; row: Row; entry: LegendEntry | undefined }[],
    x: number,
    hovered: string | null,
  ): void {
    const xText = legend.temporal ? new Date(x).toISOString().replace("T", " ").slice(0, 19) : formatValue(x);
    const band = legend.band ?? null;
    const head = h("div", { class: "rg-tooltip-head", text: `${legend.x ?? "x"} ${xText}` });
    const header = h("tr", {}, [
      h("th", {}),
      h("th", { text: legend.title }),
      h("th", { text: legend.line ?? "value" }),
      band ? h("th", { text: band }) : null,
      h("th", { text: "n" }),
    ]);
    const rows = listed.map(({ track, row, entry }) => {
      const swatch = h("span", { class: "rg-swatch" });
      swatch.style.background = entry?.colour ?? "currentColor";
      const bandText = `${formatValue(row.lower)} – ${formatValue(row.upper)}`;
      return h("tr", { class: track.key === hovered ? "rg-tooltip-hovered" : "" }, [
        h("td", {}, [swatch]),
        h("td", { class: "rg-tooltip-label", text: entry?.label ?? track.key }),
        h("td", { class: "rg-num", text: formatValue(row.line) }),
        band ? h("td", { class: "rg-num", text: bandText }) : null,
        h("td", { class: "rg-num", text: typeof row.n === "number" ? String(row.n) : "" }),
      ]);
    });
    this.tip.replaceChildren(head, h("table", {}, [h("thead", {}, [header]), h("tbody", {}, rows)]));
    this.listed = listed.length;
  }

  /** The panel (a concat cell) under a point of the root group's coordinates. */
  private panelAt(view: View, px: number, py: number): Panel | null {
    return panelsOf(view).find(({ x0, y0, width, height }) => px >= x0 && px <= x0 + width && py >= y0 && py <= y0 + height) ?? null;
  }
}

/** A panel of the view: its number in the spec and its plot area in the root group's
 * coordinates. */
export interface Panel {
  index: number;
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/** The view's panels (its concat cells), from the scenegraph. */
export function panelsOf(view: View): Panel[] {
  const root = (view.scenegraph() as unknown as { root: SceneMark }).root;
  const panels: Panel[] = [];
  for (const mark of root.items?.[0]?.items ?? []) {
    const match = /^concat_(\d+)_group$/.exec(mark.name ?? "");
    const cell = mark.items?.[0];
    if (!match || !cell) continue;
    panels.push({ index: Number(match[1]), x0: cell.x ?? 0, y0: cell.y ?? 0, width: cell.width ?? 0, height: cell.height ?? 0 });
  }
  return panels;
}

/** Whether the point `i` of `xs` is at `x` or within half its neighbours' spacing of it. */
function closeEnough(xs: Float64Array, i: number, x: number): boolean {
  const distance = Math.abs(xs[i] - x);
  if (distance === 0) return true;
  const before = i > 0 ? xs[i] - xs[i - 1] : Number.POSITIVE_INFINITY;
  const after = i < xs.length - 1 ? xs[i + 1] - xs[i] : Number.POSITIVE_INFINITY;
  const spacing = Math.min(before, after);
  return Number.isFinite(spacing) ? distance <= spacing / 2 : false;
}
