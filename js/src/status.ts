// The error box above the table (the last failure, from the browser or from Python's `error`
// trait) and the status line under it (runs, groups, points, live).
import { h } from "./dom";
import type { WidgetModel } from "./model";

export interface ErrorBox {
  el: HTMLElement;
  /** The browser's own failure ("" clears it); Python's `error` shows when there is none. */
  set(text: string): void;
  show(): void;
}

export function errorBox(model: WidgetModel): ErrorBox {
  const el = h("div", { class: "rg-error", attrs: { role: "alert", hidden: "" } });
  let local = "";
  const show = () => {
    const text = local || model.get("error");
    el.textContent = text;
    el.toggleAttribute("hidden", !text);
  };
  return {
    el,
    set(text) {
      local = text;
    },
    show,
  };
}

export interface StatusCounts {
  runs: number;
  groups: number;
  points: number;
  /** The open group page (its runs are `runs`). */
  group?: string | null;
}

export function statusText(counts: StatusCounts, grouping: boolean, live: boolean): string {
  let text = counts.group
    ? `group ${counts.group} · ${counts.runs} runs · ${counts.points} points`
    : `${counts.runs} runs` + (grouping ? ` · ${counts.groups} groups` : "") + ` · ${counts.points} points`;
  if (live) text += ` · live, updated ${new Date().toLocaleTimeString()}`;
  return text;
}
