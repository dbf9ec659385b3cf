// An inventory host as a host profile: the template, then what the host's Ansible variables
// say, then the operator's per-host overrides, validated by the profile schema. Only these
// variables are read:
//
//   ansible_host                  → host (default: the inventory hostname)
//   ansible_port                  → port
//   ansible_user                  → user
//   ansible_become (true)         → become: sudo
//   ansible_ssh_private_key_file  → auth.identityFile ("~/" is the controller user's home)
//   ab_upgrade_<field>            → the profile field <field> (snake_case or camelCase:
//                                   ab_upgrade_host_key or ab_upgrade_hostKey → hostKey)
//
// The profile's name is always the inventory hostname.
import { deepMerge, isPlainObject } from './deep-merge.js';
import { hostVariables, PROFILE_VAR_PREFIX, selectHosts, type Inventory, type Vars } from './inventory.js';
import { formatZodIssues, profileFields, ProfileError, profileSchemas, type Profile } from './profile.js';

export interface InventoryProfileOptions {
  /** The profile fields every host shares (a profile file without the host's own fields). */
  template: Record<string, unknown>;
  /** Group or host names (comma-separated) to select; all hosts when absent. */
  limit?: string;
  /** Inventory hostname → profile fields laid over everything else. */
  overrides?: Record<string, Record<string, unknown>>;
  /** The controller user's home, for "~/" in ansible_ssh_private_key_file. */
  home?: string;
}

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

/** Ansible's reading of a boolean variable (true, yes, on, 1; any case), or the value itself. */
function asBoolean(v: unknown): unknown {
  if (typeof v === 'number') return v !== 0;
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  return TRUE.has(s) ? true : FALSE.has(s) ? false : v;
}

/** A port written as a string (INI values are) as a number; anything else left for the schema to judge. */
const asPort = (v: unknown): unknown => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v);

const camelCase = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * The profile fields `vars` set (before the template and overrides are laid around them);
 * problems (an ab_upgrade_* variable naming no field) go to `problems`.
 */
export function profileFieldsFromVars(name: string, vars: Vars, problems: string[], home?: string): Record<string, unknown> {
  const out: Record<string, unknown> = { host: vars.ansible_host ?? name };
  if (vars.ansible_port !== undefined) out.port = asPort(vars.ansible_port);
  if (vars.ansible_user !== undefined) out.user = vars.ansible_user;
  if (vars.ansible_become !== undefined) {
    const become = asBoolean(vars.ansible_become);
    if (become === true) out.become = 'sudo';
    else if (become !== false) problems.push(`ansible_become: must be true or false`);
  }
  const key = vars.ansible_ssh_private_key_file;
  if (key !== undefined) out.auth = { identityFile: typeof key === 'string' && key.startsWith('~/') && home ? `${home}/${key.slice(2)}` : key };
  for (const [k, v] of Object.entries(vars)) {
    if (!k.startsWith(PROFILE_VAR_PREFIX)) continue;
    const field = camelCase(k.slice(PROFILE_VAR_PREFIX.length));
    if (field === 'name') problems.push(`${k}: the profile name is the inventory hostname`);
    else if (!profileFields.includes(field)) problems.push(`${k}: no profile field "${field}" (fields: ${profileFields.filter((f) => f !== 'name').join(', ')})`);
    else out[field] = isPlainObject(v) && isPlainObject(out[field]) ? deepMerge(out[field] as Record<string, unknown>, v) : v;
  }
  return out;
}

/**
 * The profiles of the selected inventory hosts (inventory order). Every problem names the
 * inventory host and the field; all hosts are checked before one ProfileError is thrown.
 */
export function inventoryProfiles(inv: Inventory, o: InventoryProfileOptions): Profile[] {
  const problems: string[] = [];
  const selected = selectHosts(inv, o.limit);
  for (const h of Object.keys(o.overrides ?? {})) if (!inv.hostVars.has(h)) problems.push(`overrides.${h}: no such host in the inventory`);
  const profiles: Profile[] = [];
  for (const name of selected) {
    const own: string[] = [];
    const fields = profileFieldsFromVars(name, hostVariables(inv, name), own, o.home);
    const input = deepMerge(deepMerge(o.template, fields), { ...(o.overrides?.[name] ?? {}), name });
    const r = profileSchemas().profileSchema.safeParse(input);
    if (!r.success) own.push(...formatZodIssues(r.error));
    if (own.length) problems.push(...own.map((p) => `inventory host ${name}: ${p}`));
    else profiles.push(r.data!);
  }
  if (problems.length) throw new ProfileError(problems);
  return profiles;
}
