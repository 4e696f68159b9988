// The test probe: what the end-to-end tests and the benchmarks read after each repaint, in one
// object on the widget's root element (`element.rungroupProbe`, see docs/widget.md), instead of
// attributes scattered over the DOM. Nothing in the widget reads it back. After each update
// of it the root element gets a `rungroup-probe` event, so a benchmark can wait for one
// without polling. What it says of the drawn chart (`SceneFacts`) is read from the chart when
// asked, not after every repaint: walking every drawn point and measuring the panels would
// hold back each user's frame for the tests' sake.

export interface Probe {
  /** Data requests sent (a `data` and a `table` request each). */
  requests: number;
  /** Charts drawn, and repaints finished (chart and table). */
  charts: number;
  renders: number;
  /** Repaints that failed. */
  errors: number;
  /** Vega embeds (a new spec); other repaints only fed the view new data. */
  embedded: number;
  /** When the last request left and its chart was drawn (performance.now()). */
  chartTimes: [number, number] | null;
  /** The widget's `revision` trait at the last repaint (live updates). */
  revision: number;
  /** Rows of the runs table, and chart points Python sent. */
  total: number;
  points: number;
  /** Rows the series canvas drew from, and the sum of their `line` values. */
  viewRows: number;
  viewLineSum: number;
  /** Lines and bands drawn, and line points drawn out of order or outside their panel (0
   * unless the scales were left from older data). */
  lines: number;
  bands: number;
  misplaced: number;
  /** Bytes received for the last repaint, Python's timings, and the browser's phases (ms). */
  bytes: number;
  timings: Record<string, number>;
  paintMs: number;
  phases: Record<string, number>;
  /** The series hovered ("" for none) and the series listed in the crosshair's tooltip. */
  hover: string;
  tips: number;
  /** Points of the hovered series drawn over the others (0 when none is). */
  emphasised: number;
  /** Each series' drawn line colour, and the panels' boxes in page coordinates. */
  strokes: Record<string, string>;
  /** Dashed stretches drawn (where a series has fewer runs than its most). */
  dashed: number;
  panels: { x: number; y: number; width: number; height: number }[];
  /** Hover the first panel at a point (fractions of its width and height) as a pointer move
   * would, and resolve with the milliseconds until the view has drawn what it changed
   * (benchmarks/bench_widget.py). */
  hoverAt?: (fx: number, fy: number) => Promise<number>;
}

/** The probe's fields read from the chart as drawn at the moment they are read. */
export type SceneFacts = Pick<Probe, "viewRows" | "viewLineSum" | "lines" | "bands" | "misplaced" | "strokes" | "dashed" | "panels">;

const SCENE_FIELDS: (keyof SceneFacts)[] = ["viewRows", "viewLineSum", "lines", "bands", "misplaced", "strokes", "dashed", "panels"];

const PROBE_PROPERTY = "rungroupProbe";
const PROBE_EVENT = "rungroup-probe";

/** Tell whoever waits on `root` that its probe changed. */
export function announce(root: HTMLElement): void {
  root.dispatchEvent(new Event(PROBE_EVENT));
}

/** A fresh probe, set on `root` as `root.rungroupProbe`; `scene` is asked for its chart
 * fields when one of them is read. */
export function attachProbe(root: HTMLElement, scene: () => SceneFacts): Probe {
  const probe: Probe = {
    requests: 0,
    charts: 0,
    renders: 0,
    errors: 0,
    embedded: 0,
    chartTimes: null,
    revision: 0,
    total: 0,
    points: 0,
    viewRows: 0,
    viewLineSum: 0,
    lines: 0,
    bands: 0,
    misplaced: 0,
    bytes: 0,
    timings: {},
    paintMs: 0,
    phases: {},
    hover: "",
    emphasised: 0,
    tips: 0,
    strokes: {},
    dashed: 0,
    panels: [],
  };
  for (const field of SCENE_FIELDS) {
    // enumerable, so that a test's page.evaluate serialises it like the others
    Object.defineProperty(probe, field, { get: () => scene()[field], enumerable: true });
  }
  Object.defineProperty(root, PROBE_PROPERTY, { value: probe, enumerable: false });
  return probe;
}
