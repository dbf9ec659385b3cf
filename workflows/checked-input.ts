// A host workflow's input, checked inside the workflow: whoever can start a workflow on the task
// queue chooses the profile, so it is validated here, before any host activity, not only by the
// CLI.
import { ApplicationFailure, patched, proxyLocalActivities } from '@temporalio/workflow';
import { FailureTypes, type InputActivities } from '../lib/contract.js';
import type { CheckedProfile } from '../lib/profile.js';
import type { UpgradeInput } from '../lib/workflow-api.js';

const { checkHostProfile } = proxyLocalActivities<InputActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});

/** The input with its profile validated (defaults applied); throws the failure to end with. */
export async function checkedInput<I extends UpgradeInput>(input: I): Promise<I> {
  // Runs started before the check moved out of the sandbox replay it in the sandbox.
  const checked = patched('profile-check-local-activity') ? await checkHostProfile(input?.profile) : await checkInSandbox(input?.profile);
  if ('problems' in checked) {
    throw ApplicationFailure.nonRetryable(`invalid host profile: ${checked.problems.join('; ')}`, FailureTypes.InvalidInput);
  }
  return { ...input, profile: checked.profile };
}

/**
 * The check as it ran before: the schemas are imported only here (webpackMode "eager" keeps them
 * in the one bundle file, evaluated on first use), so a new run never loads them into its sandbox.
 */
async function checkInSandbox(profile: unknown): Promise<CheckedProfile> {
  const { checkProfile } = await import(/* webpackMode: "eager" */ '../lib/profile.js');
  return checkProfile(profile);
}
