// Request/response over anywidget custom messages: every request carries an id and Python
// answers with the same id, errors included ({ok: false, error}), so nothing times out
// silently. Bulk data comes back as binary buffers (Arrow IPC), never as JSON.
import { tableFromIPC, type Table } from "@uwdata/flechette";

export interface Reply {
  kind: string;
  id: number;
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

export class RequestError extends Error {}

/** The part of anywidget's model the channel uses (a stub in the unit tests). */
export interface MessagePort {
  on(event: "msg:custom", handler: (msg: unknown, buffers: DataView[]) => void): void;
  off(event: "msg:custom", handler: (msg: unknown, buffers: DataView[]) => void): void;
  send(content: Record<string, unknown>): void;
}

type Pending = {
  resolve: (r: [Reply, DataView[]]) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
};

/** A kernel that died or hangs never answers: the widget says so instead of waiting forever. */
const TIMEOUT_MS = 120_000;

export class Channel {
  // Several views of one widget share the comm: start each at a random id so replies never collide.
  private next = Math.floor(Math.random() * 2 ** 30) * 16;
  private pending = new Map<number, Pending>();
  /** Bytes received so far (for the benchmark). */
  bytesReceived = 0;
  private readonly onMessage = (msg: unknown, buffers: DataView[]) => {
    if (!msg || typeof msg !== "object") return;
    const reply = msg as Reply;
    if (typeof reply.id !== "number") return;
    const waiting = this.pending.get(reply.id);
    if (!waiting) return;
    this.pending.delete(reply.id);
    clearTimeout(waiting.timer);
    if (!reply.ok) {
      waiting.reject(new RequestError(reply.error ?? `request ${reply.kind} failed`));
      return;
    }
    const received = buffers ?? [];
    for (const b of received) this.bytesReceived += b.byteLength;
    this.bytesReceived += JSON.stringify(reply).length;
    waiting.resolve([reply, received]);
  };

  constructor(
    private readonly port: MessagePort,
    private readonly timeoutMs = TIMEOUT_MS,
  ) {
    port.on("msg:custom", this.onMessage);
  }

  request(kind: string, body: Record<string, unknown> = {}): Promise<[Reply, DataView[]]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer =
        this.timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new RequestError(`no reply to ${kind} from the kernel in ${this.timeoutMs / 1000} s`));
            }, this.timeoutMs)
          : undefined;
      this.pending.set(id, { resolve, reject, timer });
      this.port.send({ ...body, kind, id });
    });
  }

  close(): void {
    this.port.off("msg:custom", this.onMessage);
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(new RequestError("widget closed"));
    }
    this.pending.clear();
  }
}

/** Decode one Arrow IPC buffer (numbers for int64 and timestamps, plain row objects). */
export function arrow(buffer: DataView | undefined): Table | null {
  if (!buffer || buffer.byteLength === 0) return null;
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return tableFromIPC(bytes, { useDate: false, useBigInt: false });
}

/** The rows of one Arrow buffer as objects (the table's pages). */
export function arrowRows<T>(buffer: DataView | undefined): T[] {
  return (arrow(buffer)?.toArray() ?? []) as T[];
}

/** What to show for a failed request or a thrown error. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
