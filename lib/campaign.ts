// The campaign file (many hosts, upgraded in waves) and the arithmetic of waves and failure
// budgets. Pure: the client reads the files, the workflow runs the math on workflow time.
import { z } from 'zod';
import { isTimeZone, secondOfDay, WEEKDAYS, type MaintenanceWindow } from './maintenance-window.js';
import { duration, formatZodIssues, ProfileError, type Profile } from './profile.js';

/** A number of hosts, or a percentage of all the campaign's hosts ("20%"). */
export type HostCount = number | `${number}%`;

const percent = (min: number) =>
  z
    .string()
    .regex(/^\d{1,3}(?:\.\d+)?%$/, 'must be a whole number or a percentage such as "20%"')
    .refine((s) => parseFloat(s) >= min && parseFloat(s) <= 100, `must be between ${min}% and 100%`)
    .transform((s) => s as `${number}%`);

const timeOfDay = z.string().refine((t) => secondOfDay(t) !== null, 'must be a local time "HH:MM" (00:00–24:00)');

const windowSchema = z
  .object({
    days: z.array(z.enum(WEEKDAYS)).min(1).default([...WEEKDAYS]),
    start: timeOfDay,
    end: timeOfDay,
    timezone: z.string().refine(isTimeZone, 'must be an IANA time zone such as Europe/Berlin or UTC'),
  })
  .strict()
  .refine((w) => secondOfDay(w.start) !== secondOfDay(w.end), { message: 'must differ from start (all day: 00:00 to 24:00)', path: ['end'] });

export const campaignSchema = z
  .object({
    /** Names the workflow (ab-upgrade-campaign/<name>) and the CLI commands. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be letters, digits, ".", "_" or "-"'),
    /** Host profile files, relative to the campaign file. */
    hosts: z.array(z.string().min(1)).min(1, 'must list at least one host profile file'),
    /** Like Ansible's serial: the last entry repeats. Default: one canary host, then the rest. */
    waves: z.array(z.union([z.number().int().min(1), percent(0.001)])).min(1).default([1, '100%']),
    /** Most hosts allowed to end not committed before the campaign halts (percentages round down). */
    failureBudget: z.union([z.number().int().min(0), percent(0)]).default(0),
    window: windowSchema.optional(),
    /** Wait for `campaign approve` before each wave but the first of a round (start / retry-failed). */
    approveEachWave: z.boolean().default(false),
    /** How long a finished campaign with failed hosts stays open for `campaign retry-failed`. */
    retryWithin: duration('7d'),
  })
  .strict();

export type CampaignFile = z.output<typeof campaignSchema>;

/** A campaign file with its hosts' profiles loaded: what the workflow needs. */
export interface CampaignSpec extends Omit<CampaignFile, 'hosts' | 'retryWithin' | 'window'> {
  profiles: Profile[];
  window?: MaintenanceWindow;
  retryWithinMs: number;
}

/** An invalid campaign file: one line per problem, each naming the field (or host file). */
export class CampaignError extends ProfileError {
  constructor(problems: string[]) {
    super(problems);
    this.message = `invalid campaign:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
    this.name = 'CampaignError';
  }
}

export function parseCampaignFile(input: unknown): CampaignFile {
  const r = campaignSchema.safeParse(input);
  if (!r.success) throw new CampaignError(formatZodIssues(r.error, '(campaign)'));
  return r.data;
}

/** Joins the file with its hosts' profiles (same order as `hosts`); two files naming one host is an error. */
export function campaignSpec(file: CampaignFile, profiles: Profile[]): CampaignSpec {
  const seen = new Map<string, number>();
  const problems: string[] = [];
  profiles.forEach((p, i) => {
    const first = seen.get(p.name);
    if (first !== undefined) problems.push(`hosts.${i} (${file.hosts[i]}): host name "${p.name}" is also hosts.${first} (${file.hosts[first]})`);
    else seen.set(p.name, i);
  });
  if (problems.length) throw new CampaignError(problems);
  const { hosts: _hosts, retryWithin, ...rest } = file;
  return { ...rest, profiles, retryWithinMs: retryWithin };
}

// ---------------------------------------------------------------------------------------------
// Waves and budget

function ofTotal(n: HostCount, total: number, round: (x: number) => number): number {
  if (typeof n === 'number') return n;
  // The epsilon keeps 33.3% of 3 hosts from rounding on float noise.
  return round((parseFloat(n) * total) / 100);
}

/**
 * Sizes of the waves that run `count` hosts: entries in order, the last one repeating;
 * percentages are of `total` (all the campaign's hosts), rounded up, at least 1.
 */
export function waveSizes(count: number, waves: HostCount[], total = count): number[] {
  const sizes: number[] = [];
  for (let left = count, i = 0; left > 0; i++) {
    const spec = waves[Math.min(i, waves.length - 1)]!;
    const n = Math.min(left, Math.max(1, ofTotal(spec, total, (x) => Math.ceil(x - 1e-9))));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** The hosts cut into waves (order kept). */
export function planWaves<T>(hosts: T[], waves: HostCount[], total = hosts.length): T[][] {
  let at = 0;
  return waveSizes(hosts.length, waves, total).map((n) => hosts.slice(at, (at += n)));
}

/** How many failed hosts the campaign tolerates; a percentage of `total` rounds down. */
export function failureBudget(budget: HostCount, total: number): number {
  return ofTotal(budget, total, (x) => Math.floor(x + 1e-9));
}

export const budgetExceeded = (failed: number, budget: number): boolean => failed > budget;
