// The activity proxies of a host workflow, one group per concern, each with its own timeouts and
// retries. Each step or module takes only the groups it calls, as Pick<Activities, ...>.
//
// Retry intervals are fixed (they are not part of the profile); timeouts that depend on the
// host's timings are derived from it. Building the proxies issues no command.
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import { FailureTypes, INSTALL_LIMIT_MS, type HostActivities } from '../lib/contract.js';
import type { Profile } from '../lib/profile.js';
import { UPGRADE_FAILED } from '../lib/workflow-api.js';

/**
 * Failure types never worth retrying, plus our own. CommandFailed is not among them: a command
 * can fail for a passing reason (mirror hiccup, dropped link); each group's attempt bound decides.
 */
const NON_RETRYABLE: string[] = [...Object.values(FailureTypes).filter((t) => t !== FailureTypes.CommandFailed), UPGRADE_FAILED];

/** How the server names an attempt's start-to-close timeout in nonRetryableErrorTypes. */
const START_TO_CLOSE_TIMEOUT = 'TemporalTimeout:StartToClose';

/**
 * Every activity that works over SSH heartbeats while it runs (activities/host-io.ts onHost):
 * when its worker dies, the server gives up on the attempt after this, not after its
 * start-to-close timeout (minutes), and a new worker retries it (where the group retries).
 */
const HEARTBEAT = '30s';

export function activitiesFor(profile: Profile) {
  const t = profile.timings;
  const with_ = (o: ActivityOptions): ActivityOptions => ({
    ...o,
    retry: { ...o.retry, nonRetryableErrorTypes: [...NON_RETRYABLE, ...(o.retry?.nonRetryableErrorTypes ?? [])] },
  });
  const few = { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s' } as const;
  return {
    /** Read-only facts: a few retries (SSH hiccups). */
    inspect: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '2m', heartbeatTimeout: HEARTBEAT, retry: { ...few, maximumAttempts: 3 } })),
    /** mkfs of the spare, config carry-over, final sync: safe to repeat. */
    prepare: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '15m', heartbeatTimeout: HEARTBEAT, retry: { ...few, maximumAttempts: 3 } })),
    /** debootstrap / image stream: long, heartbeats, idempotent (resumes from heartbeat details). */
    install: proxyActivities<HostActivities>(
      with_({
        startToCloseTimeout: INSTALL_LIMIT_MS,
        heartbeatTimeout: '30s',
        retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
      }),
    ),
    /** GRUB entry add/remove: idempotent; removal is a compensation, so it tries harder. */
    grub: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '5m', heartbeatTimeout: HEARTBEAT, retry: { ...few, maximumAttempts: 10 } })),
    /**
     * trialBoot / rebootToSlot: NEVER retried automatically — rebooting twice is wrong (a timed-out
     * attempt, by heartbeat too, only tells the workflow sooner that the reboot's fate is unknown).
     */
    reboot: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '5m', heartbeatTimeout: HEARTBEAT, retry: { maximumAttempts: 1 } })),
    /**
     * The comeback poll: heartbeats every poll, retried without limit; the workflow's own timer
     * (comebackDeadline) bounds it and cancels it.
     */
    comeback: proxyActivities<HostActivities>(
      with_({
        startToCloseTimeout: t.comebackDeadline + 60_000,
        heartbeatTimeout: Math.max(30_000, 3 * t.pollInterval),
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
      }),
    ),
    health: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: t.healthTimeout + 60_000, heartbeatTimeout: HEARTBEAT, retry: { ...few, maximumAttempts: 3 } }),
    ),
    /** grub-set-default on the running slot: idempotent, must eventually happen. */
    commit: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '5m', heartbeatTimeout: HEARTBEAT, retry: { ...few, maximumAttempts: 10 } })),
    /** A quick look: is it up, which boot, which slot. */
    probe: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: '1m', retry: { initialInterval: '1s', maximumAttempts: 2 } }),
    ),
    /**
     * Hard reset through the power driver: one retry (a failed IPMI call usually did nothing), but
     * none after a timed-out attempt, which may have reset the host (its worker died after the
     * reset, or the call hung after the BMC acted): a second reset would hit a host that is
     * booting or back. The recovery loop then probes the host and acts again only if it is not
     * back on its slot. No heartbeat timeout: the driver's call is not an SSH session, and a
     * heartbeat timeout would be retried.
     */
    power: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: '2m', retry: { initialInterval: '2s', maximumAttempts: 2, nonRetryableErrorTypes: [START_TO_CLOSE_TIMEOUT] } }),
    ),
    /** Best effort. */
    measure: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: '2m', heartbeatTimeout: HEARTBEAT, retry: { initialInterval: '1s', maximumAttempts: 2 } }),
    ),
  };
}
export type Activities = ReturnType<typeof activitiesFor>;
