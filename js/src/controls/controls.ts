// The toolbar (Group toggle, group-by levels, reverse, metrics, x axis, run filter), the
// advanced settings panel and the Export menu. Controls write traits; `update()` reads them
// back, so a change made from Python shows up here too.
import type { AnyModel } from "@anywidget/types";
import { debounce, h, setOptions } from "../dom";
import type { Choice, Info, Model } from "../types";

/** The choice a setting's menu offers for `value` (labels and help come from Python). */
function choiceOf(info: Info, name: string, value: string): Choice | undefined {
  return info.choices[name]?.find((choice) => choice.value === value);
}

/** What the strength means for a smoothing method and x axis. */
function strengthHint(info: Info, smoothing: string, x: string): string {
  const help = choiceOf(info, "smoothing", smoothing)?.param_help ?? {};
  return (help[x] ?? help["*"] ?? "").replace("{x}", x);
}

export type ExportKind = "csv" | "parquet" | "recipe" | "groups_csv" | "png" | "svg";

export interface Controls {
  toolbar: HTMLElement;
  settings: HTMLElement;
  update(): void;
}

function choices(info: Info, name: string): { value: string; label: string }[] {
  return (info.choices[name] ?? []).map(({ value, label }) => ({ value, label }));
}

function field(label: string, control: HTMLElement, cls = ""): HTMLElement {
  return h("label", { class: `rg-field ${cls}` }, [h("span", { class: "rg-label", text: label }), control]);
}

export function buildControls(
  model: AnyModel<Model>,
  onExport: (kind: ExportKind) => void,
): Controls {
  const set = (changes: Partial<Model>) => {
    for (const [key, value] of Object.entries(changes)) model.set(key as keyof Model, value as never);
    model.save_changes();
  };
  const info = () => model.get("info");

  // --- Group toggle -------------------------------------------------------------------
  const groupButton = h("button", {
    class: "rg-button rg-toggle rg-group-toggle",
    text: "Group",
    title: "Group runs (off: one line per run)",
    on: { click: () => set({ grouping: !model.get("grouping") }) },
  });

  // --- Live toggle (follow the source while runs are written) ------------------------------
  const liveButton = h("button", {
    class: "rg-button rg-toggle rg-live-toggle",
    title: "Live: follow the runs while they are written",
    on: { click: () => set({ live: !model.get("live") }) },
  }, [h("span", { class: "rg-live-dot" }), "Live"]);

  // --- group-by levels ------------------------------------------------------------------
  const levels = h("span", { class: "rg-levels" });
  const addLevel = h("button", {
    class: "rg-icon rg-add-level",
    text: "+",
    title: "Add a nesting level",
    on: {
      click: () => {
        const used = new Set(model.get("group_by"));
        // the first column that would split the groups further (else any unused one)
        const unused = info().columns.filter((c) => !used.has(c.name));
        const next = unused.find((c) => c.distinct > 1) ?? unused[0];
        if (next) set({ group_by: [...model.get("group_by"), next.name] });
      },
    },
  });
  const reverseBox = h("input", { attrs: { type: "checkbox" } });
  reverseBox.addEventListener("change", () => set({ reverse: reverseBox.checked }));
  const reverse = h("label", { class: "rg-check rg-reverse", title: "Group by every config key except the chosen ones" }, [
    reverseBox,
    "all config except",
  ]);

  function renderLevels(): void {
    const groupBy = model.get("group_by");
    const columns = info().columns;
    const nodes: HTMLElement[] = [];
    groupBy.forEach((name, level) => {
      const select = h("select", { class: "rg-select rg-group-by", attrs: { "aria-label": `Group by, level ${level + 1}` } });
      const options = columns.map((c) => ({ value: c.name, label: `${c.name} (${c.distinct})` }));
      if (!columns.some((c) => c.name === name)) options.unshift({ value: name, label: name });
      setOptions(select, options, name);
      select.addEventListener("change", () => {
        const next = [...model.get("group_by")];
        next[level] = select.value;
        set({ group_by: next });
      });
      nodes.push(select);
      if (groupBy.length > 1) {
        nodes.push(
          h("button", {
            class: "rg-icon rg-remove-level",
            text: "×",
            title: "Remove this level",
            on: { click: () => set({ group_by: model.get("group_by").filter((_, i) => i !== level) }) },
          }),
        );
      }
    });
    levels.replaceChildren(...nodes);
  }

  // --- metrics multi-select ---------------------------------------------------------------
  const metricsButton = h("button", { class: "rg-button rg-metrics-button", title: "Metrics to chart" });
  const metricsMenu = h("div", { class: "rg-popover rg-metrics-menu", attrs: { hidden: "" } });
  metricsButton.addEventListener("click", () => metricsMenu.toggleAttribute("hidden"));
  function renderMetrics(): void {
    const all = info().metrics;
    const chosen = model.get("metrics");
    const shown = chosen.length ? chosen : all;
    metricsButton.textContent = chosen.length ? `Metrics ${chosen.length}/${all.length} ▾` : "Metrics: all ▾";
    metricsMenu.replaceChildren(
      ...all.map((name) => {
        const box = h("input", { attrs: { type: "checkbox", value: name } });
        box.checked = shown.includes(name);
        box.addEventListener("change", () => {
          const current = model.get("metrics").length ? model.get("metrics") : all;
          const next = box.checked ? all.filter((m) => m === name || current.includes(m)) : current.filter((m) => m !== name);
          if (next.length === 0) {
            box.checked = true; // at least one metric stays
            return;
          }
          set({ metrics: next.length === all.length ? [] : next });
        });
        return h("label", { class: "rg-check" }, [box, name]);
      }),
    );
  }

  // --- x axis, filter -------------------------------------------------------------------------
  const xSelect = h("select", { class: "rg-select rg-x", attrs: { "aria-label": "x axis" } });
  xSelect.addEventListener("change", () => set({ x: xSelect.value }));
  const search = h("input", {
    class: "rg-input rg-search",
    attrs: { type: "search", placeholder: "Filter runs…", "aria-label": "Filter runs" },
  });
  const pushSearch = debounce(() => set({ search: search.value }), 250);
  search.addEventListener("input", pushSearch);

  // --- settings panel ---------------------------------------------------------------------------
  const settingsButton = h("button", { class: "rg-button rg-settings-button", text: "Settings", title: "Advanced settings" });
  const select = (name: keyof Model, cls: string) => {
    const element = h("select", { class: `rg-select ${cls}`, attrs: { "aria-label": String(name) } });
    element.addEventListener("change", () => {
      if (name === "smoothing") {
        const param = choiceOf(info(), "smoothing", element.value)?.param;
        set({ smoothing: element.value, ...(param === undefined ? {} : { smoothing_param: param }) });
      } else {
        set({ [name]: element.value } as Partial<Model>);
      }
    });
    return element;
  };
  const number = (cls: string, attrs: Record<string, string>, write: (value: number) => void) => {
    const element = h("input", { class: `rg-input rg-number ${cls}`, attrs: { type: "number", ...attrs } });
    element.addEventListener("change", () => {
      const value = Number(element.value);
      if (element.value !== "" && Number.isFinite(value)) write(value);
    });
    return element;
  };
  const lineSelect = select("line", "rg-line");
  const bandSelect = select("band", "rg-band");
  const qLow = number("rg-q-low", { min: "0", max: "100", step: "1" }, (v) =>
    set({ quantiles: [v / 100, model.get("quantiles")[1]] }),
  );
  const qHigh = number("rg-q-high", { min: "0", max: "100", step: "1" }, (v) =>
    set({ quantiles: [model.get("quantiles")[0], v / 100] }),
  );
  const quantileField = h("span", { class: "rg-field rg-quantiles" }, [
    h("span", { class: "rg-label", text: "percentiles" }),
    qLow,
    "–",
    qHigh,
  ]);
  const ciLevel = number("rg-ci-level", { min: "1", max: "99", step: "1" }, (v) => set({ ci_level: v / 100 }));
  const ciMethod = select("ci_method", "rg-ci-method");
  const ciField = h("span", { class: "rg-field rg-ci" }, [h("span", { class: "rg-label", text: "level %" }), ciLevel, ciMethod]);
  const alignSelect = select("align", "rg-align");
  const smoothingSelect = select("smoothing", "rg-smoothing");
  const strength = number("rg-strength", { min: "0", step: "any" }, (v) => set({ smoothing_param: v }));
  const orderSelect = select("smooth_order", "rg-smooth-order");
  const logBox = h("input", { class: "rg-log-y", attrs: { type: "checkbox" } });
  logBox.addEventListener("change", () => set({ log_y: logBox.checked }));
  const interval = number("rg-refresh-interval", { min: "0.2", step: "0.5" }, (v) =>
    set({ refresh_interval: Math.max(0.2, v) }),
  );
  const minRuns = number("rg-min-runs", { min: "1", step: "1" }, (v) => set({ min_runs: Math.max(1, Math.round(v)) }));
  const points = number("rg-points", { min: "2", step: "1" }, (v) => set({ points: Math.max(2, Math.round(v)) }));

  const settings = h("div", { class: "rg-settings", attrs: { hidden: "" } }, [
    field("line", lineSelect),
    field("band", bandSelect),
    quantileField,
    ciField,
    field("alignment", alignSelect),
    field("smoothing", smoothingSelect),
    field("strength", strength, "rg-strength-field"),
    field("smooth", orderSelect, "rg-order-field"),
    h("label", { class: "rg-check" }, [logBox, "log y"]),
    field("min runs", minRuns),
    field("max points", points),
    field("live refresh (s)", interval, "rg-interval-field"),
  ]);
  settingsButton.addEventListener("click", () => {
    settings.toggleAttribute("hidden");
    settingsButton.classList.toggle("rg-on", !settings.hasAttribute("hidden"));
  });

  // --- export menu ----------------------------------------------------------------------------------
  const exportButton = h("button", { class: "rg-button rg-export-button", text: "Export ▾" });
  const exportItems: [ExportKind, string][] = [
    ["csv", "Data as CSV"],
    ["parquet", "Data as Parquet (with recipe)"],
    ["recipe", "Recipe (JSON)"],
    ["groups_csv", "Group table as CSV"],
    ["png", "Chart as PNG"],
    ["svg", "Chart as SVG"],
  ];
  const exportMenu = h(
    "div",
    { class: "rg-popover rg-export-menu", attrs: { hidden: "", role: "menu" } },
    exportItems.map(([kind, label]) =>
      h("button", {
        class: "rg-menu-item",
        text: label,
        attrs: { role: "menuitem", "data-export": kind },
        on: {
          click: () => {
            exportMenu.setAttribute("hidden", "");
            onExport(kind);
          },
        },
      }),
    ),
  );
  exportButton.addEventListener("click", () => exportMenu.toggleAttribute("hidden"));

  const toolbar = h("div", { class: "rg-toolbar" }, [
    groupButton,
    h("span", { class: "rg-field rg-group-by-field" }, [h("span", { class: "rg-label", text: "by" }), levels, addLevel]),
    reverse,
    h("span", { class: "rg-menu-anchor" }, [metricsButton, metricsMenu]),
    field("x", xSelect),
    search,
    h("span", { class: "rg-spring" }),
    liveButton,
    settingsButton,
    h("span", { class: "rg-menu-anchor" }, [exportButton, exportMenu]),
  ]);

  function update(): void {
    const current = info();
    const grouping = model.get("grouping");
    groupButton.classList.toggle("rg-on", grouping);
    groupButton.setAttribute("aria-pressed", String(grouping));
    renderLevels();
    levels.parentElement?.classList.toggle("rg-disabled", !grouping);
    reverseBox.checked = model.get("reverse");
    renderMetrics();
    const xs = current.x_choices.map((value) => ({ value, label: choiceOf(current, "x", value)?.label ?? value }));
    setOptions(xSelect, xs, model.get("x"));
    if (document.activeElement !== search && search.value !== model.get("search")) search.value = model.get("search");
    setOptions(lineSelect, choices(current, "line"), model.get("line"));
    setOptions(bandSelect, choices(current, "band"), model.get("band"));
    const band = model.get("band");
    quantileField.hidden = band !== "quantile";
    ciField.hidden = band !== "ci";
    const [low, high] = model.get("quantiles");
    qLow.value = String(Math.round(low * 1000) / 10);
    qHigh.value = String(Math.round(high * 1000) / 10);
    ciLevel.value = String(Math.round(model.get("ci_level") * 1000) / 10);
    setOptions(ciMethod, choices(current, "ci_method"), model.get("ci_method"));
    setOptions(alignSelect, choices(current, "align"), model.get("align"));
    const smoothing = model.get("smoothing");
    setOptions(smoothingSelect, choices(current, "smoothing"), smoothing);
    strength.value = String(model.get("smoothing_param"));
    strength.closest(".rg-field")?.toggleAttribute("hidden", smoothing === "none");
    orderSelect.closest(".rg-field")?.toggleAttribute("hidden", smoothing === "none");
    const method = choiceOf(current, "smoothing", smoothing);
    strength.step = method?.param_step ?? "any";
    strength.max = method?.param_max == null ? "" : String(method.param_max);
    strength.title = strengthHint(current, smoothing, model.get("x"));
    setOptions(orderSelect, choices(current, "smooth_order"), model.get("smooth_order"));
    logBox.checked = model.get("log_y");
    minRuns.value = String(model.get("min_runs"));
    points.value = String(model.get("points"));
    const live = model.get("live");
    liveButton.classList.toggle("rg-on", live);
    liveButton.setAttribute("aria-pressed", String(live));
    liveButton.hidden = !model.get("followable");
    interval.value = String(model.get("refresh_interval"));
    interval.closest(".rg-field")?.toggleAttribute("hidden", !model.get("followable"));
  }

  return { toolbar, settings, update };
}
