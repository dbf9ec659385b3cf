// Reading a campaign file and the hosts it lists: host profile files (paths relative to the
// campaign file, each optionally with overrides) and the hosts of an Ansible inventory laid onto
// a template. Every problem names the field, or the host entry and its field; none quotes a host file.
import { dirname, resolve } from 'node:path';
import { CampaignError, campaignSpec, entryFile, parseCampaignFile, type CampaignSpec, type LoadedHost } from '../lib/campaign.js';
import { deepMerge } from '../lib/deep-merge.js';
import { parseProfile, profileFields, ProfileError, type Profile } from '../lib/profile.js';
import { loadInventoryProfiles } from './inventory-file.js';
import { readYamlFile, YamlSyntaxError } from './profile-file.js';

/** An inventory given on the command line: it takes the place of the file's `inventory`, `template` and `limit`. */
export interface InventoryOptions {
  inventory?: string;
  template?: string;
  limit?: string;
}

export async function loadCampaign(path: string, cli: InventoryOptions = {}): Promise<CampaignSpec> {
  let file;
  try {
    file = parseCampaignFile(await readYamlFile(path), cli.inventory !== undefined);
  } catch (e) {
    if (e instanceof ProfileError && !(e instanceof CampaignError)) throw new CampaignError(e.problems);
    throw e;
  }
  const problems: string[] = [];
  const hosts: LoadedHost[] = [];
  const relative = (p: string) => resolve(dirname(path), p);
  for (const [i, entry] of file.hosts.entries()) {
    const from = `hosts.${i} (${entryFile(entry)})`;
    try {
      hosts.push({ profile: await loadHostProfile(relative(entryFile(entry)), typeof entry === 'string' ? {} : entry.overrides), from });
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      problems.push(...e.problems.map((p) => `${from}: ${p}`));
    }
  }
  const inventory = cli.inventory ?? (file.inventory !== undefined ? relative(file.inventory) : undefined);
  if (inventory === undefined && file.overrides) problems.push('overrides: only for inventory hosts (give a host file its overrides in its hosts entry)');
  if (inventory !== undefined) {
    const template = cli.template ?? (file.template !== undefined ? relative(file.template) : undefined);
    try {
      const profiles = await loadInventoryProfiles({ inventory, template, limit: cli.limit ?? file.limit, overrides: file.overrides });
      hosts.push(...profiles.map((profile) => ({ profile, from: `inventory host ${profile.name}` })));
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      problems.push(...e.problems.map((p) => (p.startsWith('inventory host ') ? p : `inventory (${inventory}): ${p}`)));
    }
  }
  if (problems.length) throw new CampaignError(problems);
  return campaignSpec(file, hosts);
}

/**
 * A host entry's profile, with the entry's overrides laid on top. An entry may name any file the
 * operator can read (by mistake, or in a campaign file written by someone else), so a file that
 * is not a profile at all is reported as such, by position only: none of its words reach the error.
 */
async function loadHostProfile(file: string, overrides: Record<string, unknown>): Promise<Profile> {
  let data: unknown;
  try {
    data = await readYamlFile(file);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw new ProfileError([`${file} is not a valid profile: not YAML (${e.where.join('; ')})`]);
    throw e;
  }
  const isMapping = data !== null && typeof data === 'object' && !Array.isArray(data);
  const fields = isMapping ? Object.keys(data as object) : [];
  if (!fields.some((k) => profileFields.includes(k))) throw new ProfileError([`${file} is not a valid profile: no profile field in it`]);
  return parseProfile(deepMerge(data as Record<string, unknown>, overrides));
}
