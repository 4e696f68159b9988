// The advanced settings panel: line, band, smoothing and the other View settings. Choices,
// their labels and help come from Python (`info.choices`); `update()` reads the traits back,
// so a change made from Python shows up here too.
import { field, h, setOptions } from "../dom";
import { setTraits, type WidgetModel } from "../model";
import type { Choice, Info, Model } from "../types";

function choiceOf(info: Info, name: string, value: string): Choice | undefined {
  return info.choices?.[name]?.find((choice) => choice.value === value);
}

/** What the strength means for a smoothing method and x axis. */
function strengthHint(method: Choice | undefined, x: string): string {
  const help = method?.param_help ?? {};
  return (help[x] ?? help["*"] ?? "").replace("{x}", x);
}

export interface SettingsPanel {
  el: HTMLElement;
  update(): void;
}

function numberInput(cls: string, attrs: Record<string, string>, write: (value: number) => void): HTMLInputElement {
  const element = h("input", { class: `rg-input rg-number ${cls}`, attrs: { type: "number", ...attrs } });
  element.addEventListener("change", () => {
    const value = Number(element.value);
    if (element.value !== "" && Number.isFinite(value)) write(value);
  });
  return element;
}

const percent = (fraction: number) => String(Math.round(fraction * 1000) / 10);

export function settingsPanel(model: WidgetModel): SettingsPanel {
  const set = (changes: Partial<Model>) => setTraits(model, changes);
  const choiceSelects: [string, HTMLSelectElement][] = [];
  const choice = (name: string) => {
    const element = h("select", { class: `rg-select rg-${name.replace("_", "-")}`, attrs: { "aria-label": name } });
    element.addEventListener("change", () => {
      if (name === "smoothing") {
        // each method starts from its own strength (an EMA weight is no window length)
        const param = choiceOf(model.get("info"), "smoothing", element.value)?.param;
        set({ smoothing: element.value, ...(param === undefined ? {} : { smoothing_param: param }) });
      } else {
        set({ [name]: element.value } as Partial<Model>);
      }
    });
    choiceSelects.push([name, element]);
    return element;
  };

  const qLow = numberInput("rg-q-low", { min: "0", max: "100", step: "1" }, (v) =>
    set({ quantiles: [v / 100, model.get("quantiles")[1]] }),
  );
  const qHigh = numberInput("rg-q-high", { min: "0", max: "100", step: "1" }, (v) =>
    set({ quantiles: [model.get("quantiles")[0], v / 100] }),
  );
  const quantileField = h("span", { class: "rg-field rg-quantiles" }, [
    h("span", { class: "rg-label", text: "percentiles" }),
    qLow,
    "–",
    qHigh,
  ]);
  const ciLevel = numberInput("rg-ci-level", { min: "1", max: "99", step: "1" }, (v) => set({ ci_level: v / 100 }));
  const ciField = h("span", { class: "rg-field rg-ci" }, [
    h("span", { class: "rg-label", text: "level %" }),
    ciLevel,
    choice("ci_method"),
  ]);
  const strength = numberInput("rg-strength", { min: "0", step: "any" }, (v) => set({ smoothing_param: v }));
  const strengthField = field("strength", strength, "rg-strength-field");
  const orderField = field("smooth", choice("smooth_order"), "rg-order-field");
  const logBox = h("input", { class: "rg-log-y", attrs: { type: "checkbox" } });
  logBox.addEventListener("change", () => set({ log_y: logBox.checked }));
  const interval = numberInput("rg-refresh-interval", { min: "0.2", step: "0.5" }, (v) =>
    set({ refresh_interval: Math.max(0.2, v) }),
  );
  const intervalField = field("live refresh (s)", interval, "rg-interval-field");
  const minRuns = numberInput("rg-min-runs", { min: "1", step: "1" }, (v) => set({ min_runs: Math.max(1, Math.round(v)) }));
  const points = numberInput("rg-points", { min: "2", step: "1" }, (v) => set({ points: Math.max(2, Math.round(v)) }));

  const el = h("div", { class: "rg-settings", attrs: { hidden: "" } }, [
    field("line", choice("line")),
    field("band", choice("band")),
    quantileField,
    ciField,
    field("alignment", choice("align")),
    field("smoothing", choice("smoothing")),
    strengthField,
    orderField,
    h("label", { class: "rg-check" }, [logBox, "log y"]),
    field("min runs", minRuns),
    field("max points", points),
    intervalField,
  ]);

  function update(): void {
    const info = model.get("info");
    const choices = info.choices ?? {};
    for (const [name, select] of choiceSelects) {
      setOptions(select, choices[name] ?? [], String(model.get(name)));
    }
    // the percentiles and the level show with the band that reads them
    const uses = choiceOf(info, "band", model.get("band"))?.uses ?? [];
    quantileField.hidden = !uses.includes("quantiles");
    ciField.hidden = !uses.includes("ci_level");
    const [low, high] = model.get("quantiles");
    qLow.value = percent(low);
    qHigh.value = percent(high);
    ciLevel.value = percent(model.get("ci_level"));
    const smoothing = model.get("smoothing");
    strength.value = String(model.get("smoothing_param"));
    strengthField.toggleAttribute("hidden", smoothing === "none");
    orderField.toggleAttribute("hidden", smoothing === "none");
    const method = choiceOf(info, "smoothing", smoothing);
    strength.step = method?.param_step ?? "any";
    strength.max = method?.param_max == null ? "" : String(method.param_max);
    strength.title = strengthHint(method, model.get("x"));
    logBox.checked = model.get("log_y");
    minRuns.value = String(model.get("min_runs"));
    points.value = String(model.get("points"));
    interval.value = String(model.get("refresh_interval"));
    intervalField.toggleAttribute("hidden", !model.get("followable"));
  }

  return { el, update };
}
