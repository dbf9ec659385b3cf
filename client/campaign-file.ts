// Reading a campaign file and the host profiles it lists (paths relative to the campaign file).
// Every problem names the field, or the host file and its field; none quotes a host file.
import { dirname, resolve } from 'node:path';
import { CampaignError, campaignSpec, parseCampaignFile, type CampaignSpec } from '../lib/campaign.js';
import { parseProfile, profileFields, ProfileError, type Profile } from '../lib/profile.js';
import { readYamlFile, YamlSyntaxError } from './profile-file.js';

export async function loadCampaign(path: string): Promise<CampaignSpec> {
  let file;
  try {
    file = parseCampaignFile(await readYamlFile(path));
  } catch (e) {
    if (e instanceof ProfileError && !(e instanceof CampaignError)) throw new CampaignError(e.problems);
    throw e;
  }
  const problems: string[] = [];
  const profiles: Profile[] = [];
  for (const [i, host] of file.hosts.entries()) {
    try {
      profiles.push(await loadHostProfile(resolve(dirname(path), host)));
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      problems.push(...e.problems.map((p) => `hosts.${i} (${host}): ${p}`));
    }
  }
  if (problems.length) throw new CampaignError(problems);
  return campaignSpec(file, profiles);
}

/**
 * A host entry's profile. An entry may name any file the operator can read (by mistake, or in a
 * campaign file written by someone else), so a file that is not a profile at all is reported
 * as such, by position only: none of its words reach the error.
 */
async function loadHostProfile(file: string): Promise<Profile> {
  let data: unknown;
  try {
    data = await readYamlFile(file);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw new ProfileError([`${file} is not a valid profile: not YAML (${e.where.join('; ')})`]);
    throw e;
  }
  const fields = data !== null && typeof data === 'object' && !Array.isArray(data) ? Object.keys(data) : [];
  if (!fields.some((k) => profileFields.includes(k))) throw new ProfileError([`${file} is not a valid profile: no profile field in it`]);
  return parseProfile(data);
}
