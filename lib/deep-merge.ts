// Layering partial profiles (a template, inventory variables, per-host overrides): mappings are
// merged key by key, at any depth; everything else (lists included) replaces what was below.

export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` laid onto `base` (neither is changed); an `undefined` in `over` leaves `base`'s value. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const below = out[k];
    out[k] = isPlainObject(below) && isPlainObject(v) ? deepMerge(below, v) : v;
  }
  return out;
}
