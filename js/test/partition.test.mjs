// The chart's data partitioning: Arrow columns split into the spec's named datasets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { columnsOf, datasetsOf, partition, rowAt } from "../src/chart/partition.ts";

const columns = {
  length: 5,
  values: {
    layer: ["group", "group", "run", "run", "group"],
    series: ["a", "b", "a", "a", "b"],
    line: Float64Array.from([1, 2, 3, 4, 5]),
  },
};

test("a spec without datasets gets one dataset holding every row", () => {
  const datasets = datasetsOf({ mark: "line" });
  assert.equal(datasets.length, 1);
  const parts = partition(datasets, columns);
  assert.deepEqual(parts.get(datasets[0].name), [0, 1, 2, 3, 4]);
});

test("each row goes to the first dataset it matches", () => {
  const spec = {
    usermeta: {
      rungroup: {
        datasets: [
          { name: "runs", where: { layer: "run" } },
          { name: "groups_a", where: { layer: "group", series: "a" } },
          { name: "everything", where: {} },
        ],
      },
    },
  };
  const parts = partition(datasetsOf(spec), columns);
  assert.deepEqual([...parts.keys()], ["runs", "groups_a", "everything"]);
  assert.deepEqual(parts.get("runs"), [2, 3]);
  assert.deepEqual(parts.get("groups_a"), [0]);
  assert.deepEqual(parts.get("everything"), [1, 4]);
});

test("a dataset on a field the data lacks matches no row", () => {
  const parts = partition([{ name: "x", where: { metric: "loss" } }], columns);
  assert.deepEqual(parts.get("x"), []);
});

test("rows are built from the columns by index; an empty reply has no rows", () => {
  assert.deepEqual(rowAt(columns, 3), { layer: "run", series: "a", line: 4 });
  assert.deepEqual(columnsOf(null), { length: 0, values: {} });
});
