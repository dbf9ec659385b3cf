// The worker's sticky cache: how many workflows it keeps in memory between their tasks. The SDK
// sizes it from V8's heap limit (600 workflows per GiB above 200 MB), so a heap capped to save
// memory (NODE_OPTIONS=--max-old-space-size=448) also shrinks the cache below a campaign wave
// (173 workflows there, against 200 hosts a wave for 1000 hosts at 20 %), and the evicted
// workflows are replayed at their next task. `ab-upgrade worker --max-cached-workflows N` or
// AB_UPGRADE_MAX_CACHED_WORKFLOWS sets it; unset, the SDK's own size.
import { z } from 'zod';
import { flagOrEnv } from './flag-or-env.js';

export const CACHE_SIZE_ENV = 'AB_UPGRADE_MAX_CACHED_WORKFLOWS';
export const CACHE_SIZE_FLAG = '--max-cached-workflows';

export class CacheSizeConfigError extends Error {
  override name = 'CacheSizeConfigError';
}

// 0 would turn the cache off (every task replays its whole history); 1 the SDK refuses.
const sizeSchema = z
  .string()
  .trim()
  .regex(/^\d+$/, 'must be a whole number of workflows, e.g. 300')
  .transform(Number)
  .refine((n) => n >= 2 && n <= 100_000, 'must be between 2 and 100000');

/**
 * The cache size from the flag, else the variable; undefined (the SDK's size) when neither is
 * set. A bad value is refused with a message naming where it came from.
 */
export function maxCachedWorkflows(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number | undefined {
  return flagOrEnv(flag, env, { flag: CACHE_SIZE_FLAG, env: CACHE_SIZE_ENV }, sizeSchema, CacheSizeConfigError);
}
