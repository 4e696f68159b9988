// The widget's menus (metrics, export, columns): they close on Escape and on a click outside
// them, and open inside the widget: aligned with their button's right edge, or its left edge
// when that would hang past the widget's left side (a wrapped toolbar puts buttons anywhere),
// never wider than the widget.
const POPOVER = ".rg-popover";

/** Place an opened menu inside `root`. */
export function place(menu: HTMLElement, root: HTMLElement): void {
  menu.style.left = "";
  menu.style.right = "";
  menu.style.maxWidth = `${Math.max(160, root.clientWidth - 8)}px`;
  const bounds = root.getBoundingClientRect();
  const box = menu.getBoundingClientRect();
  if (box.left < bounds.left) {
    // hanging past the left edge: open rightwards from the button's left edge instead
    menu.style.left = "0";
    menu.style.right = "auto";
    const moved = menu.getBoundingClientRect();
    if (moved.right > bounds.right) menu.style.left = `${bounds.right - moved.right}px`;
  }
}

function close(root: HTMLElement, keep: (menu: HTMLElement) => boolean = () => false): void {
  for (const menu of root.querySelectorAll<HTMLElement>(`${POPOVER}:not([hidden])`)) {
    if (!keep(menu)) menu.setAttribute("hidden", "");
  }
}

/** Wire the menus of `root`; returns what undoes it. */
export function wireMenus(root: HTMLElement): () => void {
  const opened = new MutationObserver((changes) => {
    for (const change of changes) {
      const menu = change.target as HTMLElement;
      if (menu.matches(POPOVER) && !menu.hasAttribute("hidden")) place(menu, root);
    }
  });
  opened.observe(root, { subtree: true, attributes: true, attributeFilter: ["hidden"] });
  // a click outside an open menu (and its button) closes it
  const onClick = (event: MouseEvent) => {
    const target = event.target as Node | null;
    close(root, (menu) => target !== null && menu.parentElement?.contains(target) === true);
  };
  const onKey = (event: KeyboardEvent) => {
    if (event.key !== "Escape" || root.querySelector(`${POPOVER}:not([hidden])`) === null) return;
    close(root);
    // Escape closes the menu, not JupyterLab's edit mode as well
    event.stopPropagation();
  };
  document.addEventListener("click", onClick, true);
  document.addEventListener("keydown", onKey, true);
  return () => {
    opened.disconnect();
    document.removeEventListener("click", onClick, true);
    document.removeEventListener("keydown", onKey, true);
  };
}
