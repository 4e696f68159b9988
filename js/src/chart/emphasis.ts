// The hovered series brought forward (its table row, legend entry or line under the pointer):
// a canvas over Vega's washes every panel's plot area in the background colour, so that the
// other series recede, and draws the hovered series' band and line again on top. A hover
// change costs one small canvas drawing of one series, never a Vega re-render (which redraws
// every mark of every panel: the encode and paint of some 16,000 items per move).
import { h } from "../dom";
import { type ChartState, colourOf, eachPanel, overlay, paintBand, paintLine } from "./series";

/** How much of the plot area's colour covers what is not hovered. */
const WASH = 0.8;
/** The hovered line's width (px): wider than the others'. */
const WIDTH = 2.5;

export interface EmphasisHost extends ChartState {
  background(): string;
}

export class Emphasis {
  private readonly canvas: HTMLCanvasElement;
  /** The key drawn last (a series, or a run on a group page); null: nothing is. */
  private key: string | null = null;
  /** Points of the hovered series drawn last (the tests read it). */
  drawn = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly host: EmphasisHost,
  ) {
    this.canvas = h("canvas", { class: "rg-emphasis", attrs: { "aria-hidden": "true" } });
    this.canvas.hidden = true;
  }

  /** Put the canvas back after the chart's element was emptied (a new embed). */
  attach(): void {
    this.el.append(this.canvas);
  }

  /** Bring `key` forward (null: nothing), drawn at once. */
  show(key: string | null): void {
    this.key = key;
    this.redraw();
  }

  /** Draw the current key again: after the view drew new data or changed its size. */
  redraw(): void {
    this.drawn = 0;
    const view = this.host.view();
    const under = this.el.querySelector<HTMLCanvasElement>("canvas.marks");
    const isolated = this.host.isolated();
    const key = this.key;
    if (key === null || !view || !under) {
      this.canvas.hidden = true;
      return;
    }
    const tracks = this.host.tracks();
    const shown = (track: { key: string; series: string }) =>
      track.key === key && (isolated === null || isolated.includes(track.series));
    // a series the legend's isolation leaves out (or one not drawn) washes nothing back
    if (![...tracks.values()].some((panel) => panel.some(shown))) {
      this.canvas.hidden = true;
      return;
    }
    // the same place and size as Vega's canvas
    const box = under.getBoundingClientRect();
    const host = this.el.getBoundingClientRect();
    const place = { left: box.left - host.left + this.el.scrollLeft, top: box.top - host.top + this.el.scrollTop };
    const context = overlay(this.canvas, under, place);
    if (!context) return;
    eachPanel(view, context, this.host.metrics(), (metric, pen, plot) => {
      context.globalAlpha = WASH;
      context.fillStyle = this.host.background();
      context.fillRect(0, 0, plot.width, plot.height);
      context.globalAlpha = 1;
      for (const track of tracks.get(metric) ?? []) {
        if (!shown(track)) continue;
        const colour = colourOf(track);
        if (!track.run) paintBand(context, track, pen, colour, this.host.bandOpacity());
        this.drawn += paintLine(context, track, pen, { field: "line", colour, width: WIDTH, opacity: 1, dashes: !track.run }, plot).points;
      }
    });
    this.canvas.hidden = false;
  }
}
