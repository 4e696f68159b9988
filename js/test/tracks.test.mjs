// The chart's lines (tracks) and each panel's extent, which sets the frame's scales.
import assert from "node:assert/strict";
import { test } from "node:test";
import { extentRows, rowOf, tracksOf } from "../src/chart/tracks.ts";

const columns = {
  length: 7,
  values: {
    series: ["a", "a", "a", "b", "b", "a", "a"],
    run: [null, null, null, null, null, "r1", "r1"],
    rg_order: Float64Array.from([1, 1, 1, 0, 0, 1, 1]),
    x: Float64Array.from([3, 1, 2, 5, 4, 2, 1]),
    line: Float64Array.from([0.3, 0.1, 0.2, -1, 4, 7, 0.5]),
    lower: Float64Array.from([0.2, 0, 0.1, -2, 3, NaN, NaN]),
    upper: Float64Array.from([0.4, 0.2, 0.3, 0, 5, NaN, NaN]),
  },
};

test("rows split by run, else by series, each in x order, runs first then by colour order", () => {
  const tracks = tracksOf(columns, [{ metric: "loss", rows: [0, 1, 2, 3, 4, 5, 6] }]);
  const panel = tracks.get("loss");
  assert.deepEqual(
    panel.map((t) => [t.key, t.series, t.run]),
    [
      ["r1", "a", true],
      ["b", "b", false],
      ["a", "a", false],
    ],
  );
  const a = panel[2];
  assert.deepEqual([...a.xs], [1, 2, 3]);
  assert.deepEqual([...a.index], [1, 2, 0]);
  assert.deepEqual(rowOf(a, 0), { series: "a", run: null, rg_order: 1, x: 1, line: 0.1, lower: 0, upper: 0.2 });
});

test("rows of one x keep their order", () => {
  const same = { length: 3, values: { series: ["s", "s", "s"], x: Float64Array.from([2, 1, 2]), line: Float64Array.from([1, 2, 3]) } };
  const [track] = tracksOf(same, [{ metric: "m", rows: [0, 1, 2] }]).get("m");
  assert.deepEqual([...track.index], [1, 0, 2]);
});

test("the extent covers every field the panel draws, and x only where a value is", () => {
  const panel = tracksOf(columns, [{ metric: "loss", rows: [0, 1, 2, 3, 4, 5, 6] }]).get("loss");
  assert.deepEqual(extentRows(panel, { fields: ["line"], logY: false }), [
    { x: 1, y: -1 },
    { x: 5, y: 7 },
  ]);
  assert.deepEqual(extentRows(panel, { fields: ["line", "lower", "upper"], logY: false }), [
    { x: 1, y: -2 },
    { x: 5, y: 7 },
  ]);
});

test("a log scale's extent takes only positive values", () => {
  const panel = tracksOf(columns, [{ metric: "loss", rows: [0, 1, 2, 3, 4] }]).get("loss");
  // b's row at x=5 has no positive value: x ends at 4
  assert.deepEqual(extentRows(panel, { fields: ["line", "lower", "upper"], logY: true }), [
    { x: 1, y: 0.1 },
    { x: 4, y: 5 },
  ]);
});

test("a panel without a value has no extent rows", () => {
  const empty = { length: 1, values: { series: ["s"], x: Float64Array.from([1]), line: Float64Array.from([NaN]) } };
  const panel = tracksOf(empty, [{ metric: "m", rows: [0] }]).get("m");
  assert.deepEqual(extentRows(panel, { fields: ["line"], logY: false }), []);
});
