// The Compare table's numbers: significant digits, exponents, p-values, missing values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatNumber, formatP, MISSING } from "../src/compare/format.ts";

test("numbers keep 4 significant digits without trailing zeros", () => {
  assert.equal(formatNumber(0.703958123), "0.704");
  assert.equal(formatNumber(1.5114), "1.511");
  assert.equal(formatNumber(-0.084931), "-0.08493");
  assert.equal(formatNumber(1), "1");
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(12345), "12350");
});

test("very large and very small numbers are written with an exponent", () => {
  assert.equal(formatNumber(123456), "1.23e+5");
  assert.equal(formatNumber(0.000123), "1.23e-4");
});

test("missing and non-finite values are a dash", () => {
  for (const value of [null, undefined, Number.NaN, Number.POSITIVE_INFINITY, "1"]) {
    assert.equal(formatNumber(value), MISSING);
    assert.equal(formatP(value), MISSING);
  }
});

test("p-values have 4 decimals, an exponent below 1e-4", () => {
  assert.equal(formatP(0.04999), "0.0500");
  assert.equal(formatP(1), "1.0000");
  assert.equal(formatP(1.1e-23), "1.1e-23");
});
