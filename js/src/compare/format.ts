// How the Compare table writes its numbers: 4 significant digits (exponents for very large or
// small ones), p-values to 4 decimals (exponents below 1e-4), an en dash for a missing value.

export const MISSING = "–";

export function formatNumber(value: unknown): string {
  if (typeof value !== "number" || !Number.isFinite(value)) return MISSING;
  const size = Math.abs(value);
  if (size !== 0 && (size >= 1e5 || size < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

export function formatP(value: unknown): string {
  if (typeof value !== "number" || !Number.isFinite(value)) return MISSING;
  return value < 1e-4 ? value.toExponential(1) : value.toFixed(4);
}
