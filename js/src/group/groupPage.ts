// The group page's breadcrumb ("← All groups / name"), shown while one group is open.
import { h } from "../dom";

export interface Breadcrumb {
  el: HTMLElement;
  /** The open group's label, or null on the page of all groups. */
  show(focus: string | null): void;
}

export function breadcrumb(back: () => void): Breadcrumb {
  const name = h("span", { class: "rg-crumb-name" });
  const el = h("div", { class: "rg-breadcrumb", attrs: { hidden: "" } }, [
    h("button", { class: "rg-link rg-back", text: "← All groups", on: { click: back } }),
    " / ",
    name,
  ]);
  return {
    el,
    show(focus) {
      el.toggleAttribute("hidden", focus === null);
      name.textContent = focus ?? "";
    },
  };
}
