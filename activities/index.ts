// The real host activities, assembled for the worker. Each one opens (or reuses) the SSH
// connection to the profile's host and maps our error classes onto Temporal failure types,
// so the workflow can tell "retry" (a dropped connection) from "stop" (an unsafe layout).
import { ApplicationFailure } from '@temporalio/common';
import { FailureTypes, type HostActivities, type HostFacts } from '../lib/contract.js';
import { revalidateProfile, type Profile } from '../lib/profile.js';
import { addBootEntry, commitSlot, rebootToSlot, removeBootEntry, trialBoot } from './boot.js';
import { carryBack, carryConfig, finalSync } from './carry.js';
import { awaitComeback, checkHealth, measureHostDowntime, probeOnce } from './health.js';
import { currentFacts } from './devices.js';
import { onHost } from './host-io.js';
import { inspectFacts } from './inspect.js';
import { powerDriverFor, type PowerDriver } from './power.js';
import { installRelease } from './release.js';
import { formatSpare } from './slots.js';
import type { SshHost } from './ssh.js';

export interface ActivityDeps {
  /** Power drivers by profile; tests and the lab may substitute their own. */
  powerDriverFor: (power: Profile['power']) => PowerDriver | null;
}

const NON_RETRYABLE: Record<string, string> = {
  UnsafeLayoutError: FailureTypes.UnsafeLayout,
  HostKeyMismatchError: FailureTypes.HostKeyMismatch,
  ImageDigestError: FailureTypes.ReleaseUnverified,
  ReleaseSignatureError: FailureTypes.ReleaseUnverified,
  ManifestError: FailureTypes.ReleaseUnverified,
  SlotTooSmallError: FailureTypes.UnsafeLayout,
  ProfileError: FailureTypes.InvalidInput,
  ZodError: FailureTypes.InvalidInput,
  CommitRefusedError: FailureTypes.UnsafeLayout,
  SlotMissingError: FailureTypes.UnsafeLayout,
  HostRebootedError: FailureTypes.HostRebooted,
};

/** Our errors → ApplicationFailure; anything else stays retryable with its message. */
export function toFailure(e: unknown): unknown {
  if (e instanceof ApplicationFailure) return e;
  const err = e as Error & { refusals?: string[] };
  const type = NON_RETRYABLE[err?.name ?? ''];
  if (type) return ApplicationFailure.create({ message: err.message, type, nonRetryable: true, details: err.refusals ? [err.refusals] : [] });
  if (err?.name === 'CommandError') return ApplicationFailure.create({ message: err.message, type: FailureTypes.CommandFailed });
  return e;
}

/**
 * Every activity takes the profile first. It is validated again here (a ProfileError becomes a
 * non-retryable InvalidInput failure): whoever can schedule an activity on the task queue could
 * otherwise hand it any command, path or URL.
 */
function mapped<A extends [Profile, ...unknown[]], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      const [profile, ...rest] = args;
      return await fn(...([revalidateProfile(profile), ...rest] as unknown as A));
    } catch (e) {
      throw toFailure(e);
    }
  };
}

/**
 * Runs `fn` on the profile's host with the inspected facts' devices as this boot names them
 * (an activity may run after a reboot, and kernel device names are not stable across one).
 */
function withFacts<T>(p: Profile, f: HostFacts, fn: (h: SshHost, f: HostFacts) => Promise<T>): Promise<T> {
  return onHost(p, async (h) => fn(h, await currentFacts(h, f)));
}

export function createActivities(deps: ActivityDeps = { powerDriverFor }): HostActivities {
  const acts: HostActivities = {
    inspectHost: (p) => onHost(p, (h) => inspectFacts(h, p)),
    prepareSpare: (p, f) => withFacts(p, f, (h, f) => formatSpare(h, p, f)),
    installRelease: (p, f) => withFacts(p, f, (h, f) => installRelease(h, p, f)),
    carryConfig: (p, f) => withFacts(p, f, (h, f) => carryConfig(h, p, f)),
    carryBack: (p, f) => withFacts(p, f, (h, f) => carryBack(h, p, f)),
    finalSync: (p, f, prev) => withFacts(p, f, (h, f) => finalSync(h, p, f, prev)),
    addBootEntry: (p, f) => withFacts(p, f, (h, f) => addBootEntry(h, p, f)),
    removeBootEntry: (p, f) => withFacts(p, f, (h, f) => removeBootEntry(h, p, f)),
    trialBoot: (p, f, e) => withFacts(p, f, (h, f) => trialBoot(h, p, f, e)),
    awaitComeback: (p, before, ms) => awaitComeback(p, before, ms),
    checkHealth: (p, bootId) => checkHealth(p, bootId),
    commitSlot: (p, f, s) => withFacts(p, f, (h, f) => commitSlot(h, p, f, s)),
    probeHost: (p) => probeOnce(p),
    rebootToSlot: (p, f, s, once) => withFacts(p, f, (h, f) => rebootToSlot(h, p, f, s, once)),
    powerReset: async (p) => {
      const driver = deps.powerDriverFor(p.power);
      if (!driver) throw ApplicationFailure.create({ message: `no power driver configured for ${p.name}`, type: FailureTypes.NoPowerDriver, nonRetryable: true });
      await driver.reset();
    },
    measureHostDowntime: (p, t) => measureHostDowntime(p, t),
  };
  return Object.fromEntries(Object.entries(acts).map(([k, fn]) => [k, mapped(fn as never)])) as unknown as HostActivities;
}

