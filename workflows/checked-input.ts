// A host workflow's input, checked inside the workflow: whoever can start a workflow on the task
// queue chooses the profile, so it is validated here, before any activity, not only by the CLI.
import { ApplicationFailure } from '@temporalio/workflow';
import { FailureTypes } from '../lib/contract.js';
import { ProfileError, revalidateProfile } from '../lib/profile.js';
import type { UpgradeInput } from '../lib/workflow-api.js';

/** The input with its profile validated (defaults applied), or the failure to end with. Pure: no commands. */
export function checkedInput<I extends UpgradeInput>(input: I): { input: I; invalid?: ApplicationFailure } {
  try {
    return { input: { ...input, profile: revalidateProfile(input?.profile) } };
  } catch (e) {
    if (!(e instanceof ProfileError)) throw e;
    return { input, invalid: ApplicationFailure.nonRetryable(`invalid host profile: ${e.problems.join('; ')}`, FailureTypes.InvalidInput) };
  }
}
