// One repaint: ask Python for the chart's data and the table's first page at once, draw the
// chart, then (after the frame that shows it) the table, the breadcrumb and the status line,
// and record what happened in the probe. A reply to an older request is dropped.
import type { ChartPanel } from "./chart/chart";
import type { LegendData } from "./chart/legend";
import { columnsOf } from "./chart/partition";
import { arrow, arrowRows, type Channel, errorText, type Reply } from "./channel";
import type { Breadcrumb } from "./group/groupPage";
import type { WidgetModel } from "./model";
import { announce, type Probe } from "./probe";
import type { Refresh, Scheduler } from "./scheduler";
import { type ErrorBox, statusText } from "./status";
import type { RunsTable } from "./table/table";
import type { TableMeta, TableRow } from "./types";

interface DataReply extends Reply {
  spec: Record<string, unknown> | null;
  /** The spec's panels without their series (Vega draws it; the series canvas the rest). */
  frame: Record<string, unknown> | null;
  spec_key: string;
  chart_rows: number;
  focus_label: string | null;
  legend: LegendData;
  /** The kernel's settings differ from the request's: its reply is for other settings. */
  stale?: boolean;
  empty: string | null;
  no_values: string[];
  chart_file: string;
  timings?: Record<string, number>;
}

interface TableReply extends Reply {
  table: TableMeta;
  runs: number;
  groups: number;
  /** The open group page as the legend names it ("lr=0.01"), or null. */
  group_label: string | null;
  focus_label: string | null;
  timings?: Record<string, number>;
}

const DIM_AFTER_MS = 300;
/** The settings a data request names, so that the kernel can tell it is early. */
const VIEW_CHECKED = ["group_by", "grouping", "reverse", "metrics", "x", "line", "band", "search", "focus", "hidden"];
const STALE_RETRIES = 20;
const STALE_WAIT_MS = 100;

/** Resolves once the browser has produced its next frame (a task queued from an animation
 * frame callback runs after that frame's rendering), or after 100 ms: a hidden tab draws no
 * frames, and its table must not wait for one. */
function afterNextPaint(): Promise<void> {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 100);
  });
}

export interface Parts {
  root: HTMLElement;
  model: WidgetModel;
  channel: Channel;
  chart: ChartPanel;
  table: RunsTable;
  breadcrumb: Breadcrumb;
  status: HTMLElement;
  errors: ErrorBox;
  probe: Probe;
  /** The open group's label, for the table's swatches. */
  focus: { label: string | null };
}

export function repaint(parts: Parts, scheduler: () => Scheduler): Refresh {
  const { root, model, channel, chart, table, errors, probe } = parts;
  let tableIdentity = "";
  /** Replies in a row that came back for settings the kernel had not seen yet. */
  let stale = 0;
  let dimming: ReturnType<typeof setTimeout> | undefined;
  return async (ticket, quiet) => {
    const current = () => scheduler().current(ticket);
    // `rg-busy` marks a request in flight; the chart dims only if it takes a while (dimming
    // at once would restyle and re-layer the page twice per quick update)
    clearTimeout(dimming);
    if (!quiet) {
      root.classList.add("rg-busy");
      dimming = setTimeout(() => root.classList.add("rg-dim"), DIM_AFTER_MS);
    }
    const before = channel.bytesReceived;
    const sent = performance.now();
    probe.requests++;
    // Both asked at once: the kernel answers the chart first and builds the table's rows
    // while the browser draws it.
    const pageSize = model.get("info").page_size;
    // the settings this repaint is for: a front end whose trait updates and messages travel
    // apart (marimo) can deliver this request before the change; the kernel then says so
    const view = Object.fromEntries(VIEW_CHECKED.map((name) => [name, model.get(name)]));
    const charted = channel.request("data", { spec_key: chart.specKey, view });
    const tabled = channel.request("table", { limit: pageSize });
    tabled.catch(() => undefined); // awaited below, unless the chart fails first
    try {
      const [reply, buffers] = (await charted) as [DataReply, DataView[]];
      if (!current()) return;
      if (reply.stale && stale < STALE_RETRIES) {
        // the kernel has not seen the change yet: ask again in a moment
        stale++;
        setTimeout(() => scheduler().schedule(), STALE_WAIT_MS);
        return;
      }
      stale = 0;
      const received = performance.now();
      errors.set("");
      if (reply.spec !== null) probe.embedded++;
      const series = columnsOf(arrow(buffers[0]));
      const decoded = performance.now();
      await chart.show(reply.spec, reply.frame, reply.spec_key, series, reply.legend);
      chart.explain(reply.empty ?? null, reply.no_values ?? []);
      chart.fileName = reply.chart_file || chart.fileName;
      const drawnAt = performance.now();
      if (!current()) return;
      probe.charts++;
      probe.chartTimes = [sent, drawnAt];
      announce(root);
      // the table's rows wait for the frame that shows the chart (laying them out first
      // would hold that frame back)
      await afterNextPaint();
      const [tableReply, tableBuffers] = (await tabled) as [TableReply, DataView[]];
      const tableReceived = performance.now();
      if (!current()) return;
      const focus = tableReply.focus_label;
      parts.focus.label = focus;
      const identity = JSON.stringify([focus, model.get("grouping"), model.get("group_by"), model.get("reverse")]);
      const rows = arrowRows<TableRow>(tableBuffers[0]);
      table.setData(tableReply.table, rows, pageSize, model.get("sort"), identity !== tableIdentity, quiet);
      tableIdentity = identity;
      parts.breadcrumb.show(focus);
      const counts = { runs: tableReply.runs, groups: tableReply.groups, points: reply.chart_rows, group: tableReply.group_label };
      parts.status.textContent = statusText(counts, model.get("grouping"), model.get("live"));

      const kernel = reply.timings ?? {};
      Object.assign(probe, {
        revision: model.get("revision"),
        total: tableReply.table.total,
        points: reply.chart_rows,
        bytes: channel.bytesReceived - before,
        timings: { ...reply.timings, ...tableReply.timings },
        paintMs: Math.round(drawnAt - received),
        phases: {
          request_ms: Math.round(received - sent),
          to_kernel_ms: Math.round((kernel.kernel_in_epoch_ms ?? NaN) - (performance.timeOrigin + sent)),
          from_kernel_ms: Math.round(performance.timeOrigin + received - (kernel.kernel_out_epoch_ms ?? NaN)),
          decode_ms: Math.round(decoded - received),
          vega_ms: Math.round(drawnAt - decoded),
          table_wait_ms: Math.round(tableReceived - drawnAt),
          table_ms: Math.round(performance.now() - tableReceived),
        },
      });
      probe.renders++;
    } catch (error) {
      if (current()) errors.set(errorText(error));
      probe.errors++;
    } finally {
      if (current()) {
        clearTimeout(dimming);
        root.classList.remove("rg-busy", "rg-dim");
      }
      errors.show();
      announce(root);
    }
  };
}
