// Writing traits from the front end: one place, so every control saves the same way.
import type { AnyModel } from "@anywidget/types";
import type { Model } from "./types";

export type WidgetModel = AnyModel<Model>;

/** Set traits and send them to Python in one message. */
export function setTraits(model: WidgetModel, changes: Partial<Model>): void {
  for (const [key, value] of Object.entries(changes)) model.set(key as keyof Model, value as never);
  model.save_changes();
}
