/**
 * Durations and byte sizes as written in manifests. Pure parsers that return null when the text
 * is not a valid quantity; the manifest validator turns null into a coded issue.
 */

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;
const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `"500ms"`, `"10s"`, `"1m30s"`, `"2h"` → milliseconds (integer). `"0"` and `"0s"` → 0. */
export function parseDuration(text: string): number | null {
  if (text === '0') return 0;
  if (text.length === 0 || text.length > 64) return null;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const m = DURATION_PART.exec(text);
    if (m === null) return null;
    const unit = m[2] as keyof typeof DURATION_UNIT_MS;
    total += Number(m[1]) * DURATION_UNIT_MS[unit];
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : null;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/;
const SIZE_UNIT = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
} as const;

/** `"512MiB"`, `"10GB"`, `"4096"` → bytes (integer). A number is taken as bytes. */
export function parseSize(input: string | number): number | null {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : null;
  const m = SIZE.exec(input.trim());
  if (m === null) return null;
  const unit = (m[2] ?? 'B') as keyof typeof SIZE_UNIT;
  const bytes = Math.round(Number(m[1]) * SIZE_UNIT[unit]);
  return Number.isSafeInteger(bytes) ? bytes : null;
}
