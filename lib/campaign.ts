// The campaign file (many hosts, upgraded in waves): its schema and the campaign spec the client
// builds from it. The arithmetic of waves and failure budgets is ./waves.ts (workflow code).
import { z } from 'zod';
import { isTimeZone, secondOfDay, WEEKDAYS, type MaintenanceWindow } from './maintenance-window.js';
import { duration, formatZodIssues, ProfileError, type Profile } from './profile.js';

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

/** Profile fields laid over a host's profile; the merged profile is validated by the profile schema. */
const fieldOverrides = z.record(z.string(), z.unknown());

const hostEntry = z
  .object({
    file: z.string().min(1),
    overrides: fieldOverrides.default({}),
  })
  .strict();

export type HostEntry = string | z.output<typeof hostEntry>;
/** The file a host entry names. */
export const entryFile = (e: HostEntry): string => (typeof e === 'string' ? e : e.file);

export const campaignSchema = z
  .object({
    /** Names the workflow (ab-upgrade-campaign/<name>) and the CLI commands. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be letters, digits, ".", "_" or "-"'),
    /** Host profile files, relative to the campaign file; an entry may lay overrides onto its file. */
    hosts: z.array(z.union([z.string().min(1), hostEntry])).default([]),
    /** An Ansible inventory (INI or YAML), relative to the campaign file: its hosts join `hosts`. */
    inventory: z.string().min(1).optional(),
    /** The profile fields the inventory's hosts share (a profile file), relative to the campaign file. */
    template: z.string().min(1).optional(),
    /** Only these inventory groups or hosts (comma-separated). */
    limit: z.string().min(1).optional(),
    /** Inventory hostname → profile fields laid over what the template and inventory give. */
    overrides: z.record(z.string(), fieldOverrides).optional(),
    /** Hosts never started by this campaign (reported as skipped). */
    skip: z.array(z.string().min(1)).optional(),
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

type HostListing = 'hosts' | 'inventory' | 'template' | 'limit' | 'overrides' | 'skip';

/** A campaign file with its hosts' profiles loaded: what the workflow needs. */
export interface CampaignSpec extends Omit<CampaignFile, HostListing | 'retryWithin' | 'window'> {
  /** The hosts to upgrade. */
  profiles: Profile[];
  /** Hosts the file lists but the campaign never starts (`skip`). */
  skipped?: string[];
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

/** The campaign file; `inventoryGiven`: an inventory comes from elsewhere (the command line). */
export function parseCampaignFile(input: unknown, inventoryGiven = false): CampaignFile {
  const r = campaignSchema.safeParse(input);
  const problems = r.success ? [] : formatZodIssues(r.error, '(campaign)');
  const raw = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const listsNone = !Array.isArray(raw.hosts) || raw.hosts.length === 0;
  if (listsNone && raw.inventory === undefined && !inventoryGiven && !problems.some((p) => p.startsWith('hosts'))) {
    problems.push('hosts: must list at least one host profile file (or give an inventory)');
  }
  if (r.success && r.data.inventory !== undefined && r.data.template === undefined) problems.push('template: required with inventory: the profile file its hosts share');
  if (problems.length) throw new CampaignError(problems);
  return r.data!;
}

/** A loaded host and where it came from ("hosts.2 (web-3.yaml)", "inventory host web-3"), for errors. */
export interface LoadedHost {
  profile: Profile;
  from: string;
}

/**
 * Joins the file with its hosts' profiles (in order); two entries naming one host is an error,
 * and so is a `skip` naming no host. Skipped hosts are left out of `profiles`.
 */
export function campaignSpec(file: CampaignFile, hosts: LoadedHost[]): CampaignSpec {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const h of hosts) {
    const first = seen.get(h.profile.name);
    if (first !== undefined) problems.push(`${h.from}: host name "${h.profile.name}" is also ${first}`);
    else seen.set(h.profile.name, h.from);
  }
  const skip = file.skip ?? [];
  skip.forEach((name, i) => {
    if (!seen.has(name)) problems.push(`skip.${i}: no host named "${name}" in the campaign`);
  });
  const profiles = hosts.map((h) => h.profile).filter((p) => !skip.includes(p.name));
  if (!problems.length && profiles.length === 0) problems.push('skip: skips every host of the campaign');
  if (problems.length) throw new CampaignError(problems);
  const { hosts: _h, inventory: _i, template: _t, limit: _l, overrides: _o, skip: _s, retryWithin, ...rest } = file;
  return { ...rest, profiles, ...(skip.length ? { skipped: [...skip] } : {}), retryWithinMs: retryWithin };
}
