// Reading a campaign file and the host profiles it lists (paths relative to the campaign file).
// Every problem names the field, or the host file and its field.
import { dirname, resolve } from 'node:path';
import { CampaignError, campaignSpec, parseCampaignFile, type CampaignSpec } from '../lib/campaign.js';
import { ProfileError, type Profile } from '../lib/profile.js';
import { loadProfile, readYamlFile } from './profile-file.js';

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
      profiles.push(await loadProfile(resolve(dirname(path), host)));
    } catch (e) {
      if (!(e instanceof ProfileError)) throw e;
      problems.push(...e.problems.map((p) => `hosts.${i} (${host}): ${p}`));
    }
  }
  if (problems.length) throw new CampaignError(problems);
  return campaignSpec(file, profiles);
}
