// Request/response over anywidget custom messages: every request carries an id and Python
// answers with the same id, errors included ({ok: false, error}), so nothing times out
// silently. Bulk data comes back as binary buffers (Arrow IPC), never as JSON.
import type { AnyModel } from "@anywidget/types";
import { tableFromIPC, type Table } from "@uwdata/flechette";

export interface Reply {
  kind: string;
  id: number;
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

export class RequestError extends Error {}

type Pending = { resolve: (r: [Reply, DataView[]]) => void; reject: (e: Error) => void };

export class Channel {
  // Several views of one widget share the comm: start each at a random id so replies never collide.
  private next = Math.floor(Math.random() * 2 ** 30) * 16;
  private pending = new Map<number, Pending>();
  private readonly onMessage = (msg: unknown, buffers: DataView[]) => {
    if (!msg || typeof msg !== "object") return;
    const reply = msg as Reply;
    if (typeof reply.id !== "number") return;
    const waiting = this.pending.get(reply.id);
    if (!waiting) return;
    this.pending.delete(reply.id);
    if (reply.ok) waiting.resolve([reply, buffers ?? []]);
    else waiting.reject(new RequestError(reply.error ?? `request ${reply.kind} failed`));
  };

  constructor(private readonly model: AnyModel) {
    model.on("msg:custom", this.onMessage);
  }

  /** Bytes received so far (for the benchmark and the status line). */
  bytesReceived = 0;

  request(kind: string, body: Record<string, unknown> = {}): Promise<[Reply, DataView[]]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: ([reply, buffers]) => {
          for (const b of buffers) this.bytesReceived += b.byteLength;
          this.bytesReceived += JSON.stringify(reply).length;
          resolve([reply, buffers]);
        },
        reject,
      });
      this.model.send({ ...body, kind, id });
    });
  }

  close(): void {
    this.model.off("msg:custom", this.onMessage);
    for (const waiting of this.pending.values()) waiting.reject(new RequestError("widget closed"));
    this.pending.clear();
  }
}

/** Decode one Arrow IPC buffer (numbers for int64 and timestamps, plain row objects). */
export function arrow(buffer: DataView | undefined): Table | null {
  if (!buffer || buffer.byteLength === 0) return null;
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return tableFromIPC(bytes, { useDate: false, useBigInt: false });
}
