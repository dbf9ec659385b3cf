// The host profile: everything the runbook needs to know about one host, validated with zod
// (the schemas: ./profile-schema.ts). It holds references to secrets (key paths, password files,
// an agent socket), never secrets, because the profile travels inside workflow inputs and
// Temporal stores histories in clear.
import { inWorkflowContext } from '@temporalio/workflow';
import type { z } from 'zod';
import { durationBoundsProblem } from './duration.js';
import { buildProfileSchemas, PROFILE_FIELDS, type Profile, type ProfileInput, type ProfileSchemas } from './profile-schema.js';

export { hostWorkflowId } from './host-id.js';
export { duration, type DeviceRef, type Profile, type ProfileInput, type ProfileSchemas } from './profile-schema.js';

/** The top-level fields of a profile (to tell a profile with mistakes from some other file). */
export const profileFields: readonly string[] = PROFILE_FIELDS;

let shared: ProfileSchemas | undefined;
/**
 * The profile's schemas. Outside a workflow built once; inside one built for the caller and
 * dropped with it: each workflow instance has its own copy of this module, and with the schemas
 * kept 200 idle upgradeHost workflows did not fit in a 256 MB workflow heap (without, they do).
 */
export function profileSchemas(): ProfileSchemas {
  return inWorkflowContext() ? buildProfileSchemas() : (shared ??= buildProfileSchemas());
}
export type PowerConfig = Profile['power'];
export type ReleaseConfig = Profile['release'];
export type ImageRelease = Extract<ReleaseConfig, { source: 'image' }>;

/**
 * A parsed profile as profile-file content (what `ab-upgrade lab` writes for the operator):
 * durations, milliseconds once parsed, are written back with their unit, since a bare number
 * in a profile file means seconds. parseProfile(profileFileContent(p)) gives p again.
 */
export function profileFileContent(p: Profile): ProfileInput {
  return toFileForm(p, []) as ProfileInput;
}

const TIMINGS = ['approvalTimeout', 'comebackDeadline', 'pollInterval', 'healthTimeout'] as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * profileFileContent for anything claiming to be a parsed profile: a duration that is not a
 * number of milliseconds within bounds goes to `problems` (named by its field) and is dropped;
 * everything else is left for the schema to judge.
 */
function toFileForm(p: Record<string, unknown>, problems: string[]): Record<string, unknown> {
  const ms = (field: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    const bounds = typeof v === 'number' ? durationBoundsProblem(v) : 'must be a number of milliseconds (the profile is parsed already)';
    if (bounds) {
      problems.push(`${field}: ${typeof v === 'number' ? `${v} ms ` : ''}${bounds}`);
      return undefined;
    }
    return `${v as number}ms`;
  };
  const out: Record<string, unknown> = { ...p };
  // A name that is the host is the default, not the operator's: a host may hold what a name may
  // not (an IPv6 address's ":"), and parsing gives the same name again.
  if (p.name === p.host) delete out.name;
  const { timings, health } = p;
  if (isRecord(timings)) {
    out.timings = { ...timings };
    for (const k of TIMINGS) if (k in timings) (out.timings as Record<string, unknown>)[k] = ms(`timings.${k}`, timings[k]);
  }
  if (isRecord(health) && Array.isArray(health.commands)) {
    const commands = health.commands.map((c: unknown, i) => (isRecord(c) && 'timeout' in c ? { ...c, timeout: ms(`health.commands.${i}.timeout`, c.timeout) } : c));
    out.health = { ...health, commands };
  }
  return out;
}

/**
 * Validates a profile that was parsed already (durations in milliseconds), as workflows and
 * activities receive it: their input comes from whoever can reach the task queue, not only from
 * the CLI. The same schema as for files, through profileFileContent's form; returns the profile
 * with defaults applied, or throws a ProfileError naming each bad field.
 */
export function revalidateProfile(p: unknown, schemas: ProfileSchemas = profileSchemas()): Profile {
  if (!isRecord(p)) throw new ProfileError(['(profile): must be an object (a parsed host profile)']);
  const problems: string[] = [];
  const result = schemas.profileSchema.safeParse(toFileForm(p, problems));
  if (!result.success) problems.push(...formatZodIssues(result.error));
  if (problems.length) throw new ProfileError(problems);
  return result.data!;
}

/** A profile checked: with its defaults applied, or one problem per bad field. */
export type CheckedProfile = { profile: Profile } | { problems: string[] };

/** revalidateProfile with its ProfileError as a value (one that can cross an activity boundary). */
export function checkProfile(p: unknown, schemas: ProfileSchemas = profileSchemas()): CheckedProfile {
  try {
    return { profile: revalidateProfile(p, schemas) };
  } catch (e) {
    if (e instanceof ProfileError) return { problems: e.problems };
    throw e;
  }
}

/** A failed validation, worded for operators: one line per problem, each naming the field. */
export class ProfileError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid host profile:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProfileError';
  }
}

export function formatZodIssues(error: z.ZodError, root = '(profile)'): string[] {
  return unfoldUnions(error.issues).map((i) => `${shownPath(i.path, root)}: ${issueMessage(i)}`);
}

/**
 * The field path an error names: field names and list indexes. A record key (a host name in a
 * campaign's overrides) is user data: the path stops before one that is not a plain name, so an
 * empty, dotted or hostile key cannot garble the message.
 */
function shownPath(path: readonly PropertyKey[], root: string): string {
  const shown: string[] = [];
  for (const seg of path) {
    if (typeof seg === 'number' || (typeof seg === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(seg))) shown.push(String(seg));
    else break;
  }
  return shown.length ? shown.join('.') : root;
}

/**
 * A union none of whose options fits is one "Invalid input" at the union's field. When only one
 * option took the value's type (slots given as an object with a bad slot), its issues name the
 * fields inside instead (slots.a).
 */
function unfoldUnions(issues: z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((i) => {
    if (i.code !== 'invalid_union') return [i];
    const rejectsType = (b: z.core.$ZodIssue) => b.path.length === 0 && ['invalid_type', 'invalid_value', 'invalid_union'].includes(b.code);
    const taken = i.errors.filter((option) => option.length > 0 && !option.some(rejectsType));
    return taken.length === 1 ? unfoldUnions(taken[0]!.map((b) => ({ ...b, path: [...i.path, ...b.path] }))) : [i];
  });
}

function issueMessage(i: z.core.$ZodIssue): string {
  if (i.code !== 'unrecognized_keys') return i.message;
  // Only keys that look like field names are shown: in a file that is not a profile at all
  // (a password file, /etc/shadow), YAML reads whole lines as keys.
  const shown = i.keys.filter((k) => /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(k)).map((k) => `"${k}"`);
  const hidden = i.keys.length - shown.length;
  const parts = shown.length ? [`unrecognized key${shown.length === 1 ? '' : 's'} ${shown.join(', ')}`] : [];
  if (hidden) parts.push(`${hidden} unrecognized key${hidden === 1 ? '' : 's'} not shown (not field names)`);
  return parts.join('; ');
}

export function parseProfile(input: unknown): Profile {
  const result = profileSchemas().profileSchema.safeParse(input);
  if (!result.success) throw new ProfileError(formatZodIssues(result.error));
  return result.data;
}
