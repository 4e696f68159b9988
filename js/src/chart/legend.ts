// The chart's legend, in HTML (src/rungroup/widget/legend.py says what it holds): a title
// naming the grouped keys, one entry per series as key=value with its run count and its
// line's colour at full opacity. Clicking an entry isolates its series (shift-click adds or
// removes one), clicking the only isolated entry again or "Show all" restores every series.
import { h } from "../dom";

export interface LegendEntry {
  series: string;
  label: string;
  colour: string;
  n: number;
  total: number;
  /** A group page's run (not isolatable: isolation is by series). */
  run?: boolean;
}

export interface LegendData {
  title: string;
  entries: LegendEntry[];
  /** What the line and the band are (tooltips name them so). */
  line?: string;
  band?: string | null;
  /** The x axis's title, and whether x is wall time. */
  x?: string;
  temporal?: boolean;
}

export interface LegendHandlers {
  isolate(series: string[] | null): void;
  hover(series: string | null): void;
}

/** "n=3", or "9 of 10 runs" where runs of the group are hidden. */
export function countText(entry: Pick<LegendEntry, "n" | "total">): string {
  return entry.n < entry.total ? `n=${entry.n} of ${entry.total}` : `n=${entry.n}`;
}

export class Legend {
  readonly el: HTMLDivElement;
  private data: LegendData = { title: "", entries: [] };
  private isolated: string[] | null = null;
  private readonly colours = new Map<string, string>();

  constructor(private readonly handlers: LegendHandlers) {
    this.el = h("div", { class: "rg-legend", attrs: { role: "group", "aria-label": "legend" } });
  }

  colourOf(series: string): string | null {
    return this.colours.get(series) ?? null;
  }

  get entries(): LegendEntry[] {
    return this.data.entries;
  }

  get isolation(): string[] | null {
    return this.isolated;
  }

  set(data: LegendData): void {
    this.data = data;
    this.colours.clear();
    for (const entry of data.entries) this.colours.set(entry.series, entry.colour);
    // an isolation outlives a regrouping only for the series that are still there
    if (this.isolated !== null) {
      const kept = this.isolated.filter((s) => this.colours.has(s));
      this.isolate(kept.length > 0 ? kept : null);
    }
    this.render();
  }

  isolate(series: string[] | null): void {
    this.isolated = series;
    this.handlers.isolate(series);
    this.render();
  }

  private click(entry: LegendEntry, additive: boolean): void {
    const current = this.isolated ?? [];
    if (additive) {
      const next = current.includes(entry.series) ? current.filter((s) => s !== entry.series) : [...current, entry.series];
      this.isolate(next.length > 0 ? next : null);
    } else if (current.length === 1 && current[0] === entry.series) {
      this.isolate(null);
    } else {
      this.isolate([entry.series]);
    }
  }

  private render(): void {
    const { title, entries } = this.data;
    const isolated = this.isolated;
    // a group page's runs are its thin lines in shades of the group's colour: one note for
    // all of them (the tooltip and the table name each)
    const runs = entries.filter((entry) => entry.run);
    const items = entries.filter((entry) => !entry.run).map((entry) => {
      const out = isolated !== null && !entry.run && !isolated.includes(entry.series);
      const swatch = h("span", { class: entry.run ? "rg-legend-swatch rg-legend-run" : "rg-legend-swatch" });
      swatch.style.background = entry.colour;
      const item = h(
        "button",
        {
          class: `rg-legend-item${out ? " rg-legend-out" : ""}`,
          title: entry.run ? entry.label : `${entry.label} (${countText(entry)}): click to show it alone, shift-click to add`,
          attrs: { type: "button", "data-series": entry.series, "aria-pressed": String(isolated?.includes(entry.series) ?? false) },
          on: {
            click: (event) => {
              if (!entry.run) this.click(entry, event.shiftKey || event.metaKey || event.ctrlKey);
            },
            mouseenter: () => this.handlers.hover(entry.series),
            mouseleave: () => this.handlers.hover(null),
          },
        },
        [swatch, h("span", { class: "rg-legend-label", text: entry.label }), h("span", { class: "rg-legend-n", text: countText(entry) })],
      );
      return item;
    });
    const restore =
      isolated !== null
        ? h("button", { class: "rg-legend-all", text: "Show all", attrs: { type: "button" }, on: { click: () => this.isolate(null) } })
        : null;
    const note = runs.length > 0 ? h("span", { class: "rg-legend-note", text: `+ ${runs.length} run${runs.length === 1 ? "" : "s"}, thin lines` }) : null;
    this.el.replaceChildren(h("span", { class: "rg-legend-title", text: title }), ...items, ...(note ? [note] : []), ...(restore ? [restore] : []));
    this.el.hidden = entries.length === 0;
  }
}
