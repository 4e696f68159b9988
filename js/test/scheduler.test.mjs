// The request scheduler: one refresh per burst, tickets, live updates waiting for replies.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Scheduler } from "../src/scheduler.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a burst of changes makes one refresh; a live change in it does not make it quiet", async () => {
  const runs = [];
  const scheduler = new Scheduler(async (ticket, quiet) => runs.push({ ticket, quiet }));
  scheduler.schedule(true);
  scheduler.schedule();
  scheduler.schedule(true);
  await tick();
  assert.deepEqual(runs, [{ ticket: 1, quiet: false }]);
  scheduler.schedule(true);
  await tick();
  assert.deepEqual(runs[1], { ticket: 2, quiet: true });
});

test("a newer refresh makes the older ticket stale", async () => {
  let release;
  const seen = [];
  const scheduler = new Scheduler(async (ticket) => {
    if (ticket === 1) await new Promise((resolve) => (release = resolve));
    seen.push([ticket, scheduler.current(ticket)]);
  });
  scheduler.schedule();
  await tick();
  scheduler.schedule();
  await tick();
  release();
  await tick();
  assert.deepEqual(seen, [
    [2, true],
    [1, false],
  ]);
});

test("a live update during a request waits for it instead of overtaking it", async () => {
  let release;
  const runs = [];
  const scheduler = new Scheduler(async (ticket, quiet) => {
    runs.push({ ticket, quiet });
    if (ticket === 1) await new Promise((resolve) => (release = resolve));
  });
  scheduler.schedule();
  await tick();
  scheduler.schedule(true);
  await tick();
  assert.equal(runs.length, 1, "no second request while the first is in flight");
  release();
  await tick();
  await tick();
  assert.deepEqual(runs[1], { ticket: 2, quiet: true });
});
