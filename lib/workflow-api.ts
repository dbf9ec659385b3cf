// The public face of the ab-upgrade workflows: their inputs, results and status, and the
// messages (updates, signals, queries) an operator or the CLI sends them.
//
// Pure and deterministic: imported by the workflows (inside Temporal's sandbox) AND by the
// client and the tests. It may import only @temporalio/workflow's message definitions
// (defineUpdate/defineSignal/defineQuery are plain data and safe outside a workflow),
// `import type` from lib/, and pure lib code. `node scripts/lint-workflows.js` enforces that.
import { ApplicationFailure, defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  BootEntry,
  CarryReport,
  HealthReport,
  HostDowntime,
  HostFacts,
  InstallResult,
  SlotName,
} from './contract.js';
import { hostWorkflowId } from './host-id.js';
import type { Profile } from './profile.js';

/** Task queue the real worker polls and the client starts workflows on. */
export const TASK_QUEUE = 'ab-upgrade';

/** Workflow type names, as registered by the worker (the exported function names). */
export const WorkflowTypes = { upgradeHost: 'upgradeHost', rollbackHost: 'rollbackHost' } as const;
export type WorkflowType = (typeof WorkflowTypes)[keyof typeof WorkflowTypes];

// ---------------------------------------------------------------------------------------------
// Inputs and results

/**
 * Input of `upgradeHost` and `rollbackHost`. The profile is already parsed (`parseProfile`):
 * every duration in `profile.timings` is milliseconds, so tests run the timers in seconds.
 */
export interface UpgradeInput {
  profile: Profile;
  /** Skip the human approval before the reboot (for labs, tests and pre-approved campaigns). */
  autoApprove?: boolean;
  /** Who asked for it (shown in the status and the history). */
  requestedBy?: string;
}
export interface RollbackInput extends UpgradeInput {
  /**
   * Carry the configuration back (ostree#2271): right before the reboot, the carried files,
   * accounts and enabled services of the current slot are copied onto the previous one, so
   * changes made since the upgrade are not lost. Off by default: a newer release's config may
   * not suit the older one.
   */
  carryBack?: boolean;
}

export type WorkflowState =
  | 'running'
  | 'awaiting-approval'
  | 'awaiting-operator'
  | 'committed'
  | 'rolled-back'
  | 'failed'
  | 'rejected'
  | 'cancelled';

/** States in which the workflow has ended. */
export const FINAL_STATES: readonly WorkflowState[] = ['committed', 'rolled-back', 'failed', 'rejected', 'cancelled'];
export const isFinalState = (s: WorkflowState): boolean => FINAL_STATES.includes(s);

/**
 * Phase names in the timeline. The upgrade's own phases come first, in runbook order;
 * `rollback.*` and `compensate.*` only appear when something went wrong.
 */
export type PhaseName =
  | 'inspect'
  | 'prepareSpare'
  | 'installRelease'
  | 'carryConfig'
  | 'carryBack'
  | 'addBootEntry'
  | 'approval'
  | 'finalSync'
  | 'trialBoot'
  | 'rebootToSlot'
  | 'awaitComeback'
  | 'checkHealth'
  | 'commitSlot'
  | 'measureHostDowntime'
  | 'rollback.probe'
  | 'rollback.rebootToSlot'
  | 'rollback.powerReset'
  | 'rollback.awaitOperator'
  | 'rollback.awaitComeback'
  | 'rollback.checkHealth'
  | 'compensate.removeBootEntry';

export type PhaseOutcome = 'ok' | 'failed' | 'skipped' | 'timed-out' | 'rejected' | 'cancelled';

export interface PhaseRecord {
  phase: PhaseName;
  /** ISO 8601, workflow time. */
  startedAt: string;
  endedAt?: string;
  outcome?: PhaseOutcome;
  detail?: string;
  /** ISO 8601, workflow time: when a phase that waits gives up (the comeback watch, the approval). */
  deadlineAt?: string;
}

export interface Downtime {
  /** Epoch ms when the reboot was issued (controller clock, from the activity). */
  issuedAt: number;
  /** Epoch ms of the first successful probe of the new boot. */
  answeredAt: number;
  /** Epoch ms when the health checks passed. */
  healthyAt: number;
  /** healthyAt − issuedAt: what the service users saw. */
  downtimeMs: number;
  /** The host's own account from its journals (best effort). */
  hostSide?: HostDowntime;
}

export interface Decision {
  approved: boolean;
  by: string;
  reason?: string;
  /** ISO 8601, workflow time. */
  at: string;
  via: 'update' | 'signal' | 'auto' | 'timeout';
}

/** What `status` answers, and what the workflow returns when it ends. */
export interface WorkflowStatus {
  workflowType: WorkflowType;
  /** profile.name */
  host: string;
  /** The phase running now, or the last one that ran. */
  phase: PhaseName | 'starting' | 'done';
  state: WorkflowState;
  timeline: PhaseRecord[];
  requestedBy?: string;
  /** Slot the host ran when the workflow started, and the slot it is (being) moved to. */
  fromSlot?: SlotName;
  toSlot?: SlotName;
  facts?: HostFacts;
  install?: InstallResult;
  carry?: CarryReport;
  bootEntry?: BootEntry;
  decision?: Decision;
  /** Health of the target slot (upgrade) or, after a rollback, of the slot the host returned to. */
  health?: HealthReport;
  downtime?: Downtime;
  /** Why the workflow failed, was rejected or rolled back. */
  reason?: string;
  /** In awaiting-* states: exactly what a human has to do to let the workflow continue. */
  waitingFor?: string;
  /** Things worth knowing that did not change the outcome (ignored signals, failed best-effort steps). */
  notices: string[];
  startedAt: string;
  endedAt?: string;
}
export type UpgradeResult = WorkflowStatus;

// ---------------------------------------------------------------------------------------------
// Messages

export interface DecisionInput {
  /** Who decides (a person or a campaign id): recorded in the history. */
  by: string;
  reason?: string;
}
export interface DecisionAck {
  accepted: true;
  approved: boolean;
  by: string;
  /** ISO 8601, workflow time. */
  at: string;
}
export interface HostRecoveredInput {
  by: string;
  note?: string;
}

/**
 * Approve the reboot. As an Update it is refused (validator) unless the workflow is in
 * 'awaiting-approval', so the caller learns at once whether it counted. The Signal of the same
 * name does the same for `temporal workflow signal --name approve --input '{"by":"me"}'`; a
 * signal that arrives in the wrong state is ignored and listed in `status().notices`.
 */
export const approveUpdate = defineUpdate<DecisionAck, [DecisionInput]>('approve');
export const rejectUpdate = defineUpdate<DecisionAck, [DecisionInput]>('reject');
export const approveSignal = defineSignal<[DecisionInput]>('approve');
export const rejectSignal = defineSignal<[DecisionInput]>('reject');

/**
 * The operator reset the host by hand (no power driver, or the driver did not help). Only
 * meaningful in 'awaiting-operator'; the workflow then probes the host to confirm it.
 */
export const hostRecoveredSignal = defineSignal<[HostRecoveredInput]>('hostRecovered');

export const statusQuery = defineQuery<WorkflowStatus>('status');

// ---------------------------------------------------------------------------------------------
// Starting and reading results

/**
 * The failure a workflow ends with when its state is 'failed' (after its compensations ran).
 * Design choice: a failed upgrade ends as a *failed* workflow execution (so the Temporal UI,
 * `temporal workflow list --query 'ExecutionStatus="Failed"'` and parent workflows see it),
 * while 'committed', 'rolled-back' and 'rejected' end as completed executions returning the
 * status. The failure is non-retryable, of type `UpgradeFailed`, and carries the final
 * `WorkflowStatus` as its first detail: use `finalStatusFrom(err)` to get it back.
 * Cancelled workflows end cancelled (their last status is still readable via `status`).
 */
export const UPGRADE_FAILED = 'UpgradeFailed';

/**
 * The final status from whatever `handle.result()` (or a child workflow) threw, or undefined if
 * the error is not an ab-upgrade failure. Walks the `cause` chain (WorkflowFailedError →
 * ApplicationFailure, ChildWorkflowFailure → ApplicationFailure).
 */
export function finalStatusFrom(err: unknown): WorkflowStatus | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ApplicationFailure && e.type === UPGRADE_FAILED) {
      const status = e.details?.[0];
      if (status && typeof status === 'object' && 'state' in status) return status as WorkflowStatus;
    }
  }
  return undefined;
}

/**
 * Options for `client.workflow.start(upgradeHost | rollbackHost, ...)`: one workflow id per host
 * shared by upgrades and rollbacks, so a second one while one runs is refused with
 * `WorkflowExecutionAlreadyStartedError` (conflict policy FAIL), while a new one after the
 * previous ended is allowed (reuse policy ALLOW_DUPLICATE).
 */
export function startOptions(profile: Pick<Profile, 'name'>, taskQueue: string = TASK_QUEUE) {
  return oneAtATime(hostWorkflowId(profile.name), taskQueue);
}

/** Start options for a workflow id of which at most one execution runs at a time (see startOptions). */
export function oneAtATime(workflowId: string, taskQueue: string = TASK_QUEUE) {
  return {
    workflowId,
    taskQueue,
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  } as const;
}

