// The chart's data: Arrow columns from Python split into the named datasets of the spec
// (`usermeta.rungroup.datasets`), as row indexes: no Vega and no DOM here.
import type { Table } from "@uwdata/flechette";

const DATA_NAME = "rungroup";

export type Row = Record<string, unknown>;

/** The chart's rows as columns (Arrow's, decoded once): read by index, so that a data swap
 * makes no object per row (16,000 short-lived objects cost a garbage collection per repaint). */
export interface Columns {
  length: number;
  values: Record<string, ArrayLike<unknown>>;
}

/** The columns of a decoded Arrow table (none for an empty reply). */
export function columnsOf(table: Table | null): Columns {
  return { length: table?.numRows ?? 0, values: (table?.toColumns() ?? {}) as Columns["values"] };
}

export function rowAt(columns: Columns, index: number): Row {
  const row: Row = {};
  for (const [field, values] of Object.entries(columns.values)) row[field] = values[index];
  return row;
}

/** One dataset of a prepared spec (`usermeta.rungroup.datasets`): the rows whose fields equal
 * `where`. */
export interface Dataset {
  name: string;
  where: Record<string, unknown>;
}

export function datasetsOf(spec: Record<string, unknown>): Dataset[] {
  const meta = (spec.usermeta as { rungroup?: { datasets?: Dataset[] } } | undefined)?.rungroup;
  return meta?.datasets ?? [{ name: DATA_NAME, where: {} }];
}

/** Row indexes split by dataset (each row goes to the first dataset it matches). */
export function partition(datasets: Dataset[], columns: Columns): Map<string, number[]> {
  const parts = datasets;
  const out = new Map<string, number[]>(parts.map((d) => [d.name, []]));
  const tests = parts.map((d) => {
    const where = Object.entries(d.where).map(([field, value]) => [columns.values[field] ?? [], value] as const);
    return [out.get(d.name) as number[], where] as const;
  });
  for (let i = 0; i < columns.length; i++) {
    for (const [target, where] of tests) {
      if (where.every(([values, value]) => values[i] === value)) {
        target.push(i);
        break;
      }
    }
  }
  return out;
}
