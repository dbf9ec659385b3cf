// The real host activities, assembled for the worker. Each one opens (or reuses) the SSH
// connection to the profile's host and maps our error classes onto Temporal failure types,
// so the workflow can tell "retry" (a dropped connection) from "stop" (an unsafe layout).
import { ApplicationFailure } from '@temporalio/common';
import { FailureTypes, type HostActivities } from '../lib/contract.js';
import type { Profile } from '../lib/profile.js';
import { addBootEntry, commitSlot, rebootToSlot, removeBootEntry, trialBoot } from './boot.js';
import { carryBack, carryConfig, finalSync } from './carry.js';
import { awaitComeback, checkHealth, measureHostDowntime, probeOnce } from './health.js';
import { onHost } from './host-io.js';
import { inspectFacts } from './inspect.js';
import { powerDriverFor, type PowerDriver } from './power.js';
import { installRelease } from './release.js';
import { formatSpare } from './slots.js';

export interface ActivityDeps {
  /** Power drivers by profile; tests and the lab may substitute their own. */
  powerDriverFor: (power: Profile['power']) => PowerDriver | null;
}

const NON_RETRYABLE: Record<string, string> = {
  UnsafeLayoutError: FailureTypes.UnsafeLayout,
  HostKeyMismatchError: FailureTypes.HostKeyMismatch,
  ImageDigestError: FailureTypes.InvalidInput,
  ProfileError: FailureTypes.InvalidInput,
  ZodError: FailureTypes.InvalidInput,
  CommitRefusedError: FailureTypes.UnsafeLayout,
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

function mapped<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (e) {
      throw toFailure(e);
    }
  };
}

export function createActivities(deps: ActivityDeps = { powerDriverFor }): HostActivities {
  const acts: HostActivities = {
    inspectHost: (p) => onHost(p, (h) => inspectFacts(h, p)),
    prepareSpare: (p, f) => onHost(p, (h) => formatSpare(h, f)),
    installRelease: (p, f) => onHost(p, (h) => installRelease(h, p, f)),
    carryConfig: (p, f) => onHost(p, (h) => carryConfig(h, p, f)),
    carryBack: (p, f) => onHost(p, (h) => carryBack(h, p, f)),
    finalSync: (p, f, prev) => onHost(p, (h) => finalSync(h, p, f, prev)),
    addBootEntry: (p, f) => onHost(p, (h) => addBootEntry(h, p, f)),
    removeBootEntry: (p, f, e) => onHost(p, (h) => removeBootEntry(h, p, f, e)),
    trialBoot: (p, f, e) => onHost(p, (h) => trialBoot(h, p, f, e)),
    awaitComeback: (p, before, ms) => awaitComeback(p, before, ms),
    checkHealth: (p) => checkHealth(p),
    commitSlot: (p, f, s) => onHost(p, (h) => commitSlot(h, p, f, s)),
    probeHost: (p) => probeOnce(p),
    rebootToSlot: (p, f, s, once) => onHost(p, (h) => rebootToSlot(h, p, f, s, once)),
    powerReset: async (p) => {
      const driver = deps.powerDriverFor(p.power);
      if (!driver) throw ApplicationFailure.create({ message: `no power driver configured for ${p.name}`, type: FailureTypes.NoPowerDriver, nonRetryable: true });
      await driver.reset();
    },
    measureHostDowntime: (p, t) => measureHostDowntime(p, t),
  };
  return Object.fromEntries(Object.entries(acts).map(([k, fn]) => [k, mapped(fn as never)])) as unknown as HostActivities;
}

