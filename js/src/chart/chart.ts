// The charts: two specs come from Python (rungroup.chart.widget_spec). Vega draws the `frame`
// (titles, axes, grid; each panel's scales set by two extent rows) and the series canvas
// draws the lines and bands over it from the Arrow columns (series.ts). The full `spec`, with
// every mark, draws the exported images. A new frame is embedded only when the spec's shape
// changes; otherwise the existing view gets new extents.
import embed, { type Result, vega, vegaLite } from "vega-embed";
import { h } from "../dom";
import { Crosshair, panelsOf } from "./crosshair";
import { Emphasis } from "./emphasis";
import { Legend, type LegendData } from "./legend";
import { type Columns, type Dataset, datasetsOf, partition, rowAt } from "./partition";
import { type Layers, SeriesCanvas } from "./series";
import { bandOpacity, themeBackground, themeConfig } from "./theme";
import { extentRows, type Tracks, tracksOf, valuesOf } from "./tracks";

/** The narrowest a panel may be (its plot area, axes and titles, px); as many columns as fit. */
export const MIN_PANEL = 320;
/** What a panel's axes, titles and the gap to the next take beside its plot area (px). */
const PANEL_CHROME = 78;
const HEIGHTS = { min: 120, max: 640, initial: 220 };
const ISOLATED_SIGNAL = "rg_isolated";
const BAND_SIGNAL = "rg_band";
/** The frame's extent datasets: this prefix and the panel's number (rungroup.chart.FRAME_PREFIX). */
const FRAME_PREFIX = "rg_frame_";

/** What `usermeta.rungroup` of the specs tells the browser. */
interface SpecMeta {
  log_y?: boolean;
  grouped?: boolean;
  raw?: boolean;
}

function metaOf(spec: Record<string, unknown>): SpecMeta {
  return (spec.usermeta as { rungroup?: SpecMeta } | undefined)?.rungroup ?? {};
}

/** `spec` with the browser's panel layout: its columns, and each panel's plot size. The only
 * change the browser makes to a spec: Python cannot know the widget's width. */
function sized(spec: Record<string, unknown>, size: { columns: number; width: number; height: number }): Record<string, unknown> {
  if (!Array.isArray(spec.concat)) return spec;
  const concat = (spec.concat as Record<string, unknown>[]).map((panel) => ({ ...panel, width: size.width, height: size.height }));
  return { ...spec, columns: size.columns, concat };
}

export class ChartPanel {
  readonly el: HTMLDivElement;
  /** Where Vega draws (the crosshair's rule and tooltip lie over it). */
  private readonly canvasHost: HTMLDivElement;
  readonly legend: Legend;
  /** Why nothing (or not every metric) is drawn. */
  private readonly notice: HTMLDivElement;
  private readonly handle: HTMLDivElement;
  private readonly crosshair: Crosshair;
  private readonly emphasis: Emphasis;
  private readonly series: SeriesCanvas;
  private result: Result | null = null;
  specKey: string | null = null;
  private hoverListeners: ((series: string | null) => void)[] = [];
  /** The full spec (every mark): the exported images draw it. */
  private full: Record<string, unknown> | null = null;
  private datasets: Dataset[] = [];
  /** The rows drawn last, and their split into the full spec's datasets. */
  private columns: Columns = { length: 0, values: {} };
  private parts = new Map<string, number[]>();
  private tracks: Tracks = new Map();
  private layers: Layers = { grouped: false, raw: false };
  private logY = false;
  /** The extent rows each panel's frame was given last (JSON, to skip unchanged ones). */
  private extents = new Map<string, string>();
  /** Panel columns, plot width and height the view was embedded with (or resized to). */
  private size = { columns: 0, width: 0, height: HEIGHTS.initial };
  private panels = 0;
  private resizing: ReturnType<typeof setTimeout> | undefined;
  private readonly observer: ResizeObserver;
  /** Called when the panels need another number of columns (a new embed). */
  onRelayout: () => void = () => undefined;

  constructor(private readonly root: HTMLElement) {
    this.legend = new Legend({
      // the legend holds the isolation and the drawings read it: Vega's frame stays as it is
      isolate: () => {
        if (this.view) this.drawSeries();
      },
      hover: (series) => this.emit(series),
    });
    this.canvasHost = h("div", { class: "rg-chart-canvas" });
    const handle = (this.handle = h("div", {
      class: "rg-chart-resize",
      title: "Drag to change the panels' height",
      attrs: { role: "separator", "aria-orientation": "horizontal", "aria-label": "panel height" },
    }));
    this.notice = h("div", { class: "rg-chart-notice", attrs: { role: "status" } });
    this.notice.hidden = true;
    this.el = h("div", { class: "rg-chart" }, [this.legend.el, this.notice, this.canvasHost, handle]);
    this.dragHeight(handle);
    // the panels follow the widget's width: as many columns as fit, each as wide as they
    // can be (a new embed only when the number of columns changes)
    this.observer = new ResizeObserver(() => {
      clearTimeout(this.resizing);
      this.resizing = setTimeout(() => this.fit(), 80);
    });
    this.observer.observe(this.el);
    const shared = {
      view: () => this.view,
      metrics: () => [...new Set(this.datasets.map((d) => String(d.where.metric)))],
      tracks: () => this.tracks,
      isolated: () => this.legend.isolation,
    };
    this.crosshair = new Crosshair(this.canvasHost, { ...shared, legend: () => this.legendData, hover: (key) => this.emit(key) });
    this.emphasis = new Emphasis(this.canvasHost, { ...shared, background: () => themeBackground(this.root), bandOpacity });
    this.series = new SeriesCanvas({ ...shared, bandOpacity, layers: () => this.layers });
  }

  /** Take new rows: their split into datasets and tracks, and each panel's extent rows
   * (only those that changed). Returns the frame datasets' new rows by name. */
  private take(columns: Columns): Map<string, { x: number; y: number }[]> {
    this.columns = columns;
    this.parts = partition(this.datasets, columns);
    const byMetric = new Map<string, number[]>();
    for (const dataset of this.datasets) {
      const metric = String(dataset.where.metric);
      const rows = this.parts.get(dataset.name) ?? [];
      const list = byMetric.get(metric);
      if (list === undefined) byMetric.set(metric, [...rows]);
      else for (const row of rows) list.push(row);
    }
    this.tracks = tracksOf(columns, [...byMetric].map(([metric, rows]) => ({ metric, rows })));
    const fields = ["line", ...(this.layers.grouped ? ["lower", "upper"] : []), ...(this.layers.raw ? ["raw"] : [])];
    const changed = new Map<string, { x: number; y: number }[]>();
    [...byMetric.keys()].forEach((metric, number) => {
      const rows = extentRows(this.tracks.get(metric) ?? [], { fields, logY: this.logY });
      const name = `${FRAME_PREFIX}${number}`;
      const text = JSON.stringify(rows);
      if (this.extents.get(name) === text) return;
      this.extents.set(name, text);
      changed.set(name, rows);
    });
    return changed;
  }

  /** Draw the series (and the hovered one) for the view's current scales. */
  private drawSeries(): void {
    this.series.draw();
    this.emphasis.redraw();
  }

  private legendData: LegendData = { title: "", entries: [] };

  /** The chart images' file name (no suffix), from the last data reply. */
  fileName = "rungroup_chart";

  /** Say why nothing is drawn (`empty`: the panels make way for it), or which metrics have
   * no finite value (`noValues`, beside the panels). */
  explain(empty: string | null, noValues: string[]): void {
    const text = empty ?? (noValues.length > 0 ? `No finite values of ${noValues.join(", ")} in the runs shown` : "");
    this.notice.textContent = text;
    this.notice.hidden = text === "";
    this.notice.classList.toggle("rg-chart-empty", empty !== null);
    this.canvasHost.hidden = empty !== null;
    this.handle.hidden = empty !== null;
    if (empty !== null) this.legend.el.hidden = true;
  }

  /** Columns and plot width for the chart element's width now. */
  private layout(): { columns: number; width: number } {
    const available = Math.max(this.el.clientWidth, MIN_PANEL) - 8;
    const fit = Math.max(1, Math.min(this.panels || 1, Math.floor(available / MIN_PANEL)));
    // as few columns as give the same number of rows: 4 panels in 2 x 2, not 3 + 1
    const columns = Math.ceil((this.panels || 1) / Math.ceil((this.panels || 1) / fit));
    return { columns, width: Math.floor(available / columns) - PANEL_CHROME };
  }

  /** Follow a change of the element's width (or of the panels' height). */
  private fit(): void {
    const view = this.view;
    if (!view || this.el.clientWidth === 0) return; // hidden (the Compare view is shown)
    const { columns, width } = this.layout();
    if (columns !== this.size.columns) {
      this.invalidate();
      this.onRelayout();
      return;
    }
    if (width === this.size.width) return;
    this.size = { ...this.size, width };
    this.resizePanels();
  }

  private resizePanels(): void {
    const view = this.view;
    if (!view) return;
    try {
      // panels of one size share these signals (Vega-Lite's concat of equal panels)
      view.signal("childWidth", this.size.width);
      view.signal("childHeight", this.size.height);
      void view
        .resize()
        .runAsync()
        .then(() => this.drawSeries());
    } catch {
      // panels of their own sizes: embed again
      this.invalidate();
      this.onRelayout();
    }
  }

  /** A handle under the panels: dragging it sets every panel's height. */
  private dragHeight(handle: HTMLElement): void {
    handle.addEventListener("pointerdown", (down) => {
      down.preventDefault();
      handle.setPointerCapture(down.pointerId);
      const start = this.size.height;
      const move = (event: PointerEvent) => {
        const height = Math.round(Math.min(HEIGHTS.max, Math.max(HEIGHTS.min, start + event.clientY - down.clientY)));
        if (height === this.size.height) return;
        this.size = { ...this.size, height };
        this.resizePanels();
      };
      const up = () => {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
    });
  }

  /** The panels' plot height (px), as the handle left it. */
  get panelHeight(): number {
    return this.size.height;
  }

  private emit(series: string | null): void {
    for (const listener of this.hoverListeners) listener(series);
  }


  get view(): Result["view"] | null {
    return this.result?.view ?? null;
  }

  onHover(listener: (series: string | null) => void): void {
    this.hoverListeners.push(listener);
  }

  /** Force the next `show` to embed again (theme change). */
  invalidate(): void {
    this.specKey = null;
  }

  async show(
    spec: Record<string, unknown> | null,
    frame: Record<string, unknown> | null,
    specKey: string,
    columns: Columns,
    legend: LegendData,
  ): Promise<void> {
    this.legendData = legend;
    if (spec !== null || this.result === null) {
      if (spec === null || frame === null) return; // nothing to draw yet
      this.result?.finalize();
      this.result = null;
      this.canvasHost.replaceChildren();
      this.full = spec;
      this.datasets = datasetsOf(spec);
      const meta = metaOf(spec);
      this.layers = { grouped: meta.grouped ?? true, raw: meta.raw ?? false };
      this.logY = meta.log_y ?? false;
      this.extents.clear();
      // Embed with the extents in place (an empty view would size itself for no data).
      const values: Record<string, unknown> = { ...((frame.datasets ?? {}) as Record<string, unknown>) };
      for (const [name, rows] of this.take(columns)) values[name] = rows;
      this.panels = Array.isArray(frame.concat) ? frame.concat.length : 1;
      this.size = { ...this.layout(), height: this.size.height };
      const result = await embed(this.canvasHost, { ...sized(frame, this.size), datasets: values } as never, {
        actions: false,
        renderer: "canvas",
        // Vega warns about the empty extents of a panel without values; warnings are for
        // spec authors, errors still show.
        logLevel: vega.Error,
        // aria: no description string per drawn item (only an SVG renderer would use them)
        config: { ...themeConfig(this.root), aria: false } as never,
        // no loader: the spec carries no URLs and nothing may be fetched
      });
      this.result = result;
      this.specKey = specKey;
      const under = this.canvasHost.querySelector<HTMLCanvasElement>("canvas.marks");
      if (under) this.series.attach(under);
      this.crosshair.attach();
      this.emphasis.attach();
      this.legend.set(legend);
      await result.view.runAsync();
      this.drawSeries();
      return;
    }
    const view = this.result.view;
    for (const [name, rows] of this.take(columns)) view.data(name, rows);
    this.legend.set(legend);
    await view.runAsync();
    this.drawSeries();
  }

  /** The rows the series canvas draws from and the sum of their `line` values: the tests
   * compare both with Python's frame (counted when the probe is read, not per repaint). */
  rows(): { rows: number; lineSum: number } {
    let rows = 0;
    let lineSum = 0;
    for (const panel of this.tracks.values()) {
      for (const track of panel) {
        rows += track.index.length;
        const lines = valuesOf(track.columns, "line");
        for (const i of track.index) {
          const value = lines[i];
          if (typeof value === "number" && Number.isFinite(value)) lineSum += value;
        }
      }
    }
    return { rows, lineSum };
  }

  /** Series listed in the crosshair's tooltip shown last. */
  tips(): number {
    return this.crosshair.listed;
  }

  /** Hover the chart at a point of the page, as a pointer move there would (tests). */
  pointAt(clientX: number, clientY: number): number {
    this.crosshair.moveTo(clientX, clientY);
    return this.crosshair.listed;
  }

  /** Resolves when the view has drawn every change made to it so far. */
  async settled(): Promise<void> {
    await this.view?.runAsync();
  }

  /** Lines and bands drawn (a line per series, or run, and panel), and line points drawn
   * where their values do not put them: the wrong way round from their neighbour, or outside
   * their panel (0 unless the scales were left from older data). */
  counts(): { lines: number; bands: number; misplaced: number } {
    const { lines, bands, misplaced, outside } = this.series.drawn;
    return { lines, bands, misplaced: misplaced + outside };
  }

  /** Each line's colour as drawn, the series drawn dashed, and the panels' boxes in page
   * coordinates: the tests check colours and hover panels through them. */
  drawnStyle(): { strokes: Record<string, string>; dashed: number; panels: { x: number; y: number; width: number; height: number }[] } {
    const { strokes, dashed } = this.series.drawn;
    const panels: { x: number; y: number; width: number; height: number }[] = [];
    const view = this.view;
    const canvas = this.canvasHost.querySelector<HTMLCanvasElement>("canvas.marks");
    if (!view || !canvas) return { strokes, dashed, panels };
    const box = canvas.getBoundingClientRect();
    const [ox, oy] = view.origin();
    for (const { x0, y0, width, height } of panelsOf(view)) panels.push({ x: box.left + ox + x0, y: box.top + oy + y0, width, height });
    return { strokes, dashed, panels };
  }

  /** Bring one series (or run) forward, or none. */
  highlight(series: string | null): void {
    this.emphasis.show(series);
  }

  /** Points of the hovered series drawn over the others (0: none is). */
  get emphasised(): number {
    return this.emphasis.drawn;
  }

  /** The colour of a series (its group's stable colour, as the legend and lines have it). */
  colorOf(series: string): string | null {
    return this.legend.colourOf(series);
  }

  /** The chart as an image URL, on an opaque background (the theme's, or white): a
   * transparent image of a dark theme's light text is unreadable on a white page. Drawn by
   * Vega from the full spec (every mark), the same size as the panels on screen. */
  async image(type: "png" | "svg", background: "theme" | "white" = "theme"): Promise<string> {
    const full = this.full;
    if (!this.view || full === null) throw new Error("no chart to export yet");
    const values: Record<string, unknown> = { ...((full.datasets ?? {}) as Record<string, unknown>) };
    for (const dataset of this.datasets) {
      values[dataset.name] = (this.parts.get(dataset.name) ?? []).map((i) => rowAt(this.columns, i));
    }
    const config = { ...themeConfig(this.root), aria: false };
    const compiled = vegaLite.compile({ ...sized(full, this.size), datasets: values } as never, { config: config as never }).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Error });
    try {
      view.signal(BAND_SIGNAL, bandOpacity());
      view.signal(ISOLATED_SIGNAL, this.legend.isolation);
      view.background(background === "white" ? "#ffffff" : themeBackground(this.root));
      await view.runAsync();
      return await view.toImageURL(type, type === "png" ? 2 : 1);
    } finally {
      view.finalize();
    }
  }

  destroy(): void {
    this.observer.disconnect();
    clearTimeout(this.resizing);
    this.result?.finalize();
    this.result = null;
  }
}
