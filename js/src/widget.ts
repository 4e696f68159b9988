// rungroup.Explorer front end: toolbar + settings, runs table and grouped charts.
// Settings are synced traits; rows and series come from Python as Arrow IPC buffers in
// id-tagged request/response messages (see protocol.ts and src/rungroup/widget.py).
import type { AnyModel, RenderProps } from "@anywidget/types";
import "./widget.css";
import { ChartPanel, type Columns } from "./chart/chart";
import { buildControls, type ExportKind } from "./controls/controls";
import { download, h } from "./dom";
import { arrow, Channel, type Reply } from "./protocol";
import { RunsTable } from "./table/table";
import { type Model, type TableMeta, type TableRow, UI_FIELDS } from "./types";

interface DataReply extends Reply {
  spec: Record<string, unknown> | null;
  spec_key: string;
  chart_rows: number;
  focus_label: string | null;
  timings?: Record<string, number>;
}

interface TableReply extends Reply {
  table: TableMeta;
  runs: number;
  groups: number;
  focus_label: string | null;
  timings?: Record<string, number>;
}

const DIM_AFTER_MS = 300;

/** Resolves once the browser has produced its next frame (a task queued from an animation
 * frame callback runs after that frame's rendering), or after 100 ms: a hidden tab draws no
 * frames, and its table must not wait for one. */
function afterNextPaint(): Promise<void> {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 100);
  });
}

function columnsOf(buffer: DataView | undefined): Columns {
  const table = arrow(buffer);
  return { length: table?.numRows ?? 0, values: (table?.toColumns() ?? {}) as Columns["values"] };
}

function rows<T>(buffer: DataView | undefined): T[] {
  return (arrow(buffer)?.toArray() ?? []) as T[];
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function render({ model, el }: RenderProps<Model>): () => void {
  const root = h("div", { class: "rungroup-explorer" });
  const channel = new Channel(model as AnyModel);
  const set = (changes: Partial<Model>) => {
    for (const [key, value] of Object.entries(changes)) model.set(key as keyof Model, value as never);
    model.save_changes();
  };

  const errorBox = h("div", { class: "rg-error", attrs: { role: "alert", hidden: "" } });
  let localError = "";
  const showError = () => {
    const text = localError || model.get("error");
    errorBox.textContent = text;
    errorBox.toggleAttribute("hidden", !text);
  };

  const chart = new ChartPanel(root);
  const table = new RunsTable({
    fetch: async (offset, limit) => {
      const [, buffers] = await channel.request("rows", { offset, limit });
      return rows<TableRow>(buffers[0]);
    },
    pageSize: () => model.get("info").page_size,
    sort: (column) => {
      const [current, direction] = model.get("sort");
      const next = current === column && direction !== "desc" ? "desc" : "asc";
      set({ sort: [column, next] });
    },
    toggleExpanded: (key) => {
      const expanded = model.get("expanded");
      set({ expanded: expanded.includes(key) ? expanded.filter((k) => k !== key) : [...expanded, key] });
    },
    toggleHidden: (row) => {
      channel
        .request("hide", { row_kind: row._kind, key: row._key, hide: !row._hidden })
        .catch((error: unknown) => {
          localError = message(error);
          showError();
        });
    },
    focus: (series) => set({ focus: series, expanded: [] }),
    hover: (series) => {
      chart.highlight(series);
      table.highlight(series);
    },
    colorOf: (series) => chart.colorOf(series) ?? (focus ? chart.colorOf(focus) : null),
    pickColumns: (names) => set({ table_columns: names }),
  });
  chart.onHover((series) => {
    table.highlight(series);
    chart.highlight(series);
  });

  const onExport = async (kind: ExportKind) => {
    try {
      if (kind === "png" || kind === "svg") {
        const url = await chart.image(kind);
        const link = h("a", { attrs: { href: url, download: `rungroup-chart.${kind}` } });
        link.style.display = "none";
        document.body.append(link);
        link.click();
        link.remove();
        return;
      }
      const [reply, buffers] = await channel.request("export", { what: kind });
      const buffer = buffers[0];
      const bytes = new Uint8Array(buffer.byteLength);
      bytes.set(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
      download(bytes, String(reply.filename), String(reply.mime));
    } catch (error) {
      localError = message(error);
      showError();
    }
  };
  const controls = buildControls(model, (kind) => void onExport(kind));

  const back = h("button", {
    class: "rg-link rg-back",
    text: "← All groups",
    on: { click: () => set({ focus: "" }) },
  });
  const crumbName = h("span", { class: "rg-crumb-name" });
  const breadcrumb = h("div", { class: "rg-breadcrumb", attrs: { hidden: "" } }, [back, " / ", crumbName]);
  const status = h("div", { class: "rg-status" });

  root.append(
    controls.toolbar,
    controls.settings,
    errorBox,
    breadcrumb,
    h("div", { class: "rg-body" }, [table.el, chart.el]),
    status,
  );
  el.append(root);

  // --- data: one request per burst of changes; stale replies are dropped ---------------------
  let ticket = 0;
  let tableIdentity = "";
  let focus: string | null = null;
  let embeds = 0;
  let renders = 0;
  let charts = 0;
  let requests = 0;
  let scheduled = false;
  // A live update (the runs changed, same settings) keeps everything in place: the Vega view
  // gets new data, the table keeps its scroll position and shows its old rows until the new
  // ones arrive, and nothing dims.
  let liveOnly = false;
  // A live update that arrives while a request is in flight waits for it (else, with replies
  // slower than the refresh interval, each reply would be dropped as stale by the next one).
  let inflight = false;
  let liveAgain = false;
  let dimming: ReturnType<typeof setTimeout> | undefined;
  async function refresh(): Promise<void> {
    scheduled = false;
    const quiet = liveOnly;
    liveOnly = false;
    const mine = ++ticket;
    inflight = true;
    // `rg-busy` marks a request in flight; the chart dims only if it takes a while (dimming
    // at once would restyle and re-layer the page twice per quick update)
    clearTimeout(dimming);
    if (!quiet) {
      root.classList.add("rg-busy");
      dimming = setTimeout(() => root.classList.add("rg-dim"), DIM_AFTER_MS);
    }
    const before = channel.bytesReceived;
    const sent = performance.now();
    root.dataset.requests = String(++requests);
    // Both asked at once: the kernel answers the chart first and builds the table's rows
    // while the browser draws it.
    const charted = channel.request("data", { spec_key: chart.specKey });
    const tabled = channel.request("table", { limit: model.get("info").page_size });
    tabled.catch(() => undefined); // awaited below, unless the chart fails first
    try {
      const [reply, buffers] = (await charted) as [DataReply, DataView[]];
      if (mine !== ticket) return;
      const received = performance.now();
      localError = "";
      if (reply.spec !== null) embeds++;
      const series = columnsOf(buffers[0]);
      const decoded = performance.now();
      await chart.show(reply.spec, reply.spec_key, series);
      const drawnAt = performance.now();
      if (mine !== ticket) return;
      charts++;
      // when the request left and the chart was drawn, on the page's clock (for the benchmark)
      root.dataset.chartTimes = JSON.stringify([sent, drawnAt]);
      root.dataset.charts = String(charts);
      // the table's rows wait for the frame that shows the chart (laying them out first
      // would hold that frame back)
      await afterNextPaint();
      const [tableReply, tableBuffers] = (await tabled) as [TableReply, DataView[]];
      const tableReceived = performance.now();
      if (mine !== ticket) return;
      focus = tableReply.focus_label;
      const identity = JSON.stringify([focus, model.get("grouping"), model.get("group_by"), model.get("reverse")]);
      table.setData(tableReply.table, rows<TableRow>(tableBuffers[0]), model.get("sort"), identity !== tableIdentity, quiet);
      tableIdentity = identity;
      breadcrumb.toggleAttribute("hidden", focus === null);
      crumbName.textContent = focus ?? "";
      status.textContent =
        `${tableReply.runs} runs` +
        (model.get("grouping") ? ` · ${tableReply.groups} groups` : "") +
        ` · ${reply.chart_rows} points`;
      if (model.get("live")) status.textContent += ` · live, updated ${new Date().toLocaleTimeString()}`;
      renders++;
      root.dataset.renders = String(renders);
      root.dataset.revision = String(model.get("revision"));
      root.dataset.total = String(tableReply.table.total);
      root.dataset.points = String(reply.chart_rows);
      const held = chart.rows();
      root.dataset.viewRows = String(held.rows);
      root.dataset.viewLineSum = String(held.lineSum);
      root.dataset.bytes = String(channel.bytesReceived - before);
      root.dataset.timings = JSON.stringify({ ...reply.timings, ...tableReply.timings });
      root.dataset.embedded = String(embeds);
      root.dataset.paintMs = String(Math.round(drawnAt - received));
      const kernel = reply.timings ?? {};
      root.dataset.phases = JSON.stringify({
        request_ms: Math.round(received - sent),
        to_kernel_ms: Math.round((kernel.kernel_in_epoch_ms ?? NaN) - (performance.timeOrigin + sent)),
        from_kernel_ms: Math.round(performance.timeOrigin + received - (kernel.kernel_out_epoch_ms ?? NaN)),
        decode_ms: Math.round(decoded - received),
        vega_ms: Math.round(drawnAt - decoded),
        table_wait_ms: Math.round(tableReceived - drawnAt),
        table_ms: Math.round(performance.now() - tableReceived),
      });
      const drawn = chart.counts();
      root.dataset.lines = String(drawn.lines);
      root.dataset.bands = String(drawn.bands);
      root.dataset.misplaced = String(drawn.misplaced);
    } catch (error) {
      if (mine === ticket) localError = message(error);
      root.dataset.errors = String(Number(root.dataset.errors ?? "0") + 1);
    } finally {
      if (mine === ticket) {
        clearTimeout(dimming);
        root.classList.remove("rg-busy", "rg-dim");
        inflight = false;
        if (liveAgain) {
          liveAgain = false;
          schedule(true);
        }
      }
      showError();
    }
  }
  const schedule = (live = false) => {
    if (live && inflight && !scheduled) {
      liveAgain = true;
      return;
    }
    if (scheduled) {
      if (!live) liveOnly = false;
      return;
    }
    scheduled = true;
    liveOnly = live;
    queueMicrotask(() => void refresh());
  };

  const onChange = () => {
    controls.update();
    schedule();
  };
  const fields = [...model.get("info").fields, ...UI_FIELDS];
  for (const name of fields) model.on(`change:${name}`, onChange);
  const onInfo = () => controls.update();
  const onError = () => showError();
  const onRevision = () => schedule(true);
  model.on("change:info", onInfo);
  model.on("change:error", onError);
  model.on("change:revision", onRevision);
  for (const name of ["live", "refresh_interval", "followable"]) model.on(`change:${name}`, onInfo);

  // Re-embed with the new colours when JupyterLab switches between light and dark themes.
  const themeObserver = new MutationObserver(() => {
    chart.invalidate();
    schedule();
  });
  themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  // A click outside an open menu (metrics, export, columns) closes it.
  const closeMenus = (event: MouseEvent) => {
    const target = event.target as Node | null;
    for (const menu of root.querySelectorAll<HTMLElement>(".rg-popover:not([hidden])")) {
      if (!target || !menu.parentElement?.contains(target)) menu.setAttribute("hidden", "");
    }
  };
  document.addEventListener("click", closeMenus, true);

  controls.update();
  schedule();

  return () => {
    for (const name of fields) model.off(`change:${name}`, onChange);
    model.off("change:info", onInfo);
    model.off("change:error", onError);
    model.off("change:revision", onRevision);
    for (const name of ["live", "refresh_interval", "followable"]) model.off(`change:${name}`, onInfo);
    themeObserver.disconnect();
    document.removeEventListener("click", closeMenus, true);
    channel.close();
    clearTimeout(dimming);
    chart.destroy();
  };
}

export default { render };
