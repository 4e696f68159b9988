// Bundles js/src/widget.ts (and its CSS) into src/rungroup/static/ for anywidget.
// `node build.mjs` builds once (minified); `node build.mjs --watch` rebuilds on every edit
// (use with ANYWIDGET_HMR=1 jupyter lab).
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const watch = process.argv.includes("--watch");

/** @type {import("esbuild").BuildOptions} */
const options = {
  entryPoints: { widget: path.join(here, "src", "widget.ts") },
  outdir: path.join(here, "..", "src", "rungroup", "static"),
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  // Under RequireJS hosts (classic notebook) UMD parts of dependencies must not call define().
  define: { "define.amd": "false", "process.env.NODE_ENV": '"production"' },
  legalComments: "none",
  logLevel: "info",
};

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
