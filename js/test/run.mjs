// Front-end unit tests: each test/*.test.mjs is bundled by esbuild (it imports the
// TypeScript modules under src/ directly) into a temporary folder and run by node's test
// runner. The exit code is the runner's, so a failing test fails `npm test` and `make test`.
import * as esbuild from "esbuild";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const tests = readdirSync(here).filter((name) => name.endsWith(".test.mjs"));
const out = mkdtempSync(path.join(tmpdir(), "rungroup-js-test-"));
try {
  await esbuild.build({
    entryPoints: tests.map((name) => path.join(here, name)),
    outdir: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: ["node20"],
    logLevel: "error",
  });
  const files = tests.map((name) => path.join(out, name.replace(/\.mjs$/, ".js")));
  const result = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
  process.exitCode = result.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
