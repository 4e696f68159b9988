// The charts: the spec comes from Python (rungroup.chart.widget_spec), embedded as it is; its
// data are named sources fed from Arrow rows. A new spec is embedded only when its shape
// changes; otherwise the existing view gets new data.
import embed, { type Result, vega } from "vega-embed";
import { h } from "../dom";
import { Crosshair, panelsOf, type Tracks, tracksOf } from "./crosshair";
import { Emphasis } from "./emphasis";
import { Legend, type LegendData } from "./legend";
import { type Columns, type Dataset, datasetsOf, partition, type Row, rowAt } from "./partition";
import { bandOpacity, themeBackground, themeConfig } from "./theme";

/** The narrowest a panel may be (its plot area, axes and titles, px); as many columns as fit. */
export const MIN_PANEL = 320;
/** What a panel's axes, titles and the gap to the next take beside its plot area (px). */
const PANEL_CHROME = 78;
const HEIGHTS = { min: 120, max: 640, initial: 220 };
const ISOLATED_SIGNAL = "rg_isolated";
const BAND_SIGNAL = "rg_band";

/** Vega's ChangeSet has these too (vega-dataflow), though its typings leave them out. */
type ChangeSet = ReturnType<typeof vega.changeset> & {
  reflow(): ChangeSet;
  clean(value: boolean): ChangeSet;
};

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
  private result: Result | null = null;
  specKey: string | null = null;
  private hoverListeners: ((series: string | null) => void)[] = [];
  private datasets: Dataset[] = [];
  /** The row objects each dataset of the view holds (Vega's tuples: updated in place). */
  private held = new Map<string, Row[]>();
  private tracks: Tracks | null = null;
  /** Panel columns, plot width and height the view was embedded with (or resized to). */
  private size = { columns: 0, width: 0, height: HEIGHTS.initial };
  private panels = 0;
  private resizing: ReturnType<typeof setTimeout> | undefined;
  private readonly observer: ResizeObserver;
  /** Called when the panels need another number of columns (a new embed). */
  onRelayout: () => void = () => undefined;

  constructor(private readonly root: HTMLElement) {
    this.legend = new Legend({
      isolate: (series) => this.setSignal(ISOLATED_SIGNAL, series),
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
      tracks: () => this.currentTracks(),
      isolated: () => this.legend.isolation,
    };
    this.crosshair = new Crosshair(this.canvasHost, { ...shared, legend: () => this.legendData, hover: (key) => this.emit(key) });
    this.emphasis = new Emphasis(this.canvasHost, { ...shared, background: () => themeBackground(this.root), bandOpacity });
  }

  /** The drawn rows by panel and series (made when first needed after a data change). */
  private currentTracks(): Tracks {
    if (this.tracks === null) {
      this.tracks = tracksOf(this.datasets.map((d) => ({ metric: String(d.where.metric), rows: this.held.get(d.name) ?? [] })));
    }
    return this.tracks;
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
        .then(() => this.emphasis.redraw());
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

  private setSignal(name: string, value: unknown): void {
    const view = this.view;
    if (!view) return;
    try {
      view.signal(name, value);
      void view.runAsync().then(() => this.emphasis.redraw());
    } catch {
      // a spec without this parameter
    }
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

  async show(spec: Record<string, unknown> | null, specKey: string, columns: Columns, legend: LegendData): Promise<void> {
    this.legendData = legend;
    this.tracks = null;
    if (spec !== null || this.result === null) {
      if (spec === null) return; // nothing to draw yet
      this.result?.finalize();
      this.result = null;
      this.canvasHost.replaceChildren();
      // Embed with the data in place (an empty view would size itself for no data).
      const datasets = datasetsOf(spec);
      const parts = partition(datasets, columns);
      const values: Record<string, unknown> = { ...((spec.datasets ?? {}) as Record<string, unknown>) };
      for (const dataset of datasets) {
        values[dataset.name] = (parts.get(dataset.name) ?? []).map((i) => rowAt(columns, i));
      }
      this.panels = Array.isArray(spec.concat) ? spec.concat.length : 1;
      this.size = { ...this.layout(), height: this.size.height };
      const result = await embed(this.canvasHost, { ...sized(spec, this.size), datasets: values } as never, {
        actions: false,
        // canvas: a panel can hold thousands of (invisible) hover points, which as SVG
        // elements cost hundreds of milliseconds per repaint
        renderer: "canvas",
        // Vega warns about the extent of the (deliberately) empty tooltip layer until a
        // series is hovered; warnings are for spec authors, errors still show.
        logLevel: vega.Error,
        // aria: no description string per drawn point (formatted on every repaint, and only
        // an SVG renderer would use them)
        config: { ...themeConfig(this.root), aria: false } as never,
        // no loader: the spec carries no URLs and nothing may be fetched
      });
      this.result = result;
      this.specKey = specKey;
      this.datasets = datasets;
      const view = result.view;
      // Vega's tuples, kept so that they can be updated in place (a copy of the list: the
      // array itself is Vega's own)
      this.held = new Map(datasets.map((d) => [d.name, [...(view.data(d.name) as Row[])]]));
      this.crosshair.attach();
      this.emphasis.attach();
      this.legend.set(legend);
      view.signal(BAND_SIGNAL, bandOpacity());
      await view.runAsync();
      this.emphasis.redraw();
      return;
    }
    const view = this.result.view;
    const parts = partition(this.datasets, columns);
    for (const [name, next] of parts) this.update(name, columns, next);
    this.legend.set(legend);
    await view.runAsync();
    this.emphasis.redraw();
  }

  /** Give dataset `name` the rows `next` (indexes into `columns`), in place: the tuples Vega
   * holds take the new rows' values (a modification), and only a difference in length inserts
   * or removes tuples. Replacing them all would make Vega drop and rebuild every item of every
   * line and band (their scenegraph items, encodings, bounds, and the facets' bookkeeping). */
  private update(name: string, columns: Columns, next: number[]): void {
    const view = this.view;
    const held = this.held.get(name);
    if (!view) return;
    if (held === undefined) {
      const rows = next.map((i) => rowAt(columns, i));
      view.data(name, rows);
      this.held.set(name, [...rows]);
      return;
    }
    const kept = Math.min(held.length, next.length);
    // fields the tuples have but the new rows lack become undefined, as a new row's would be
    const fields = [...new Set([...Object.keys(held[0] ?? {}), ...Object.keys(columns.values)])];
    const missing: ArrayLike<unknown> = [];
    const sources = fields.map((field) => columns.values[field] ?? missing);
    const width = fields.length;
    // only fields whose values changed are passed on as modified: Vega's operators that read
    // only the others (x extent, facets by colour order when the groups are as many) skip
    const changed = new Array<boolean>(width).fill(false);
    // field by field: one property name per loop keeps the tuples' property access
    // monomorphic (row by row, every access sees another name: several times slower)
    for (let f = 0; f < width; f++) {
      const field = fields[f];
      const source = sources[f];
      let differs = false;
      for (let i = 0; i < kept; i++) {
        const tuple = held[i];
        const value = source[next[i]];
        if (tuple[field] !== value) {
          tuple[field] = value;
          differs = true;
        }
      }
      changed[f] = differs;
    }
    const added = next.slice(kept).map((i) => rowAt(columns, i));
    const changes = vega.changeset() as ChangeSet;
    if (added.length > 0) changes.insert(added);
    // Removing rows would also have Vega drop the facets (per series sub-dataflows) left
    // empty, and a later grouping with more series build them again: they are kept.
    if (held.length > kept) changes.remove(held.slice(kept)).clean(false);
    const modified = fields.filter((_, f) => changed[f]);
    if (kept > 0 && modified.length > 0) {
      // The values are already in place. `reflow` passes every kept tuple on as modified, and
      // one modification per field (of the first tuple, to the value it has) marks the field
      // as changed. A modification by predicate would visit every tuple once per field.
      changes.reflow();
      const first = held[0];
      for (const field of modified) changes.modify(first, field, first[field]);
    }
    view.change(name, changes);
    held.length = kept;
    for (const row of added) held.push(row);
  }

  /** Rows in the Vega view's datasets (what the chart was fed last; tooltip copies aside)
   * and the sum of their `line` values: the tests compare both with Python's frame. */
  rows(): { rows: number; lineSum: number } {
    let rows = 0;
    let lineSum = 0;
    for (const dataset of this.datasets) {
      let tuples: Row[] = [];
      try {
        tuples = (this.view?.data(dataset.name) as Row[] | undefined) ?? [];
      } catch {
        // not in this view
      }
      rows += tuples.length;
      for (const tuple of tuples) if (typeof tuple.line === "number" && Number.isFinite(tuple.line)) lineSum += tuple.line;
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

  /** Lines and bands drawn (one line mark per series and panel), read from the scenegraph,
   * and `misplaced`: line points drawn above or below their neighbour the wrong way round
   * for the values they show (0 unless a data swap left items positioned for old values). */
  counts(): { lines: number; bands: number; misplaced: number } {
    const counts = { lines: 0, bands: 0, misplaced: 0 };
    const view = this.view;
    if (!view) return counts;
    type Node = { marktype?: string; name?: string; items?: Node[]; y?: number; datum?: Row };
    const visit = (mark: Node): void => {
      const items = mark.items ?? [];
      // the unsmoothed lines and the dashed stretches are drawn beside a series' line, not
      // as lines of their own
      const beside = /^rg_(raw|thin)_/.test(mark.name ?? "");
      if (mark.marktype === "line" && items.length > 0 && !beside) {
        counts.lines++;
        for (let i = 1; i < items.length; i++) {
          const [a, b] = [items[i - 1], items[i]];
          // the value the layer plots: its calculated y (full or dashed stretches), else line
          const plotted = (d: Row | undefined) => (d && "rg_y" in d ? d.rg_y : d?.line);
          const [va, vb] = [plotted(a.datum), plotted(b.datum)];
          if (typeof va !== "number" || typeof vb !== "number" || !Number.isFinite(va) || !Number.isFinite(vb)) continue;
          // screen y grows downwards: a larger value is drawn higher up
          if (Math.sign(vb - va) !== Math.sign((a.y ?? 0) - (b.y ?? 0))) counts.misplaced++;
        }
      } else if (mark.marktype === "area" && items.length > 0) counts.bands++;
      else if (mark.marktype === "group") {
        for (const item of items) for (const child of item.items ?? []) visit(child);
      }
    };
    visit((view.scenegraph() as unknown as { root: Node }).root);
    return counts;
  }

  /** Each series' line colour as drawn (the scenegraph's strokes), and the panels' boxes in
   * page coordinates: the tests check colours and hover panels through them. */
  drawnStyle(): { strokes: Record<string, string>; dashed: number; panels: { x: number; y: number; width: number; height: number }[] } {
    const strokes: Record<string, string> = {};
    let dashed = 0;
    const panels: { x: number; y: number; width: number; height: number }[] = [];
    const view = this.view;
    const canvas = this.canvasHost.querySelector<HTMLCanvasElement>("canvas:not(.rg-emphasis)");
    if (!view || !canvas) return { strokes, dashed, panels };
    type Node = {
      marktype?: string;
      name?: string;
      items?: Node[];
      stroke?: string;
      strokeDash?: number[];
      defined?: boolean;
      datum?: Row;
      x?: number;
      y?: number;
      width?: number;
      height?: number;
    };
    const visit = (mark: Node): void => {
      const items = mark.items ?? [];
      if (mark.marktype === "line" && items[0]?.strokeDash && items.filter((i) => i.defined !== false).length >= 2) dashed++;
      for (const item of items) {
        if (mark.marktype === "line" && item.datum && typeof item.stroke === "string") {
          const key = typeof item.datum.run === "string" ? item.datum.run : String(item.datum.series);
          strokes[key] ??= item.stroke;
          break;
        }
        for (const child of item.items ?? []) visit(child);
      }
    };
    const root = (view.scenegraph() as unknown as { root: Node }).root;
    visit(root);
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
   * transparent image of a dark theme's light text is unreadable on a white page. */
  async image(type: "png" | "svg", background: "theme" | "white" = "theme"): Promise<string> {
    const view = this.view;
    if (!view) throw new Error("no chart to export yet");
    const before = view.background();
    view.background(background === "white" ? "#ffffff" : themeBackground(this.root));
    try {
      return await view.toImageURL(type, type === "png" ? 2 : 1);
    } finally {
      view.background(before);
    }
  }

  destroy(): void {
    this.observer.disconnect();
    clearTimeout(this.resizing);
    this.result?.finalize();
    this.result = null;
  }
}
