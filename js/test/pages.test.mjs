// The runs table's paging: page fetches, stale pages, prefetch.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Pages } from "../src/table/pages.ts";

/** A fetch whose answers the test releases by hand. */
function fetcher() {
  const calls = [];
  const fetch = (offset, limit) =>
    new Promise((resolve, reject) => calls.push({ offset, limit, resolve, reject }));
  return { calls, fetch };
}

const rows = (from, n, tag = "") => Array.from({ length: n }, (_, i) => `${tag}${from + i}`);
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

test("rows of page 0 come with the data; another page is fetched once, by offset", async () => {
  const f = fetcher();
  let loaded = 0;
  const pages = new Pages(f.fetch, () => loaded++);
  pages.reset(250, rows(0, 100), 100);
  assert.equal(pages.row(5), "5");
  assert.equal(f.calls.length, 0);
  assert.equal(pages.row(130), undefined);
  assert.equal(pages.row(131), undefined);
  assert.deepEqual(
    f.calls.map((c) => [c.offset, c.limit]),
    [[100, 100]],
  );
  f.calls[0].resolve(rows(100, 100));
  await settle();
  assert.equal(pages.row(130), "130");
  assert.equal(loaded, 1);
});

test("a page fetched for older data is dropped when it arrives", async () => {
  const f = fetcher();
  const pages = new Pages(f.fetch, () => undefined);
  pages.reset(300, rows(0, 100, "old"), 100);
  pages.row(150);
  pages.reset(300, rows(0, 100, "new"), 100);
  f.calls[0].resolve(rows(100, 100, "old"));
  await settle();
  assert.equal(pages.row(150), undefined, "the old page must not show in the new table");
  assert.equal(f.calls.length, 2, "the page is asked for again, for the new data");
  f.calls[1].resolve(rows(100, 100, "new"));
  await settle();
  assert.equal(pages.row(150), "new150");
});

test("a live update shows the previous rows until their fresh page arrives", async () => {
  const f = fetcher();
  const pages = new Pages(f.fetch, () => undefined);
  pages.reset(300, rows(0, 100, "old"), 100);
  pages.row(150);
  f.calls[0].resolve(rows(100, 100, "old"));
  await settle();
  pages.reset(300, rows(0, 100, "new"), 100, true);
  assert.equal(pages.row(0), "new0");
  assert.equal(pages.row(150), "old150", "the stale copy stands in");
  f.calls[1].resolve(rows(100, 100, "new"));
  await settle();
  assert.equal(pages.row(150), "new150");
  pages.reset(300, rows(0, 100, "other"), 100);
  assert.equal(pages.row(150), undefined, "another table keeps no stale rows");
});

test("the page after the last row in view is fetched ahead, never past the end", () => {
  const f = fetcher();
  const pages = new Pages(f.fetch, () => undefined);
  pages.reset(250, rows(0, 100), 100);
  pages.prefetch(40);
  assert.deepEqual(
    f.calls.map((c) => c.offset),
    [100],
  );
  pages.prefetch(60); // same page ahead: not asked twice
  assert.equal(f.calls.length, 1);
  pages.prefetch(230); // the last page holds row 230: nothing after it
  assert.equal(f.calls.length, 1);
});

test("a failed page is asked for again", async () => {
  const f = fetcher();
  const pages = new Pages(f.fetch, () => undefined);
  pages.reset(200, rows(0, 100), 100);
  pages.row(120);
  f.calls[0].reject(new Error("kernel busy"));
  await settle();
  pages.row(120);
  assert.equal(f.calls.length, 2);
});
