// Tiny DOM helpers. Every piece of text goes in through textContent, never innerHTML:
// run names, groups, tags and config values come from users and must never become markup.

export type Child = Node | string | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  children: Child[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title !== undefined) node.title = props.title;
  if (props.attrs) {
    for (const [name, value] of Object.entries(props.attrs)) node.setAttribute(name, value);
  }
  if (props.on) {
    for (const [name, handler] of Object.entries(props.on)) {
      node.addEventListener(name, handler as EventListener);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Replace the options of a <select> (values and labels as text). */
export function setOptions(
  select: HTMLSelectElement,
  options: { value: string; label: string; group?: string }[],
  selected: string,
): void {
  const same =
    select.options.length === options.length &&
    options.every((o, i) => select.options[i].value === o.value && select.options[i].text === o.label);
  if (!same) {
    const option = (o: { value: string; label: string }) => {
      const node = document.createElement("option");
      node.value = o.value;
      node.textContent = o.label;
      return node;
    };
    // options with a `group` go last, under a heading of their group
    const groups = [...new Set(options.filter((o) => o.group !== undefined).map((o) => o.group as string))];
    select.replaceChildren(
      ...options.filter((o) => o.group === undefined).map(option),
      ...groups.map((label) => {
        const group = document.createElement("optgroup");
        group.label = label;
        group.append(...options.filter((o) => o.group === label).map(option));
        return group;
      }),
    );
  }
  select.value = selected;
}

/** Have the browser save `url` (a data: or blob: URL; no network involved) as `filename`. */
export function saveURL(url: string, filename: string): void {
  const link = h("a", { attrs: { href: url, download: filename } });
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
}

/** Save bytes as a file through the browser's download machinery. */
export function download(data: BlobPart, filename: string, mime: string): void {
  const url = URL.createObjectURL(new Blob([data], { type: mime }));
  saveURL(url, filename);
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A labelled control of the toolbar or the settings panel. */
export function field(label: string, control: HTMLElement, cls = ""): HTMLElement {
  return h("label", { class: `rg-field ${cls}` }, [h("span", { class: "rg-label", text: label }), control]);
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return (...args: A) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      fn(...args);
    }, ms);
  };
}
