// The Compare view (next to the charts): is a group better than the baseline group? Its
// controls write the `compare` trait; Python (src/rungroup/widget/compare.py) answers a
// `compare` request with the table's rows as Arrow, the columns' labels and the forest plot's
// spec (built with Altair), embedded as it is. Choices, labels and help come from
// `info.compare`; nothing here knows what a reduction or an estimate means.
import embed, { type Result, vega } from "vega-embed";
import { arrowRows, type Channel, errorText, type Reply } from "../channel";
import { themeConfig } from "../chart/theme";
import { download, field, h, setOptions } from "../dom";
import { formatNumber, formatP, MISSING } from "./format";
import { setTraits, type WidgetModel } from "../model";
import type { Choice } from "../types";

/** `info.compare`: what the Compare view's controls offer (rungroup.widget.compare.info). */
export interface CompareInfo {
  fields: string[];
  panels: Choice[];
  reductions: Choice[];
  estimates: Choice[];
  defaults: CompareSettings;
  sortable: string[];
}

/** The `compare` trait. */
export interface CompareSettings {
  metric: string;
  reduce: string;
  k: number;
  at: number | null;
  baseline: string;
  higher_is_better: boolean | null;
  estimate: string;
  sort: string[];
}

interface Column {
  name: string;
  label: string;
  help: string;
  low?: string;
  high?: string;
}

interface CompareReply extends Reply {
  metric: string;
  baseline: string;
  higher_is_better: boolean;
  direction_guessed: boolean;
  columns: Column[];
  groups: string[];
  spec: Record<string, unknown>;
  data_name: string;
  rows: number;
  marks: { interval: string; point: string; baseline: string };
}

type Row = Record<string, unknown>;

/** What the e2e tests read (`element.rungroupCompare`); nothing in the widget reads it. */
export interface CompareProbe {
  renders: number;
  errors: number;
  /** The groups' labels in the table's order, and the baseline's. */
  order: string[];
  baseline: string;
  /** The rows as Python sent them (numbers unrounded). */
  rows: Row[];
  /** Items drawn by the forest plot's marks: intervals, points, baseline rules. */
  intervals: number;
  points: number;
  baselineRules: number;
  /** The baseline rule's x in the plot, and the baseline point's (pixels). */
  baselineX: number | null;
  baselinePointX: number | null;
  /** The groups of the plot's points from top to bottom. */
  pointOrder: string[];
}

const EXPORTS: [string, string][] = [
  ["compare_csv", "Comparison as CSV"],
  ["compare_parquet", "Comparison as Parquet (with recipe)"],
  ["compare_recipe", "Recipe (JSON)"],
];

interface SceneNode {
  marktype?: string;
  name?: string;
  items?: SceneNode[];
  x?: number;
  y?: number;
  datum?: Row;
}

export class ComparePanel {
  readonly el: HTMLElement;
  readonly probe: CompareProbe = {
    renders: 0,
    errors: 0,
    order: [],
    baseline: "",
    rows: [],
    intervals: 0,
    points: 0,
    baselineRules: 0,
    baselineX: null,
    baselinePointX: null,
    pointOrder: [],
  };
  private readonly metric = h("select", { class: "rg-select rg-compare-metric", attrs: { "aria-label": "Metric to compare" } });
  private readonly reduce = h("select", { class: "rg-select rg-compare-reduce", attrs: { "aria-label": "Score per run" } });
  private readonly k = h("input", { class: "rg-input rg-number rg-compare-k", attrs: { type: "number", min: "1", step: "1" } });
  private readonly at = h("input", {
    class: "rg-input rg-number rg-compare-at",
    attrs: { type: "number", placeholder: "all", "aria-label": "Score each curve up to this x" },
  });
  private readonly estimate = h("select", { class: "rg-select rg-compare-estimate", attrs: { "aria-label": "Estimate" } });
  private readonly baseline = h("select", { class: "rg-select rg-compare-baseline", attrs: { "aria-label": "Baseline group" } });
  private readonly direction = h("span", { class: "rg-compare-direction" });
  private readonly flip = h("button", { class: "rg-button rg-compare-flip", text: "Flip", title: "Flip the direction: which way is better" });
  private readonly kField: HTMLElement;
  private readonly table = h("table", { class: "rg-compare-table" });
  private readonly plot = h("div", { class: "rg-compare-plot" });
  private readonly note = h("div", { class: "rg-compare-note" });
  private result: Result | null = null;
  private ticket = 0;
  private pending = false;
  private lastReply: CompareReply | null = null;
  private colours = new Map<string, string>();

  constructor(
    private readonly model: WidgetModel,
    private readonly channel: Channel,
    private readonly root: HTMLElement,
    fail: (error: unknown) => void,
    private readonly hover: (series: string | null) => void,
  ) {
    const set = (changes: Partial<CompareSettings>) => this.set(changes);
    // another metric: its direction is guessed from its own name again
    this.metric.addEventListener("change", () => set({ metric: this.metric.value, higher_is_better: null }));
    this.reduce.addEventListener("change", () => set({ reduce: this.reduce.value }));
    this.k.addEventListener("change", () => {
      const k = Number(this.k.value);
      if (Number.isInteger(k) && k >= 1) set({ k });
    });
    this.at.addEventListener("change", () => set({ at: this.at.value === "" ? null : Number(this.at.value) }));
    // Enter applies a typed number (a change event comes when the input loses focus)
    for (const input of [this.k, this.at]) {
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") input.blur();
      });
    }
    this.estimate.addEventListener("change", () => set({ estimate: this.estimate.value }));
    this.baseline.addEventListener("change", () => set({ baseline: this.baseline.value }));
    this.flip.addEventListener("click", () => {
      const shown = this.lastReply?.higher_is_better;
      if (shown !== undefined) set({ higher_is_better: !shown });
    });
    this.kField = field("k", this.k, "rg-compare-k-field");
    const exportButton = h("button", { class: "rg-button rg-compare-export-button", text: "Export ▾" });
    const exportMenu = h(
      "div",
      { class: "rg-popover rg-export-menu rg-compare-export-menu", attrs: { hidden: "", role: "menu" } },
      EXPORTS.map(([what, label]) =>
        h("button", {
          class: "rg-menu-item",
          text: label,
          attrs: { role: "menuitem", "data-export": what },
          on: {
            click: () => {
              exportMenu.setAttribute("hidden", "");
              this.save(what).catch(fail);
            },
          },
        }),
      ),
    );
    exportButton.addEventListener("click", () => exportMenu.toggleAttribute("hidden"));
    const controls = h("div", { class: "rg-compare-controls" }, [
      field("metric", this.metric),
      field("score", this.reduce),
      this.kField,
      field("up to x", this.at),
      field("estimate", this.estimate),
      field("baseline", this.baseline),
      this.direction,
      this.flip,
      h("span", { class: "rg-spring" }),
      h("span", { class: "rg-menu-anchor" }, [exportButton, exportMenu]),
    ]);
    this.el = h("div", { class: "rg-compare", attrs: { hidden: "" } }, [
      controls,
      this.note,
      h("div", { class: "rg-compare-body" }, [h("div", { class: "rg-compare-table-wrap" }, [this.table]), this.plot]),
    ]);
    Object.defineProperty(root, "rungroupCompare", { value: this.probe, enumerable: false });
  }

  private info(): CompareInfo {
    return (this.model.get("info") as unknown as { compare: CompareInfo }).compare;
  }

  private settings(): CompareSettings {
    const value = (this.model.get("compare") ?? {}) as Partial<CompareSettings>;
    return { ...this.info().defaults, ...value };
  }

  private set(changes: Partial<CompareSettings>): void {
    setTraits(this.model, { compare: { ...this.settings(), ...changes } });
  }

  get visible(): boolean {
    return this.model.get("panel") === "compare";
  }

  /** The controls from the traits (and the last reply: the groups, the direction). */
  updateControls(): void {
    this.el.hidden = !this.visible;
    const info = this.info();
    const settings = this.settings();
    const metrics = this.model.get("info").metrics;
    const metric = this.lastReply?.metric ?? settings.metric;
    setOptions(
      this.metric,
      metrics.map((m) => ({ value: m, label: m })),
      settings.metric || metric,
    );
    setOptions(
      this.reduce,
      info.reductions.map((c) => ({ value: c.value, label: c.label })),
      settings.reduce,
    );
    this.reduce.title = info.reductions.find((c) => c.value === settings.reduce)?.help ?? "";
    setOptions(
      this.estimate,
      info.estimates.map((c) => ({ value: c.value, label: c.label })),
      settings.estimate,
    );
    this.estimate.title = info.estimates.find((c) => c.value === settings.estimate)?.help ?? "";
    this.kField.hidden = settings.reduce !== "mean_last";
    if (document.activeElement !== this.k) this.k.value = String(settings.k);
    if (document.activeElement !== this.at) this.at.value = settings.at === null ? "" : String(settings.at);
    const groups = this.lastReply?.groups ?? [];
    setOptions(
      this.baseline,
      groups.map((g) => ({ value: g, label: g })),
      this.lastReply?.baseline ?? settings.baseline,
    );
    const reply = this.lastReply;
    if (reply) {
      const better = reply.higher_is_better ? "higher is better" : "lower is better";
      this.direction.textContent = reply.direction_guessed ? `${better} (guessed from the name)` : better;
    }
  }

  /** Refresh once after a burst of trait changes (they arrive one event each). */
  schedule(): void {
    if (this.pending || !this.visible) return;
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      void this.refresh();
    }, 0);
  }

  /** Ask Python for the comparison and show it (the latest request wins). */
  async refresh(): Promise<void> {
    if (!this.visible) return;
    const ticket = ++this.ticket;
    this.el.classList.add("rg-busy");
    try {
      const [reply, buffers] = (await this.channel.request("compare")) as [CompareReply, DataView[]];
      if (ticket !== this.ticket) return;
      const rows = arrowRows<Row>(buffers[0]).map((row) => ({ ...row }));
      this.lastReply = reply;
      this.note.textContent = "";
      await this.draw(reply, rows);
      if (ticket !== this.ticket) return;
      this.showTable(reply, rows);
      this.updateControls();
      Object.assign(this.probe, this.countMarks(reply), {
        order: rows.map((r) => String(r.series)),
        baseline: reply.baseline,
        rows,
      });
      this.probe.renders++;
    } catch (error) {
      if (ticket !== this.ticket) return;
      this.probe.errors++;
      this.note.textContent = errorText(error);
    } finally {
      if (ticket === this.ticket) this.el.classList.remove("rg-busy");
      this.root.dispatchEvent(new Event("rungroup-compare"));
    }
  }

  private async draw(reply: CompareReply, rows: Row[]): Promise<void> {
    this.result?.finalize();
    this.result = null;
    this.plot.replaceChildren();
    const spec = { ...reply.spec, datasets: { [reply.data_name]: rows } };
    this.result = await embed(this.plot, spec as never, {
      actions: false,
      renderer: "svg",
      logLevel: vega.Error,
      config: themeConfig(this.root) as never,
    });
    // the swatches take the plot's colours (the same scale as the charts': one domain order)
    type Scale = ((value: string) => string) & { domain(): unknown[] };
    const scale = this.result.view.scale("color") as Scale | undefined;
    this.colours = new Map(reply.groups.map((g) => [g, scale ? scale(g) : ""]));
  }

  private showTable(reply: CompareReply, rows: Row[]): void {
    const [sortColumn, sortDirection] = this.settings().sort;
    const head = h(
      "tr",
      {},
      reply.columns.map((column) => {
        const arrow = column.name === sortColumn ? (sortDirection === "desc" ? " ▼" : " ▲") : "";
        return h("th", {
          class: `rg-compare-th${column.name === "series" ? "" : " rg-num"}`,
          text: column.label + arrow,
          title: `${column.help} (click to sort)`,
          attrs: {
            "data-column": column.name,
            scope: "col",
            "aria-sort": arrow ? (sortDirection === "desc" ? "descending" : "ascending") : "none",
          },
          on: {
            click: () => {
              const next = column.name === sortColumn && sortDirection !== "desc" ? "desc" : "asc";
              this.set({ sort: [column.name, next] });
            },
          },
        });
      }),
    );
    const body = rows.map((row) => {
      const series = String(row.series);
      const baseline = row.is_baseline === true;
      const cells = reply.columns.map((column) => {
        if (column.name === "series") {
          const swatch = h("span", { class: "rg-swatch" });
          swatch.style.background = this.colours.get(series) ?? "";
          return h("td", { class: "rg-compare-group" }, [
            swatch,
            h("span", { class: "rg-group-name", text: series, title: series }),
            baseline ? h("span", { class: "rg-compare-badge", text: "baseline" }) : null,
          ]);
        }
        const value = row[column.name];
        const text = column.name === "n" ? String(value ?? MISSING) : column.name === "p_holm" ? formatP(value) : formatNumber(value);
        const interval =
          column.low && column.high && typeof row[column.low] === "number"
            ? ` [${formatNumber(row[column.low])}, ${formatNumber(row[column.high])}]`
            : "";
        return h("td", { class: "rg-num", attrs: { "data-column": column.name } }, [
          text,
          interval ? h("span", { class: "rg-compare-interval", text: interval }) : null,
        ]);
      });
      return h(
        "tr",
        {
          class: baseline ? "rg-compare-row rg-compare-base-row" : "rg-compare-row",
          attrs: { "data-series": series },
          on: { mouseenter: () => this.hover(series), mouseleave: () => this.hover(null) },
        },
        cells,
      );
    });
    this.table.replaceChildren(h("thead", {}, [head]), h("tbody", {}, body));
  }

  /** What the forest plot drew, read from its scenegraph (for the probe). */
  private countMarks(reply: CompareReply): Partial<CompareProbe> {
    const counts = {
      intervals: 0,
      points: 0,
      baselineRules: 0,
      baselineX: null as number | null,
      baselinePointX: null as number | null,
      pointOrder: [] as string[],
    };
    const view = this.result?.view;
    if (!view) return counts;
    const visit = (node: SceneNode) => {
      if (node.marktype && node.name && node.items) {
        const drawn = node.items.filter((item) => item.datum !== undefined);
        if (node.name === `${reply.marks.interval}_marks`) counts.intervals += drawn.length;
        if (node.name === `${reply.marks.point}_marks`) {
          counts.points += drawn.length;
          const base = drawn.find((item) => item.datum?.is_baseline === true);
          if (base) counts.baselinePointX = base.x ?? null;
          const byY = [...drawn].sort((a, b) => (a.y ?? 0) - (b.y ?? 0));
          counts.pointOrder = byY.map((item) => String(item.datum?.series));
        }
        if (node.name === `${reply.marks.baseline}_marks`) {
          counts.baselineRules += drawn.length;
          if (drawn[0]) counts.baselineX = drawn[0].x ?? null;
        }
      }
      for (const child of node.items ?? []) visit(child);
    };
    visit((view.scenegraph() as unknown as { root: SceneNode }).root);
    return counts;
  }

  /** Download the comparison (or its recipe) through the widget's `export` request. */
  private async save(what: string): Promise<void> {
    const [reply, buffers] = await this.channel.request("export", { what });
    const buffer = buffers[0];
    const bytes = new Uint8Array(buffer.byteLength);
    bytes.set(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
    download(bytes, String(reply.filename), String(reply.mime));
  }

  /** Re-embed with the theme's colours (JupyterLab switched between light and dark). */
  destroy(): void {
    this.result?.finalize();
    this.result = null;
  }
}

/** The Charts | Compare switch (a toolbar control writing the `panel` trait). */
export function panelSwitch(model: WidgetModel, panels: () => Choice[]): { el: HTMLElement; update(): void } {
  const el = h("span", { class: "rg-switch", attrs: { role: "group", "aria-label": "View" } });
  function update(): void {
    const current = model.get("panel");
    el.replaceChildren(
      ...panels().map((choice) => {
        const on = choice.value === current;
        return h("button", {
          class: `rg-button rg-switch-${choice.value}${on ? " rg-on" : ""}`,
          text: choice.label,
          title: choice.help,
          attrs: { "aria-pressed": String(on) },
          on: { click: () => setTraits(model, { panel: choice.value }) },
        });
      }),
    );
  }
  return { el, update };
}
