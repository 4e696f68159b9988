"""The Explorer's display for viewers without a widget manager: a summary and an image."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from widget_helpers import make_runs

from rungroup.widget import Explorer, static


def test_the_summary_says_what_is_grouped_and_shown() -> None:
    widget = Explorer(make_runs(), group_by=["config.lr"], band="ci", smoothing="ema")
    widget.search = "b"  # b0, b1, b2: the lr=0.01 runs
    widget.hidden = ["r4"]
    text = static.summary(widget)
    assert text.splitlines() == [
        "rungroup.Explorer: 2 runs in 1 groups by config.lr",
        "line: mean, band: 95% CI (t)",
        "metrics: acc, loss; x: step",
        "smoothing: ema 0.6",
        "filter: 'b'",
        "hidden: 1 runs",
    ]
    data, _ = widget._repr_mimebundle_()
    assert data["text/plain"] == text
    assert "application/vnd.jupyter.widget-view+json" in data


def test_the_fallback_is_an_opaque_png_of_the_chart_in_the_groups_colours() -> None:
    from PIL import Image

    widget = Explorer(make_runs(), group_by=["config.lr"])
    bundle = static.fallback(widget)
    assert bundle is not None
    assert bundle["text/html"].startswith(f'<div class="{static.MARKER}"><img alt="rungroup.')
    image = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"]))).convert("RGBA")
    assert image.width > 600 and image.getpixel((0, 0)) == (255, 255, 255, 255)
    colours = {e["colour"] for e in widget._frame().legend["entries"]}
    rgb = np.asarray(image)[..., :3].reshape(-1, 3)
    pixels = {"#{:02x}{:02x}{:02x}".format(*p) for p in np.unique(rgb, axis=0)}
    assert colours <= pixels, "each group's line is drawn in its colour"


def test_a_chart_that_cannot_be_drawn_leaves_the_widget_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    widget = Explorer(make_runs())

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no renderer")

    monkeypatch.setattr(static, "chart", broken)
    with caplog.at_level(logging.WARNING):
        assert static.fallback(widget) is None
    assert "no static image of the chart (RuntimeError: no renderer)" in caplog.text
    data, _ = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
