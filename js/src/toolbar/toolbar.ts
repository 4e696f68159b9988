// The toolbar: Group toggle, group-by levels, reverse, metrics, x axis, run filter, Live,
// the Settings button and the Export menu. Controls write traits; `update()` reads them back,
// so a change made from Python shows up here too.
import { debounce, field, h, setOptions } from "../dom";
import { setTraits, type WidgetModel } from "../model";
import type { Model } from "../types";

export interface Toolbar {
  el: HTMLElement;
  update(): void;
}

function toggle(cls: string, title: string, trait: "grouping" | "live", model: WidgetModel, children: (Node | string)[]) {
  return h(
    "button",
    {
      class: `rg-button rg-toggle ${cls}`,
      title,
      on: { click: () => setTraits(model, { [trait]: !model.get(trait) }) },
    },
    children,
  );
}

function showPressed(button: HTMLElement, on: boolean): void {
  button.classList.toggle("rg-on", on);
  button.setAttribute("aria-pressed", String(on));
}

/** What a group-by select lists a column under: keys first, the others set apart. */
const APART = { identifier: "one value per run", continuous: "continuous values" } as const;

/** The group-by levels: one select per level, "+" adds the key that best splits the groups
 * (Python's `suggest_key`). */
function groupByLevels(model: WidgetModel, suggest: () => Promise<string | null>): { el: HTMLElement; update(): void } {
  const set = (changes: Partial<Model>) => setTraits(model, changes);
  const levels = h("span", { class: "rg-levels" });
  const add = h("button", {
    class: "rg-icon rg-add-level",
    text: "+",
    title: "Add a nesting level",
    on: {
      click: () => {
        suggest()
          .then((next) => {
            if (next) set({ group_by: [...model.get("group_by"), next] });
          })
          .catch(() => undefined);
      },
    },
  });
  const el = h("span", { class: "rg-field rg-group-by-field" }, [h("span", { class: "rg-label", text: "by" }), levels, add]);
  function update(): void {
    const groupBy = model.get("group_by");
    const columns = model.get("info").columns;
    const nodes: HTMLElement[] = [];
    groupBy.forEach((name, level) => {
      const select = h("select", { class: "rg-select rg-group-by", attrs: { "aria-label": `Group by, level ${level + 1}` } });
      const options: { value: string; label: string; group?: string }[] = columns.map((c) => ({
        value: c.name,
        label: `${c.name} (${c.distinct})`,
        group: c.kind === "identifier" || c.kind === "continuous" ? APART[c.kind] : undefined,
      }));
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
    el.classList.toggle("rg-disabled", !model.get("grouping"));
  }
  return { el, update };
}

/** The metrics menu: a checkbox per metric; all checked is stored as [] (every metric). */
function metricsMenu(model: WidgetModel): { el: HTMLElement; update(): void } {
  const button = h("button", { class: "rg-button rg-metrics-button", title: "Metrics to chart" });
  const menu = h("div", { class: "rg-popover rg-metrics-menu", attrs: { hidden: "" } });
  button.addEventListener("click", () => menu.toggleAttribute("hidden"));
  function update(): void {
    const all = model.get("info").metrics;
    const chosen = model.get("metrics");
    const shown = chosen.length ? chosen : all;
    button.textContent = chosen.length ? `Metrics ${chosen.length}/${all.length} ▾` : "Metrics: all ▾";
    menu.replaceChildren(
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
          setTraits(model, { metrics: next.length === all.length ? [] : next });
        });
        return h("label", { class: "rg-check" }, [box, name]);
      }),
    );
  }
  return { el: h("span", { class: "rg-menu-anchor" }, [button, menu]), update };
}

/** `settings`: the panel the Settings button opens; `exportMenu`: the Export anchor. */
export function toolbar(
  model: WidgetModel,
  settings: HTMLElement,
  exportMenu: HTMLElement,
  suggestKey: () => Promise<string | null>,
): Toolbar {
  const set = (changes: Partial<Model>) => setTraits(model, changes);
  const groupButton = toggle("rg-group-toggle", "Group runs (off: one line per run)", "grouping", model, ["Group"]);
  const liveButton = toggle("rg-live-toggle", "Live: follow the runs while they are written", "live", model, [
    h("span", { class: "rg-live-dot" }),
    "Live",
  ]);
  const levels = groupByLevels(model, suggestKey);
  const reverseBox = h("input", { attrs: { type: "checkbox" } });
  reverseBox.addEventListener("change", () => set({ reverse: reverseBox.checked }));
  const reverse = h("label", { class: "rg-check rg-reverse", title: "Group by every config key except the chosen ones" }, [
    reverseBox,
    "all config except",
  ]);
  const metrics = metricsMenu(model);
  const xSelect = h("select", { class: "rg-select rg-x", attrs: { "aria-label": "x axis" } });
  xSelect.addEventListener("change", () => set({ x: xSelect.value }));
  const search = h("input", {
    class: "rg-input rg-search",
    attrs: { type: "search", placeholder: "Filter runs…", "aria-label": "Filter runs" },
  });
  search.addEventListener(
    "input",
    debounce(() => set({ search: search.value }), 250),
  );
  const settingsButton = h("button", {
    class: "rg-button rg-settings-button",
    text: "Settings",
    title: "Advanced settings",
    on: {
      click: () => {
        settings.toggleAttribute("hidden");
        settingsButton.classList.toggle("rg-on", !settings.hasAttribute("hidden"));
      },
    },
  });

  const el = h("div", { class: "rg-toolbar" }, [
    groupButton,
    levels.el,
    reverse,
    metrics.el,
    field("x", xSelect),
    search,
    h("span", { class: "rg-spring" }),
    liveButton,
    settingsButton,
    exportMenu,
  ]);

  function update(): void {
    showPressed(groupButton, model.get("grouping"));
    levels.update();
    reverseBox.checked = model.get("reverse");
    metrics.update();
    // the built-in axes have labels (info.choices.x); a metric is shown by its name
    const info = model.get("info");
    const labels = new Map((info.choices?.x ?? []).map((c) => [c.value, c.label]));
    const xs = info.x_choices.map((value) => ({ value, label: labels.get(value) ?? value }));
    setOptions(xSelect, xs, model.get("x"));
    if (document.activeElement !== search && search.value !== model.get("search")) search.value = model.get("search");
    showPressed(liveButton, model.get("live"));
    liveButton.hidden = !model.get("followable");
  }

  return { el, update };
}
