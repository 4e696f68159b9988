// The Export menu: data and recipe files come from Python (an `export` request answered with
// the file's bytes), the chart's image from the Vega view in the browser.
import type { Channel } from "../channel";
import { download, h, saveURL } from "../dom";

export type ExportKind = "csv" | "parquet" | "recipe" | "groups_csv" | "png" | "png_white" | "svg";

const ITEMS: [ExportKind, string][] = [
  ["csv", "Data as CSV"],
  ["parquet", "Data as Parquet (with recipe)"],
  ["recipe", "Recipe (JSON)"],
  ["groups_csv", "Group table as CSV"],
  ["png", "Chart as PNG"],
  ["png_white", "Chart as PNG, white background"],
  ["svg", "Chart as SVG"],
];

export interface ExportSources {
  channel: Channel;
  image(kind: "png" | "svg", background?: "theme" | "white"): Promise<string>;
  /** The chart image's file name without its suffix (what it shows: project, metrics, grouping). */
  imageName(): string;
  fail(error: unknown): void;
}

async function save(kind: ExportKind, sources: ExportSources): Promise<void> {
  if (kind === "png" || kind === "svg" || kind === "png_white") {
    const type = kind === "svg" ? "svg" : "png";
    saveURL(await sources.image(type, kind === "png_white" ? "white" : "theme"), `${sources.imageName()}.${type}`);
    return;
  }
  const [reply, buffers] = await sources.channel.request("export", { what: kind });
  const buffer = buffers[0];
  // a copy: the message's buffer may be a view into a larger one
  const bytes = new Uint8Array(buffer.byteLength);
  bytes.set(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
  download(bytes, String(reply.filename), String(reply.mime));
}

/** The Export button and its menu (an anchor for the toolbar). */
export function exportMenu(sources: ExportSources): HTMLElement {
  const button = h("button", { class: "rg-button rg-export-button", text: "Export ▾" });
  const menu = h(
    "div",
    { class: "rg-popover rg-export-menu", attrs: { hidden: "", role: "menu" } },
    ITEMS.map(([kind, label]) =>
      h("button", {
        class: "rg-menu-item",
        text: label,
        attrs: { role: "menuitem", "data-export": kind },
        on: {
          click: () => {
            menu.setAttribute("hidden", "");
            save(kind, sources).catch(sources.fail);
          },
        },
      }),
    ),
  );
  button.addEventListener("click", () => menu.toggleAttribute("hidden"));
  return h("span", { class: "rg-menu-anchor" }, [button, menu]);
}
