// Displaying an Explorer makes two outputs: an image of its chart for viewers that cannot run
// the widget (src/rungroup/widget/static.py), then the widget. Where the widget renders, the
// image is not needed: hide the output just before the widget's if it is that image.
const MARKER = "rungroup-static";
/** Output areas of JupyterLab and Notebook 7. */
const OUTPUT = ".jp-OutputArea-child";

/** Hide the fallback image output next to `el`'s output (once `el` is in the page). */
export function hideFallback(el: HTMLElement, tries = 20): void {
  const output = el.closest(OUTPUT);
  if (output === null) {
    // not attached yet, or a front end without these output areas (nothing to hide there)
    if (tries > 0 && !el.isConnected) requestAnimationFrame(() => hideFallback(el, tries - 1));
    return;
  }
  const before = output.previousElementSibling;
  // style, not the hidden attribute: the output area's own CSS sets its display
  if (before instanceof HTMLElement && before.querySelector(`.${MARKER}`) !== null) before.style.display = "none";
}
