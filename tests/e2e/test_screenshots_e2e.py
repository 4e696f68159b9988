"""Screenshots of the Explorer in JupyterLab: light and dark theme, 800 and 1600 px windows,
and the settings panel open.

Kept under test-artifacts/screens-<label>/ (RUNGROUP_SCREENS_LABEL, default "current") so that
two builds can be compared image by image; the test fails if the widget overflows the window.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from tests.e2e.helpers import ARTIFACTS, WIDGET, Server, open_lab, renders, set_theme, wait_render

pytestmark = pytest.mark.e2e

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def test_screenshots_at_two_widths_in_both_themes(page: Any, jupyter: Server) -> None:
    target = ARTIFACTS / f"screens-{os.environ.get('RUNGROUP_SCREENS_LABEL', 'current')}"
    target.mkdir(parents=True, exist_ok=True)
    open_lab(page, jupyter.url, "quickstart.ipynb", theme=THEMES["light"])
    wait_render(page, 0, timeout=90_000)
    shown = THEMES["light"]
    for width in (800, 1600):
        page.set_viewport_size({"width": width, "height": 1000})
        for name, theme in THEMES.items():
            if theme != shown:  # a theme change embeds the chart again
                before = renders(page)
                set_theme(page, theme)
                wait_render(page, before)
                shown = theme
            page.locator(WIDGET).scroll_into_view_if_needed()
            page.mouse.move(0, 0)
            page.wait_for_timeout(500)
            page.locator(WIDGET).screenshot(path=str(target / f"{name}-{width}.png"))
            box = page.locator(WIDGET).bounding_box()
            assert box is not None and box["width"] <= width, f"widget wider than {width} px"
    # the settings panel open (its choices and labels come from Python)
    page.click(f"{WIDGET} .rg-settings-button")
    page.select_option(f"{WIDGET} select.rg-band", "quantile")
    page.select_option(f"{WIDGET} select.rg-smoothing", "ema")
    page.mouse.move(0, 0)
    page.wait_for_timeout(1000)
    page.locator(f"{WIDGET} .rg-toolbar").screenshot(path=str(target / "toolbar-dark-1600.png"))
    page.locator(f"{WIDGET} .rg-settings").screenshot(path=str(target / "settings-dark-1600.png"))
