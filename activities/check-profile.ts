// The host workflows' input check, run by them as a local activity in the worker's main thread.
// Inside the workflow sandbox every workflow instance evaluates the modules it loads for itself
// and keeps them while it is cached: the profile's schemas (zod) cost about 1 MB per waiting
// host there, and are loaded once per worker here.
import type { InputActivities } from '../lib/contract.js';
import { checkProfile } from '../lib/profile.js';

export const inputActivities: InputActivities = {
  async checkHostProfile(profile) {
    return checkProfile(profile);
  },
};
