// The synced traits of rungroup.Explorer (src/rungroup/widget/) and the shapes of replies.
// The View's fields, their choices and labels come from Python in `info`: no copy here.

/** Widget-only traits that change what is shown (not part of the View). */

export interface ColumnInfo {
  name: string;
  distinct: number;
  /** "key": offered first; "identifier" (one value per run) and "continuous" (numbers with
   * about as many values as runs) are set apart. */
  kind?: "key" | "identifier" | "continuous";
}

/** One value of a choice setting, with what the controls show for it. */
export interface Choice {
  value: string;
  label: string;
  help: string;
  /** smoothing only: the strength it starts with, the input's step and largest value */
  param?: number;
  param_step?: string;
  param_max?: number | null;
  /** smoothing only: what the strength means per x axis ("*": a metric, "{x}" its name) */
  param_help?: Record<string, string>;
  /** band only: the View's other fields it reads (their inputs show with it) */
  uses?: string[];
}

export interface Info {
  n_runs: number;
  metrics: string[];
  columns: ColumnInfo[];
  x_choices: string[];
  /** The View's field names, in order (each one is a synced trait). */
  fields: string[];
  defaults: Record<string, unknown>;
  /** line, band, ci_method, align, smoothing, smooth_order and the built-in x axes, in
   * display order. */
  choices: Record<string, Choice[]>;
  /** Rows per table page the kernel serves. */
  page_size: number;
  /** The widget's own traits that change what is shown (not View fields). */
  ui_fields: string[];
}

export interface Model {
  [key: string]: unknown;
  metrics: string[];
  group_by: string[];
  grouping: boolean;
  reverse: boolean;
  x: string;
  line: string;
  band: string;
  quantiles: number[];
  ci_level: number;
  ci_method: string;
  bootstrap_samples: number;
  seed: number;
  align: string;
  points: number;
  min_runs: number;
  smoothing: string;
  smoothing_param: number;
  smooth_order: string;
  log_y: boolean;
  hidden: string[];
  search: string;
  focus: string;
  sort: string[];
  expanded: string[];
  table_columns: string[];
  error: string;
  info: Info;
  live: boolean;
  refresh_interval: number;
  revision: number;
  followable: boolean;
}

export interface TableColumn {
  name: string;
  label: string;
  numeric: boolean;
}

export interface TableMeta {
  total: number;
  columns: TableColumn[];
  all_columns: TableColumn[];
}

/** One row of the runs table (display strings plus the underscore-prefixed row metadata). */
export interface TableRow {
  [column: string]: unknown;
  _kind: "branch" | "group" | "run";
  _key: string;
  _series: string | null;
  _depth: number;
  _hidden: boolean;
  _expanded: boolean;
  _count: number;
  /** The shown columns whose values differ between a group's runs, one name a line. */
  _mixed?: string;
}
