// A worker setting given as a CLI flag or an environment variable: the flag wins, an empty
// variable counts as unset, and a bad value is refused naming where it came from.
import type { z } from 'zod';

export interface SettingSource {
  flag: string;
  env: string;
}

export function flagOrEnv<T>(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  names: SettingSource,
  schema: z.ZodType<T, string>,
  error: new (message: string) => Error,
): T | undefined {
  const [value, source] = flag !== undefined ? [flag, names.flag] : [env[names.env], names.env];
  if (value === undefined || (source === names.env && value.trim() === '')) return undefined;
  const r = schema.safeParse(value);
  if (!r.success) throw new error(`${source}: ${r.error.issues[0]!.message} (got ${JSON.stringify(value)})`);
  return r.data;
}
