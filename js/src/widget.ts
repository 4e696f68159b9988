// rungroup.Explorer front end: wires the parts together (toolbar, settings panel, export
// menu, runs table, charts, group page, status), the request channel and the scheduler.
// Settings are synced traits; rows and series come from Python as Arrow IPC buffers in
// id-tagged request/response messages (channel.ts, src/rungroup/widget/messages.py).
import type { RenderProps } from "@anywidget/types";
import "./widget.css";
import { Channel, arrowRows, errorText } from "./channel";
import { ChartPanel } from "./chart/chart";
import { ComparePanel, type CompareInfo, panelSwitch } from "./compare/compare";
import { h } from "./dom";
import { exportMenu } from "./export/exportMenu";
import { hideFallback } from "./fallback";
import { wireMenus } from "./menus";
import { breadcrumb } from "./group/groupPage";
import { setTraits } from "./model";
import { attachProbe } from "./probe";
import { repaint } from "./refresh";
import { Scheduler } from "./scheduler";
import { settingsPanel } from "./settings/settings";
import { errorBox } from "./status";
import { RunsTable } from "./table/table";
import { toolbar } from "./toolbar/toolbar";
import type { Model, TableRow } from "./types";

/** Traits whose change only redraws the controls (no data request). */
const CONTROL_TRAITS = ["info", "live", "refresh_interval", "followable"];

function render({ model, el }: RenderProps<Model>): () => void {
  const set = (changes: Partial<Model>) => setTraits(model, changes);
  const root = h("div", { class: "rungroup-explorer" });
  const chart = new ChartPanel(root);
  const probe = attachProbe(root, () => {
    const held = chart.rows();
    return { viewRows: held.rows, viewLineSum: held.lineSum, ...chart.counts(), ...chart.drawnStyle() };
  });
  const channel = new Channel(model);
  const errors = errorBox(model);
  const fail = (error: unknown) => {
    errors.set(errorText(error));
    errors.show();
  };
  const focus = { label: null as string | null };

  const hover = (series: string | null) => {
    chart.highlight(series);
    table.highlight(series);
    probe.hover = series ?? "";
    probe.emphasised = chart.emphasised;
    probe.tips = chart.tips();
  };
  const table: RunsTable = new RunsTable({
    fetch: async (offset, limit) => {
      const [, buffers] = await channel.request("rows", { offset, limit });
      return arrowRows<TableRow>(buffers[0]);
    },
    sort: (column) => {
      const [current, direction] = model.get("sort");
      set({ sort: [column, current === column && direction !== "desc" ? "desc" : "asc"] });
    },
    toggleExpanded: (key) => {
      const expanded = model.get("expanded");
      set({ expanded: expanded.includes(key) ? expanded.filter((k) => k !== key) : [...expanded, key] });
    },
    toggleHidden: (row) => {
      channel.request("hide", { row_kind: row._kind, key: row._key, hide: !row._hidden }).catch(fail);
    },
    focus: (series) => set({ focus: series, expanded: [] }),
    hover,
    colorOf: (series) => chart.colorOf(series),
    pickColumns: (names) => set({ table_columns: names }),
  });
  chart.onHover(hover);
  probe.hoverAt = async (fx, fy) => {
    const panel = chart.drawnStyle().panels[0];
    if (!panel) return Number.NaN;
    const started = performance.now();
    probe.tips = chart.pointAt(panel.x + fx * panel.width, panel.y + fy * panel.height);
    await chart.settled();
    return performance.now() - started;
  };
  // another number of panel columns fits: embed again at the new size
  chart.onRelayout = () => scheduler.schedule();

  const settings = settingsPanel(model);
  const tools = toolbar(model, settings.el, exportMenu({ channel, image: (kind, background) => chart.image(kind, background), imageName: () => chart.fileName, fail }), async () => {
    const [reply] = await channel.request("suggest_key", {});
    return typeof reply.key === "string" ? reply.key : null;
  });
  const crumb = breadcrumb(() => set({ focus: "" }));
  const status = h("div", { class: "rg-status" });
  const compare = new ComparePanel(model, channel, root, fail, hover);
  const compareInfo = () => (model.get("info") as unknown as { compare: CompareInfo }).compare;
  const switcher = panelSwitch(model, () => compareInfo().panels);
  // the switch sits right above what it switches (the toolbar's controls are the charts')
  const tabs = h("div", { class: "rg-panel-tabs" }, [switcher.el]);
  root.append(tools.el, settings.el, errors.el, crumb.el, h("div", { class: "rg-body" }, [table.el, tabs, chart.el, compare.el]), status);
  el.append(root);
  hideFallback(el);
  const showPanel = () => {
    switcher.update();
    chart.el.hidden = compare.visible;
    compare.updateControls();
    compare.schedule();
  };

  const scheduler: Scheduler = new Scheduler(
    repaint({ root, model, channel, chart, table, breadcrumb: crumb, status, errors, probe, focus }, () => scheduler),
  );
  const updateControls = () => {
    tools.update();
    settings.update();
    switcher.update();
    compare.updateControls();
  };

  // The View's fields (from Python) and the widget's own display traits ask for new data.
  const { fields, ui_fields } = model.get("info");
  const dataTraits = [...(fields ?? []), ...(ui_fields ?? [])];
  const onChange = () => {
    updateControls();
    scheduler.schedule();
    compare.schedule();
  };
  const onError = () => errors.show();
  const onRevision = () => {
    scheduler.schedule(true);
    compare.schedule();
  };
  const onCompare = () => {
    compare.updateControls();
    compare.schedule();
  };
  for (const name of dataTraits) model.on(`change:${name}`, onChange);
  for (const name of CONTROL_TRAITS) model.on(`change:${name}`, updateControls);
  model.on("change:error", onError);
  model.on("change:revision", onRevision);
  model.on("change:panel", showPanel);
  model.on("change:compare", onCompare);

  // Re-embed with the new colours when JupyterLab switches between light and dark themes.
  const themeObserver = new MutationObserver(() => {
    chart.invalidate();
    scheduler.schedule();
    compare.schedule();
  });
  themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  // Menus (metrics, export, columns) open inside the widget and close on Escape or a click
  // outside them.
  const unwireMenus = wireMenus(root);

  updateControls();
  scheduler.schedule();
  showPanel();

  return () => {
    for (const name of dataTraits) model.off(`change:${name}`, onChange);
    for (const name of CONTROL_TRAITS) model.off(`change:${name}`, updateControls);
    model.off("change:error", onError);
    model.off("change:revision", onRevision);
    model.off("change:panel", showPanel);
    model.off("change:compare", onCompare);
    themeObserver.disconnect();
    unwireMenus();
    channel.close();
    chart.destroy();
    compare.destroy();
  };
}

export default { render };
