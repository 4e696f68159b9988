// The runs table: group rows (expandable to their runs) or run rows, virtualised: only the
// rows in view (plus an overscan) are in the DOM, at absolute positions inside a spacer as
// tall as the whole table. Rows arrive in pages (Arrow) from Python, fetched ahead of scroll.
import { h } from "../dom";
import type { TableColumn, TableMeta, TableRow } from "../types";
import { type FetchRows, Pages } from "./pages";

const ROW_HEIGHT = 26;
const OVERSCAN = 8;

export interface TableHandlers {
  fetch: FetchRows<TableRow>;
  sort(column: string): void;
  toggleExpanded(key: string): void;
  toggleHidden(row: TableRow): void;
  focus(series: string): void;
  hover(series: string | null): void;
  colorOf(series: string): string | null;
  pickColumns(names: string[]): void;
}

/** Column widths from their content: the widest of the header and the first page's cells
 * (measured in the table's font), within bounds; the name column also holds the tree's
 * indent and its buttons. */
const WIDTH = { min: 56, max: 320, nameMin: 140, nameMax: 380, padding: 18, sortMark: 14, nameTools: 64 };
let measurer: CanvasRenderingContext2D | null = null;

export function columnWidths(columns: TableColumn[], rows: TableRow[], el: HTMLElement): number[] {
  measurer ??= document.createElement("canvas").getContext("2d");
  const style = getComputedStyle(el);
  const measure = (text: string, bold = false): number => {
    if (!measurer) return text.length * 7.5;
    measurer.font = `${bold ? "600 " : ""}${style.fontSize || "13px"} ${style.fontFamily || "sans-serif"}`;
    return measurer.measureText(text).width;
  };
  return columns.map((column, i) => {
    let widest = measure(column.label, true) + WIDTH.sortMark;
    for (const row of rows) {
      const value = row[column.name];
      const text = value === null || value === undefined ? "" : String(value);
      const extra = i === 0 ? WIDTH.nameTools + row._depth * 16 : 0;
      widest = Math.max(widest, measure(text, row._kind !== "run") + extra);
    }
    const [low, high] = i === 0 ? [WIDTH.nameMin, WIDTH.nameMax] : [WIDTH.min, WIDTH.max];
    return Math.round(Math.min(high, Math.max(low, widest + WIDTH.padding)));
  });
}

export class RunsTable {
  readonly el: HTMLDivElement;
  private readonly header: HTMLDivElement;
  private readonly viewport: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly picker: HTMLDivElement;
  private meta: TableMeta = { total: 0, columns: [], all_columns: [] };
  private readonly pages: Pages<TableRow>;
  private sort: string[] = [];
  private highlighted: string | null = null;
  private frame = 0;
  private widths: number[] = [];

  constructor(private readonly handlers: TableHandlers) {
    this.pages = new Pages(handlers.fetch, () => this.schedule());
    this.header = h("div", { class: "rg-thead", attrs: { role: "row" } });
    this.spacer = h("div", { class: "rg-spacer", attrs: { role: "rowgroup" } });
    // One scroll container for both axes: the header sticks to its top, so header and rows
    // always scroll sideways together.
    this.viewport = h("div", { class: "rg-viewport" }, [this.header, this.spacer]);
    this.viewport.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.picker = h("div", { class: "rg-popover rg-column-picker", attrs: { hidden: "" } });
    const pickButton = h("button", {
      class: "rg-button rg-columns-button",
      text: "Columns",
      title: "Choose the table's columns",
      on: { click: () => this.togglePicker() },
    });
    this.el = h("div", { class: "rg-table", attrs: { role: "table" } }, [
      h("div", { class: "rg-table-tools" }, [pickButton, this.picker]),
      this.viewport,
    ]);
  }

  /** New data: drop every cached page; `first` is page 0 (`pageSize` rows), delivered with
   * the table reply.
   * `top`: scroll back to the first row (another table, e.g. a group page).
   * `keep`: the same table with fresher rows (a live update): the rows in view stay shown
   * until their new page arrives, so nothing blinks. */
  setData(meta: TableMeta, first: TableRow[], pageSize: number, sort: string[], top = false, keep = false): void {
    if (top) this.viewport.scrollTop = 0;
    this.meta = meta;
    this.sort = sort;
    this.pages.reset(meta.total, first, pageSize, keep);
    this.widths = columnWidths(meta.columns, first, this.el);
    this.spacer.style.height = `${meta.total * ROW_HEIGHT}px`;
    // as tall as its rows (plus the header), up to ten rows; then it scrolls
    const rows = Math.max(3, Math.min(meta.total, 10));
    this.viewport.style.height = `${(rows + 1) * ROW_HEIGHT + 16}px`;
    const width = this.widths.reduce((a, b) => a + b, 0);
    this.spacer.style.width = `${width}px`;
    this.renderHeader(width);
    this.renderPicker();
    this.render();
  }

  highlight(series: string | null): void {
    this.highlighted = series;
    for (const row of this.spacer.children) {
      const element = row as HTMLElement;
      element.classList.toggle("rg-highlight", series !== null && element.dataset.series === series);
    }
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private renderHeader(width: number): void {
    const [sortColumn, direction] = this.sort;
    this.header.style.width = `${width}px`;
    this.header.replaceChildren(
      ...this.meta.columns.map((column, i) => {
        const arrow = column.name === sortColumn ? (direction === "desc" ? " ▼" : " ▲") : "";
        return h(
          "div",
          {
            class: `rg-th${column.numeric ? " rg-num" : ""}`,
            text: column.label + arrow,
            title: `Sort by ${column.label}`,
            attrs: { role: "columnheader", style: `width:${this.widths[i]}px`, "data-column": column.name },
            on: { click: () => this.handlers.sort(column.name) },
          },
        );
      }),
    );
  }

  private renderPicker(): void {
    const shown = new Set(this.meta.columns.map((c) => c.name));
    this.picker.replaceChildren(
      ...this.meta.all_columns.map((column) => {
        const box = h("input", { attrs: { type: "checkbox" } });
        box.checked = shown.has(column.name);
        if (column.name === "name") box.disabled = true;
        box.addEventListener("change", () => {
          // the table keeps its order: a ticked column joins at the end, an unticked one leaves
          const current = this.meta.columns.map((c) => c.name);
          const names = box.checked ? [...current, column.name] : current.filter((name) => name !== column.name);
          this.handlers.pickColumns(names);
        });
        return h("label", { class: "rg-check" }, [box, column.label]);
      }),
    );
  }

  private togglePicker(): void {
    this.picker.toggleAttribute("hidden");
  }

  private render(): void {
    const top = Math.max(0, this.viewport.scrollTop);
    const height = (this.viewport.clientHeight || 320) - ROW_HEIGHT;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.meta.total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    this.pages.prefetch(last);
    const nodes: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const row = this.pages.row(i);
      nodes.push(row ? this.renderRow(row, i) : this.placeholder(i));
    }
    this.spacer.replaceChildren(...nodes);
  }

  private placeholder(index: number): HTMLElement {
    return h("div", {
      class: "rg-tr rg-loading",
      attrs: { style: `top:${index * ROW_HEIGHT}px` },
    });
  }

  private renderRow(row: TableRow, index: number): HTMLElement {
    const series = row._series ?? "";
    const cells = this.meta.columns.map((column, i) =>
      i === 0 ? this.nameCell(row, column, this.widths[i]) : this.cell(row, column, this.widths[i]),
    );
    const element = h(
      "div",
      {
        class: `rg-tr rg-${row._kind}${row._hidden ? " rg-hidden" : ""}${
          this.highlighted !== null && series === this.highlighted ? " rg-highlight" : ""
        }`,
        attrs: {
          role: "row",
          style: `top:${index * ROW_HEIGHT}px`,
          "data-kind": row._kind,
          "data-key": row._key,
          "data-series": series,
        },
      },
      cells,
    );
    element.addEventListener("mouseenter", () => this.handlers.hover(row._series));
    element.addEventListener("mouseleave", () => this.handlers.hover(null));
    return element;
  }

  private cell(row: TableRow, column: TableColumn, width: number): HTMLElement {
    const value = row[column.name];
    // a group's runs differ in this column: "3 values", muted
    const mixed = typeof row._mixed === "string" && row._mixed.split("\n").includes(column.name);
    return h("div", {
      class: `rg-td${column.numeric ? " rg-num" : ""}${mixed ? " rg-mixed" : ""}`,
      text: value === null || value === undefined ? "" : String(value),
      // the whole value on hover, where the column is narrower than it
      title: value === null || value === undefined ? undefined : String(value),
      attrs: { role: "cell", style: `width:${width}px` },
    });
  }

  private nameCell(row: TableRow, column: TableColumn, width: number): HTMLElement {
    const text = String(row[column.name] ?? "");
    const parts: HTMLElement[] = [];
    parts.push(h("span", { class: "rg-indent", attrs: { style: `width:${row._depth * 16}px` } }));
    if (row._kind === "group" || row._kind === "branch") {
      parts.push(
        h("button", {
          class: "rg-icon rg-expand",
          text: row._expanded ? "▾" : "▸",
          title: row._expanded ? "Collapse" : row._kind === "branch" ? "Show its groups" : "Show its runs",
          attrs: { "aria-expanded": String(row._expanded) },
          on: { click: () => this.handlers.toggleExpanded(row._key) },
        }),
      );
    }
    parts.push(
      h("button", {
        class: `rg-icon rg-eye${row._hidden ? " rg-off" : ""}`,
        text: row._hidden ? "◌" : "◉",
        title: row._hidden ? "Show in the charts" : "Hide from the charts",
        attrs: { "aria-pressed": String(!row._hidden) },
        on: { click: () => this.handlers.toggleHidden(row) },
      }),
    );
    // a branch of the tree (a value of an outer key) is no line of the charts: no swatch
    if (row._kind !== "branch") {
      const color = row._series !== null ? this.handlers.colorOf(row._series) : null;
      const swatch = h("span", { class: "rg-swatch" });
      if (color) swatch.style.background = color;
      parts.push(swatch);
    }
    if (row._kind === "branch") {
      parts.push(
        h("button", {
          class: "rg-link rg-branch-name",
          text,
          title: row._expanded ? `Collapse ${text}` : `Show the groups of ${text}`,
          on: { click: () => this.handlers.toggleExpanded(row._key) },
        }),
      );
    } else if (row._kind === "group") {
      parts.push(
        h("button", {
          class: "rg-link rg-group-name",
          text,
          title: `Open ${text}`,
          on: { click: () => this.handlers.focus(row._key) },
        }),
      );
    } else {
      parts.push(h("span", { class: "rg-run-name", text, title: text }));
    }
    return h("div", { class: "rg-td rg-name", attrs: { role: "cell", style: `width:${width}px` } }, parts);
  }
}
