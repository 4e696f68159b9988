// What the series canvas strokes and fills, recorded from a context that keeps the calls:
// paths break at missing values, stretches of fewer runs are dashed (lines) or lighter (bands).
import assert from "node:assert/strict";
import { test } from "node:test";
import { paintBand, paintLine } from "../src/chart/series.ts";
import { tracksOf } from "../src/chart/tracks.ts";

/** A 2D context that records each stroked or filled path: its points, dash and opacity. */
function recorder() {
  const paths = [];
  let points = [];
  const context = {
    globalAlpha: 1,
    strokeStyle: "",
    fillStyle: "",
    lineWidth: 1,
    lineJoin: "miter",
    dash: [],
    setLineDash(dash) {
      this.dash = dash;
    },
    beginPath() {
      points = [];
    },
    moveTo(x, y) {
      points.push([x, y]);
    },
    lineTo(x, y) {
      points.push([x, y]);
    },
    closePath() {},
    stroke() {
      paths.push({ kind: "stroke", points, dashed: this.dash.length > 0, alpha: this.globalAlpha, colour: this.strokeStyle });
    },
    fill() {
      paths.push({ kind: "fill", points, alpha: this.globalAlpha, colour: this.fillStyle });
    },
  };
  return { context, paths };
}

const pen = { x: (v) => v * 10, y: (v) => 100 - v };
const box = { width: 100, height: 100 };
const FULL = 1;
const THIN = 2;

function track(values) {
  const n = values.line.length;
  const columns = { length: n, values: { series: Array(n).fill("s"), x: Float64Array.from({ length: n }, (_, i) => i), ...values } };
  return tracksOf(columns, [{ metric: "m", rows: [...Array(n).keys()] }]).get("m")[0];
}

test("a line breaks at a missing value and counts the points it drew", () => {
  const { context, paths } = recorder();
  const drawn = paintLine(context, track({ line: Float64Array.from([1, 2, NaN, 4, 5]) }), pen, { field: "line", colour: "#f00", width: 2, opacity: 1, dashes: true }, box);
  assert.equal(drawn.points, 4);
  assert.equal(drawn.misplaced, 0);
  assert.deepEqual(
    paths.map((p) => p.points),
    [
      [
        [0, 99],
        [10, 98],
      ],
      [
        [30, 96],
        [40, 95],
      ],
    ],
  );
  assert.ok(paths.every((p) => !p.dashed && p.colour === "#f00"));
});

test("steps with an end of fewer runs are dashed, joined to the full stretches", () => {
  const { context, paths } = recorder();
  const rows = track({ line: Float64Array.from([1, 2, 3, 4, 5]), rg_part: Int8Array.from([FULL, FULL, FULL | THIN, THIN, THIN]) });
  const drawn = paintLine(context, rows, pen, { field: "line", colour: "#000", width: 2, opacity: 1, dashes: true }, box);
  assert.ok(drawn.dashed);
  assert.deepEqual(
    paths.map((p) => [p.dashed, p.points.map(([x]) => x / 10)]),
    [
      [false, [0, 1, 2]],
      [true, [2, 3, 4]],
    ],
  );
});

test("points outside the plot area are counted (a scale left from older data)", () => {
  const { context } = recorder();
  const drawn = paintLine(context, track({ line: Float64Array.from([1, 150]) }), pen, { field: "line", colour: "#000", width: 2, opacity: 1, dashes: false }, box);
  assert.equal(drawn.outside, 1);
});

test("a band is a polygon per stretch with both bounds, lighter where fewer runs", () => {
  const { context, paths } = recorder();
  const rows = track({
    line: Float64Array.from([1, 2, 3, 4, 5, 6]),
    lower: Float64Array.from([0, 1, 2, 3, NaN, 5]),
    upper: Float64Array.from([2, 3, 4, 5, NaN, 7]),
    rg_part: Int8Array.from([FULL, FULL | THIN, THIN, THIN, THIN, THIN]),
  });
  assert.ok(paintBand(context, rows, pen, "#0f0", 0.2));
  // full 0-1, thin 1-3; row 4 has no bounds; row 5 alone makes no polygon
  assert.deepEqual(
    paths.map((p) => [p.alpha, p.points.map(([x]) => x / 10)]),
    [
      [0.2, [0, 1, 1, 0]],
      [0.2 * 0.35, [1, 2, 3, 3, 2, 1]],
    ],
  );
});
