// The charts: the spec comes from Python (rungroup.chart()); its data is a named source
// ("rungroup") fed from Arrow rows. A new spec is embedded only when its shape changes;
// otherwise the existing view gets new data.
import embed, { type Result, vega } from "vega-embed";

export const DATA_NAME = "rungroup";
export const HOVER_SIGNAL = "rg_hover";

type Row = Record<string, unknown>;

function cssVar(root: HTMLElement, name: string, fallback: string): string {
  const value = getComputedStyle(root).getPropertyValue(name).trim();
  return value || fallback;
}

/** Vega config from JupyterLab's theme variables (with fallbacks outside JupyterLab). */
export function themeConfig(root: HTMLElement): Record<string, unknown> {
  const fg = cssVar(root, "--jp-ui-font-color1", "#1f1f1f");
  const fg2 = cssVar(root, "--jp-ui-font-color2", "#5f5f5f");
  const grid = cssVar(root, "--jp-border-color2", "#e0e0e0");
  const font = cssVar(root, "--jp-ui-font-family", "system-ui, sans-serif");
  const axis = { labelColor: fg2, titleColor: fg, gridColor: grid, domainColor: grid, tickColor: grid };
  return {
    background: "transparent",
    font,
    axis,
    legend: { labelColor: fg2, titleColor: fg },
    title: { color: fg },
    header: { labelColor: fg, titleColor: fg },
    view: { stroke: grid },
  };
}

export class ChartPanel {
  readonly el: HTMLDivElement;
  private result: Result | null = null;
  specKey: string | null = null;
  private hoverListeners: ((series: string | null) => void)[] = [];

  constructor(private readonly root: HTMLElement) {
    this.el = document.createElement("div");
    this.el.className = "rg-chart";
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

  async show(spec: Record<string, unknown> | null, specKey: string, rows: Row[]): Promise<void> {
    if (spec !== null || this.result === null) {
      if (spec === null) return; // nothing to draw yet
      this.result?.finalize();
      this.result = null;
      this.el.replaceChildren();
      // Embed with the data in place (an empty view would size itself for no data).
      const datasets = (spec.datasets ?? {}) as Record<string, unknown>;
      const withData = { ...spec, datasets: { ...datasets, [DATA_NAME]: rows } };
      const result = await embed(this.el, withData as never, {
        actions: false,
        // canvas: a panel can hold thousands of (invisible) hover points, which as SVG
        // elements cost hundreds of milliseconds per repaint
        renderer: "canvas",
        // Vega warns about the extent of the (deliberately) empty tooltip layer until a
        // series is hovered; warnings are for spec authors, errors still show.
        logLevel: vega.Error,
        config: themeConfig(this.root) as never,
        // no loader: the spec carries no URLs and nothing may be fetched
      });
      this.result = result;
      this.specKey = specKey;
      const view = result.view;
      // Leaving a line for the tooltip point on it is a mouseout then a mouseover: wait a
      // moment before letting go of the hovered series, so nothing flickers.
      let release: ReturnType<typeof setTimeout> | undefined;
      let current: string | null = null;
      const emit = (series: string | null) => {
        if (release !== undefined) clearTimeout(release);
        release = undefined;
        if (series === current) return;
        current = series;
        for (const listener of this.hoverListeners) listener(series);
      };
      view.addEventListener("mouseover", (_event, item) => {
        const datum = (item as { datum?: Row } | null | undefined)?.datum;
        // a run's thin line on a group page names the run, anything else its series
        const name = datum ? (typeof datum.run === "string" ? datum.run : datum.series) : null;
        if (typeof name === "string") emit(name);
      });
      view.addEventListener("mouseout", () => {
        if (release !== undefined) clearTimeout(release);
        release = setTimeout(() => emit(null), 250);
      });
      return;
    }
    const view = this.result.view;
    view.data(DATA_NAME, rows);
    await view.runAsync();
  }

  /** Rows in the Vega view's dataset (what the chart was fed last). */
  rows(): number {
    try {
      return (this.view?.data(DATA_NAME) as unknown[] | undefined)?.length ?? 0;
    } catch {
      return 0;
    }
  }

  /** Lines and bands drawn (one line mark per series and panel), read from the scenegraph. */
  counts(): { lines: number; bands: number } {
    const counts = { lines: 0, bands: 0 };
    const view = this.view;
    if (!view) return counts;
    type Node = { marktype?: string; items?: Node[] };
    const visit = (mark: Node): void => {
      const items = mark.items ?? [];
      if (mark.marktype === "line" && items.length > 0) counts.lines++;
      else if (mark.marktype === "area" && items.length > 0) counts.bands++;
      else if (mark.marktype === "group") {
        for (const item of items) for (const child of item.items ?? []) visit(child);
      }
    };
    visit((view.scenegraph() as unknown as { root: Node }).root);
    return counts;
  }

  /** Emphasise one series (or none) through the signal the Python side added to the spec. */
  highlight(series: string | null): void {
    const view = this.view;
    if (!view) return;
    try {
      view.signal(HOVER_SIGNAL, series);
      void view.runAsync();
      this.root.dataset.hover = series ?? "";
    } catch {
      // a spec without the hover signal: nothing to emphasise
    }
  }

  /** The colour the chart gives a series (so table swatches match the lines). */
  colorOf(series: string): string | null {
    const view = this.view;
    if (!view) return null;
    try {
      type Scale = ((value: string) => string) & { domain(): unknown[] };
      const scale = view.scale("color") as Scale | undefined;
      // only known series: an ordinal scale would add an unknown one to its domain
      return scale && scale.domain().includes(series) ? scale(series) : null;
    } catch {
      return null;
    }
  }

  async image(type: "png" | "svg"): Promise<string> {
    const view = this.view;
    if (!view) throw new Error("no chart to export yet");
    return view.toImageURL(type, type === "png" ? 2 : 1);
  }

  destroy(): void {
    this.result?.finalize();
    this.result = null;
  }
}
