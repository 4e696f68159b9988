// The chart's colours and font from JupyterLab's theme variables.

function cssVar(root: HTMLElement, name: string, fallback: string): string {
  const value = getComputedStyle(root).getPropertyValue(name).trim();
  return value || fallback;
}

/** Vega config from JupyterLab's theme variables (with fallbacks outside JupyterLab). */
export function themeConfig(root: HTMLElement): Record<string, unknown> {
  const fg = cssVar(root, "--jp-ui-font-color1", "#1f1f1f");
  const fg2 = cssVar(root, "--jp-ui-font-color2", "#5f5f5f");
  const grid = cssVar(root, "--jp-border-color2", "#e0e0e0");
  const font = cssVar(root, "--jp-ui-font-family", "system-ui, sans-serif");
  const axis = { labelColor: fg2, titleColor: fg, gridColor: grid, domainColor: grid, tickColor: grid };
  return {
    background: "transparent",
    font,
    axis,
    legend: { labelColor: fg2, titleColor: fg },
    title: { color: fg },
    header: { labelColor: fg, titleColor: fg },
    view: { stroke: grid },
  };
}

/** Whether JupyterLab shows a dark theme (outside JupyterLab: the page's colour scheme). */
export function isDark(): boolean {
  const light = document.body.dataset.jpThemeLight;
  if (light !== undefined) return light === "false";
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
}

/** The band's opacity: a light band on a dark background needs more of it to be seen. */
export function bandOpacity(): number {
  return isDark() ? 0.32 : 0.2;
}

/** The page's background under the widget (for exported images, which must be opaque). */
export function themeBackground(root: HTMLElement): string {
  return cssVar(root, "--jp-layout-color0", isDark() ? "#111111" : "#ffffff");
}
