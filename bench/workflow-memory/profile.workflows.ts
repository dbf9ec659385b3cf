// bench:workflow-memory: the baseline workflow checking a host profile in the sandbox, as the host
// workflows did before the check became a local activity (the schemas built, used, dropped).
import { condition, defineQuery, setHandler } from '@temporalio/workflow';
import { checkProfile } from '../../lib/profile.js';

export const readyQuery = defineQuery<boolean>('ready');

export async function idle(profile: unknown): Promise<void> {
  const valid = 'profile' in checkProfile(profile);
  setHandler(readyQuery, () => valid);
  await condition(() => false);
}
