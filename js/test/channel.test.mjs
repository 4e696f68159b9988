// The request channel: ids, replies, errors, timeouts, closing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Channel, RequestError } from "../src/channel.ts";

/** A stand-in for anywidget's model: records what is sent, delivers replies. */
function port() {
  const handlers = new Set();
  const sent = [];
  return {
    sent,
    on: (_event, handler) => handlers.add(handler),
    off: (_event, handler) => handlers.delete(handler),
    send: (content) => sent.push(content),
    reply: (msg, buffers = []) => {
      for (const handler of handlers) handler(msg, buffers);
    },
    listeners: () => handlers.size,
  };
}

test("each request carries its kind, its body and a fresh id", () => {
  const p = port();
  const channel = new Channel(p, 0);
  const ignore = () => undefined; // closing rejects them
  channel.request("data", { spec_key: "k" }).catch(ignore);
  channel.request("table", { limit: 100 }).catch(ignore);
  assert.equal(p.sent.length, 2);
  assert.equal(p.sent[0].kind, "data");
  assert.equal(p.sent[0].spec_key, "k");
  assert.equal(p.sent[1].limit, 100);
  assert.equal(typeof p.sent[0].id, "number");
  assert.notEqual(p.sent[0].id, p.sent[1].id);
  channel.close();
});

test("a reply resolves the request with the same id, whatever the order", async () => {
  const p = port();
  const channel = new Channel(p, 0);
  const first = channel.request("rows");
  const second = channel.request("rows");
  const buffer = new DataView(new ArrayBuffer(8));
  p.reply({ kind: "rows", id: p.sent[1].id, ok: true, which: "second" }, [buffer]);
  p.reply({ kind: "rows", id: p.sent[0].id, ok: true, which: "first" });
  const [[a], [b, buffers]] = await Promise.all([first, second]);
  assert.equal(a.which, "first");
  assert.equal(b.which, "second");
  assert.equal(buffers[0], buffer);
  assert.ok(channel.bytesReceived >= 8, "the buffer's bytes are counted");
  channel.close();
});

test("an error reply rejects with Python's message", async () => {
  const p = port();
  const channel = new Channel(p, 0);
  const pending = channel.request("export", { what: "csv" });
  p.reply({ kind: "export", id: p.sent[0].id, ok: false, error: "band: 'nope' is not valid" });
  await assert.rejects(pending, (error) => error instanceof RequestError && error.message === "band: 'nope' is not valid");
  channel.close();
});

test("messages that are not replies to a pending request are ignored", async () => {
  const p = port();
  const channel = new Channel(p, 0);
  const pending = channel.request("data");
  p.reply("not an object");
  p.reply({ kind: "data", ok: true }); // no id
  p.reply({ kind: "data", id: p.sent[0].id + 1000, ok: true });
  p.reply({ kind: "data", id: p.sent[0].id, ok: true, answer: 42 });
  const [reply] = await pending;
  assert.equal(reply.answer, 42);
  channel.close();
});

test("a request with no reply fails after the timeout, naming its kind", async () => {
  const p = port();
  const channel = new Channel(p, 20);
  const started = Date.now();
  await assert.rejects(channel.request("table"), /no reply to table from the kernel/);
  assert.ok(Date.now() - started >= 15);
  // a late reply after the timeout is dropped quietly
  p.reply({ kind: "table", id: p.sent[0].id, ok: true });
  channel.close();
});

test("closing rejects what is pending and stops listening", async () => {
  const p = port();
  const channel = new Channel(p, 0);
  const pending = channel.request("data");
  channel.close();
  await assert.rejects(pending, /widget closed/);
  assert.equal(p.listeners(), 0);
});
