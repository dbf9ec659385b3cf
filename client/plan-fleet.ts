// `plan --inventory`: the read-only plan of every selected host, up to --parallel hosts at once,
// printed in inventory order. One host that cannot be reached does not hide the others' plans.
import { z } from 'zod';
import { checkRelease } from '../activities/release-image.js';
import { profileSummary } from '../lib/profile-summary.js';
import type { Profile } from '../lib/profile.js';
import type { ReleaseCheck } from '../lib/signature.js';
import { boundedMapInOrder } from '../lib/bounded-map.js';

/** Hosts planned at once when --parallel is not given (Ansible's default forks). */
export const DEFAULT_PLAN_PARALLEL = 10;
export const MAX_PLAN_PARALLEL = 1000;

const parallelSchema = z
  .string()
  .regex(/^[0-9]+$/, 'must be a whole number')
  .transform(Number)
  .pipe(z.number().min(1, 'must be at least 1').max(MAX_PLAN_PARALLEL, `must be at most ${MAX_PLAN_PARALLEL}`));

/** --parallel's value, or an error naming the option. */
export function parseParallel(value: string | undefined): number {
  if (value === undefined) return DEFAULT_PLAN_PARALLEL;
  const r = parallelSchema.safeParse(value);
  if (r.success) return r.data;
  throw new Error(`--parallel: ${r.error.issues[0]?.message ?? 'invalid'} (hosts planned at once), not ${JSON.stringify(value)}`);
}

export interface HostPlan {
  text: string;
  ok: boolean;
  json: unknown;
}

export type CheckRelease = (release: Profile['release']) => Promise<ReleaseCheck>;
export type PlanOne = (profile: Profile, checkReleaseOf: CheckRelease) => Promise<HostPlan>;

/** One check per distinct release: hosts sharing a template share its image's download and verification. */
export function sharedReleaseChecks(check: CheckRelease = checkRelease): CheckRelease {
  const seen = new Map<string, Promise<ReleaseCheck>>();
  return (release) => {
    const key = JSON.stringify(release);
    let p = seen.get(key);
    if (!p) seen.set(key, (p = check(release)));
    return p;
  };
}

/**
 * Plans every profile with at most `parallel` in flight; `print` gets each host's resolved profile
 * and plan (text), or the whole array at the end (json), in the profiles' order. True when every
 * plan is ok.
 */
export async function planFleet(
  profiles: Profile[],
  o: { parallel: number; json: boolean; planOne: PlanOne; print: (s: string) => void },
): Promise<boolean> {
  const checkReleaseOf = sharedReleaseChecks();
  const plans = await boundedMapInOrder(
    profiles,
    o.parallel,
    (profile) =>
      o.planOne(profile, checkReleaseOf).catch((e: unknown) => ({
        ok: false,
        text: `${profile.name}: cannot plan: ${(e as Error).message}`,
        json: { error: (e as Error).message },
      })),
    (plan, i) => {
      if (!o.json) o.print(['', ...profileSummary(profiles[i]!), plan.text].join('\n'));
    },
  );
  if (o.json) o.print(JSON.stringify(plans.map((plan, i) => ({ host: profiles[i]!.name, profile: profiles[i], ok: plan.ok, plan: plan.json })), null, 2));
  return plans.every((p) => p.ok);
}
