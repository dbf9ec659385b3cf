// The public face of the fleet campaign workflow: its input, status, and the messages an
// operator or the CLI sends it. Pure, like lib/workflow-api.ts (imported by the workflow sandbox,
// the client and the tests; checked by scripts/lint-workflows.js).
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CampaignSpec } from './campaign.js';
import { oneAtATime, TASK_QUEUE, type WorkflowState } from './workflow-api.js';

export const CAMPAIGN_WORKFLOW_TYPE = 'fleetCampaign';

/** One campaign of a name runs at a time (scheduled runs get the schedule's timestamp appended). */
export function campaignWorkflowId(name: string): string {
  return `ab-upgrade-campaign/${name}`;
}

/** Starting a campaign while one of the same name runs is refused (WorkflowExecutionAlreadyStartedError). */
export const campaignStartOptions = (name: string, taskQueue: string = TASK_QUEUE) => oneAtATime(campaignWorkflowId(name), taskQueue);

/**
 * The failure type an activity's SSH connection failure arrives with (activities/ssh.ts throws
 * SshConnectError; Temporal keeps the error's name as the type). A host whose upgrade failed on
 * it is reported `unreachable` — and counted against the budget like any other failure.
 */
export const UNREACHABLE_FAILURE_TYPE = 'SshConnectError';

// ---------------------------------------------------------------------------------------------
// Input and status

export interface CampaignInput extends CampaignSpec {
  requestedBy?: string;
  /** continueAsNew at a wave boundary once the history has this many events (default 10 000). */
  historyLimit?: number;
  /** State carried across continueAsNew; never set by callers. */
  carried?: CampaignCarry;
}

export type HostState =
  | 'pending'
  | 'running'
  /** Its rollback waits for a human (the child workflow is still open): counted as failed. */
  | 'awaiting-operator'
  | 'committed'
  | 'rolled-back'
  | 'failed'
  | 'unreachable'
  | 'rejected'
  | 'cancelled'
  /** Another upgrade or rollback of the host was running: not started a second time. */
  | 'busy'
  /** Listed in the campaign's `skip`: never started, not counted as failed. */
  | 'skipped';

/** Every state in which a host has not committed and is no longer being worked on by this wave. */
export const FAILED_HOST_STATES: readonly HostState[] = ['awaiting-operator', 'rolled-back', 'failed', 'unreachable', 'rejected', 'cancelled', 'busy'];
export const isFailedHost = (s: HostState): boolean => FAILED_HOST_STATES.includes(s);

export interface HostRecord {
  name: string;
  state: HostState;
  /** The host's own workflow (ab-upgrade/<name>): `ab-upgrade status <name>` shows its phases. */
  workflowId: string;
  runId?: string;
  /** Wave number of its latest attempt. */
  wave?: number;
  attempts: number;
  reason?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface WaveRecord {
  /** 1-based position in the campaign (retry waves are inserted after the last wave that ran). */
  number: number;
  /** 1 = the campaign's plan; each retry-failed adds a round. */
  round: number;
  hosts: string[];
  state: 'pending' | 'running' | 'done';
  approvedBy?: string;
  startedAt?: string;
  endedAt?: string;
  /** Hosts of this wave that ended not committed. */
  failed?: string[];
}

export type CampaignState = 'running' | 'paused' | 'awaiting-approval' | 'waiting-for-window' | 'halted' | 'done' | 'cancelled';

export interface CampaignStatus {
  campaign: string;
  state: CampaignState;
  hosts: HostRecord[];
  waves: WaveRecord[];
  /** The wave running, or the next to run. */
  currentWave?: number;
  failures: { count: number; budget: number; hosts: string[] };
  /** pause was asked for: the running wave finishes, no new one starts. */
  pauseRequested: boolean;
  /** The maintenance window open now or opening next (ISO 8601). */
  window?: { open: boolean; opensAt: string; closesAt: string };
  waitingFor?: string;
  /** Why it halted or was cancelled. */
  reason?: string;
  notices: string[];
  requestedBy?: string;
  startedAt: string;
  endedAt?: string;
  /** How many times the workflow continued as new (history kept small). */
  continuedAsNew: number;
}

/** What the workflow hands to its next run. */
export interface CampaignCarry {
  status: CampaignStatus;
  paused: boolean;
}

// ---------------------------------------------------------------------------------------------
// Messages

export interface ByInput {
  by: string;
  reason?: string;
}
export interface ApproveWaveInput extends ByInput {
  /** If given, must be the wave awaiting approval (guards against approving the wrong one). */
  wave?: number;
}
export interface ApproveWaveAck {
  wave: number;
  hosts: string[];
}
export interface RetryFailedAck {
  hosts: string[];
}

/** pause: the running wave finishes, no new wave starts until resume. */
export const pauseSignal = defineSignal<[ByInput]>('pause');
export const resumeSignal = defineSignal<[ByInput]>('resume');
/** Let the wave awaiting approval start. The update is refused unless one is awaiting approval. */
export const approveWaveUpdate = defineUpdate<ApproveWaveAck, [ApproveWaveInput]>('approveWave');
export const approveWaveSignal = defineSignal<[ApproveWaveInput]>('approveWave');
/** Once done or halted: run the failed hosts again (in waves), then carry on with any waves not yet run. */
export const retryFailedUpdate = defineUpdate<RetryFailedAck, [ByInput]>('retryFailed');
export const retryFailedSignal = defineSignal<[ByInput]>('retryFailed');
export const campaignStatusQuery = defineQuery<CampaignStatus>('status');

/** Sent by a host's workflow to its parent campaign when its state changes (e.g. awaiting-operator). */
export interface HostStateReport {
  host: string;
  runId: string;
  state: WorkflowState;
  waitingFor?: string;
}
export const hostStateSignal = defineSignal<[HostStateReport]>('hostState');
