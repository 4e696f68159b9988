// The chart's lines: each panel's rows (indexes into the Arrow columns) split by series, or
// by run on a group page, in x order; and each panel's extent, which sets its scales. No Vega
// and no DOM here: the series canvas draws the tracks, the crosshair lists them, the emphasis
// draws one of them again.
import { type Columns, type Row, rowAt } from "./partition";

/** One line of one panel. */
export interface Track {
  /** The series, or the run on a group page. */
  key: string;
  series: string;
  /** A group page's run line (drawn thin, behind its group's line and band). */
  run: boolean;
  /** Its place in the colour order: lines are drawn in this order. */
  order: number;
  /** Its rows' indexes into `columns`, by x. */
  index: Int32Array;
  xs: Float64Array;
  columns: Columns;
}

/** Each panel's tracks, by the metric the panel shows. */
export type Tracks = Map<string, Track[]>;

const NO_VALUES: ArrayLike<unknown> = [];

export function xNumber(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  return typeof value === "number" ? value : Number(value);
}

/** A field's values by row of `columns` (none: every value undefined). */
export function valuesOf(columns: Columns, field: string): ArrayLike<unknown> {
  return columns.values[field] ?? NO_VALUES;
}

/** Row `i` of `track` as an object (the tooltip's few rows; drawing reads the columns). */
export function rowOf(track: Track, i: number): Row {
  return rowAt(track.columns, track.index[i]);
}

/** Tracks from each panel's rows: split by run (rows with a run name) or series, sorted by x
 * (stably: rows of one x keep their order). */
export function tracksOf(columns: Columns, panels: { metric: string; rows: ArrayLike<number> }[]): Tracks {
  const runs = valuesOf(columns, "run");
  const series = valuesOf(columns, "series");
  const orders = valuesOf(columns, "rg_order");
  const xValues = valuesOf(columns, "x");
  const tracks: Tracks = new Map();
  for (const { metric, rows } of panels) {
    const byKey = new Map<string, number[]>();
    for (let r = 0; r < rows.length; r++) {
      const i = rows[r];
      const run = runs[i];
      const key = typeof run === "string" ? run : String(series[i]);
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      list.push(i);
    }
    const panel = tracks.get(metric) ?? [];
    for (const [key, list] of byKey) {
      const first = list[0];
      let xs = Float64Array.from(list, (i) => xNumber(xValues[i]));
      let index = Int32Array.from(list);
      if (!isSorted(xs)) {
        const by = list.map((_, k) => k).sort((a, b) => xs[a] - xs[b] || a - b);
        index = Int32Array.from(by, (k) => list[k]);
        xs = Float64Array.from(by, (k) => xs[k]);
      }
      const order = Number(orders[first]);
      panel.push({
        key,
        series: String(series[first]),
        run: typeof runs[first] === "string",
        order: Number.isFinite(order) ? order : panel.length,
        index,
        xs,
        columns,
      });
    }
    // runs first (under their group), then by colour order
    panel.sort((a, b) => Number(b.run) - Number(a.run) || a.order - b.order);
    tracks.set(metric, panel);
  }
  return tracks;
}

function isSorted(xs: Float64Array): boolean {
  for (let i = 1; i < xs.length; i++) if (!(xs[i - 1] <= xs[i])) return false;
  return true;
}

/** Which fields set a panel's y scale, and whether it is a log scale (which takes only
 * positive values). */
export interface ExtentFields {
  fields: string[];
  logY: boolean;
}

/** A panel's extent as two rows (lowest x and y, highest x and y) for its frame's invisible
 * mark: the scales Vega-Lite makes from them are those the drawn rows would make. Rows
 * without a value the y scale can show do not count; none: no rows (an empty panel). */
export function extentRows(tracks: Track[], { fields, logY }: ExtentFields): { x: number; y: number }[] {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const track of tracks) {
    const sources = fields.map((field) => valuesOf(track.columns, field));
    for (let k = 0; k < track.index.length; k++) {
      const i = track.index[k];
      let counted = false;
      for (const source of sources) {
        const value = source[i];
        if (typeof value !== "number" || !Number.isFinite(value) || (logY && value <= 0)) continue;
        counted = true;
        if (value < y0) y0 = value;
        if (value > y1) y1 = value;
      }
      if (!counted) continue;
      const x = track.xs[k];
      if (!Number.isFinite(x)) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
    }
  }
  if (!(x0 <= x1) || !(y0 <= y1)) return [];
  return [
    { x: x0, y: y0 },
    { x: x1, y: y1 },
  ];
}
