// A case in progress: CaseRun waits for the case's point, injects its fault and drives the
// workflow to its end; CaseResult is what one case records in chaos.json.
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { QmpPowerDriver } from '../../activities/power.js';
import type { Profile } from '../../lib/profile.js';
import {
  approveUpdate,
  hostRecoveredSignal,
  isFinalState,
  rejectUpdate,
  statusQuery,
  type PhaseName,
  type WorkflowState,
  type WorkflowStatus,
} from '../../lib/workflow-api.js';
import type { VmHandle } from '../../lab/vm.js';
import { finalStatus, onVm } from '../../test/helpers/lab-env.js';
import { PointMissed, SPARE, type CaseDef, type EndState, type Fault, type Scenario } from './cases.js';
import { log, round, sleep } from './options.js';
import { aborting } from './processes.js';
import { restartServer, within, type Session } from './session.js';
import { WorkerProcess } from './worker-process.js';

const POLL_MS = 300;

export interface CaseResult {
  name: string;
  point: string;
  fault: Fault;
  workflow: CaseDef['workflow'];
  scenario: Scenario;
  /** Whether the fault went in at its point (false: the workflow got past the point first). */
  injected: boolean;
  /** The phase the status query showed when the fault went in. */
  faultPhase: string | null;
  workflowState: WorkflowState | 'unknown';
  reason: string | null;
  endState: EndState;
  verified: boolean;
  problems: string[];
  notes: string[];
  /** The workflow's phases: phase:outcome:seconds. */
  path: string[];
  /** The profile's timings, ms. */
  timings: Profile['timings'] | null;
  /** Activities that needed more than one attempt, as name#attempt (from the history; absent in
   *  the first cases recorded, from before it was collected). */
  retried?: string[];
  /** Whole case: VM boot to the end of the host checks. */
  seconds: number;
  bootSeconds: number;
  /** Workflow start to its end. */
  workflowSeconds: number;
  /** Fault injected to the workflow's end. */
  afterFaultSeconds: number | null;
  verifySeconds: number;
  date: string;
}

export class CaseRun {
  worker!: WorkerProcess;
  handle!: WorkflowHandle;
  decided = false;
  /** The last status the query answered (the fault goes in without asking again). */
  lastStatus: WorkflowStatus | null = null;
  readonly notes: string[] = [];
  private workers = 0;

  constructor(
    readonly def: CaseDef,
    readonly sess: Session,
    readonly vm: VmHandle,
    readonly logDir: string,
    readonly deadline: number,
  ) {}

  note(text: string): void {
    this.notes.push(text);
    log(`${this.def.name}: ${text}`);
  }

  async startWorker(): Promise<number> {
    const t = Date.now();
    this.workers++;
    this.worker = await WorkerProcess.start(this.sess.address, this.sess.taskQueue, join(this.logDir, `worker-${this.workers}.log`));
    return (Date.now() - t) / 1000;
  }

  /** The status query, bounded; null when it does not answer (worker or server away). */
  async status(): Promise<WorkflowStatus | null> {
    try {
      const s = await within(this.sess.client, 15_000, () => this.handle.query(statusQuery));
      this.lastStatus = s;
      return s;
    } catch {
      return null;
    }
  }

  /** Polls the status until `pred`; PointMissed when `missed` says it got past, or at the deadline. */
  async waitStatus(what: string, pred: (s: WorkflowStatus) => boolean, missed: (s: WorkflowStatus) => boolean): Promise<WorkflowStatus> {
    const end = this.deadline;
    for (let i = 0; i < 100_000 && Date.now() < end && !aborting; i++) {
      const s = await this.status();
      if (s && pred(s)) return s;
      if (s && (isFinalState(s.state) || missed(s))) throw new PointMissed(`${what}: not reached (phase ${s.phase}, state ${s.state})`);
      await sleep(POLL_MS);
    }
    throw new PointMissed(`${what}: not reached within the case's time`);
  }

  /** Waits until the phase is one of `phases`; missed once one of `passed` has ended and the phase moved on. */
  waitPhase(phases: PhaseName[], passed: PhaseName[] = phases): Promise<WorkflowStatus> {
    return this.waitStatus(
      `phase ${phases.join('|')}`,
      (s) => (phases as string[]).includes(s.phase),
      (s) => s.timeline.some((p) => passed.includes(p.phase) && p.endedAt) && !(phases as string[]).includes(s.phase),
    );
  }

  /**
   * Runs a wait loop on the host (45 s per SSH session) until `cond` holds; then, with
   * checkPhase, the workflow must still be in one of `phases`.
   */
  async waitOnHost(what: string, cond: string, phases: PhaseName[], checkPhase: boolean, intervalS: number): Promise<void> {
    const rounds = Math.round(45 / intervalS);
    const loop = `i=0; while [ $i -lt ${rounds} ]; do if { ${cond}; } >/dev/null 2>&1; then echo HIT; exit 0; fi; sleep ${intervalS}; i=$((i+1)); done; echo WAIT`;
    const movedOn = (s: WorkflowStatus) =>
      isFinalState(s.state) || (s.timeline.some((p) => phases.includes(p.phase) && p.endedAt) && !(phases as string[]).includes(s.phase));
    for (let i = 0; i < 2000 && Date.now() < this.deadline && !aborting; i++) {
      const r = await this.vm.ssh(loop, { timeoutMs: 90_000 });
      if (r.stdout.includes('HIT')) {
        if (!checkPhase) return;
        const s = await this.status();
        if (s && (phases as string[]).includes(s.phase)) return;
        throw new PointMissed(`${what}: seen on the host in phase ${s?.phase ?? '?'}, not ${phases.join('|')}`);
      }
      const s = await this.status();
      if (s && movedOn(s)) throw new PointMissed(`${what}: not seen on the host before phase ${s.phase} (state ${s.state})`);
      if (!r.stdout.includes('WAIT')) await sleep(2_000); // the host did not answer (rebooting)
    }
    throw new PointMissed(`${what}: not seen on the host within the case's time`);
  }

  /** Approves or rejects through the update (bounded, a few tries). */
  async decide(approve: boolean): Promise<void> {
    for (let i = 1; i <= 5; i++) {
      try {
        await within(this.sess.client, 60_000, () =>
          this.handle.executeUpdate(approve ? approveUpdate : rejectUpdate, { args: [{ by: 'chaos', reason: `chaos case ${this.def.name}` }] }),
        );
        this.decided = true;
        this.note(`${approve ? 'approved' : 'rejected'}`);
        return;
      } catch (e) {
        this.note(`${approve ? 'approve' : 'reject'} attempt ${i} failed: ${(e as Error).message}`);
        await sleep(5_000);
      }
    }
    throw new Error(`could not ${approve ? 'approve' : 'reject'} within 5 tries`);
  }

  /** What an operator does for awaiting-operator: a hand reset (QMP), then hostRecovered. */
  async actAsOperator(s: WorkflowStatus): Promise<void> {
    this.note(`awaiting-operator: ${s.waitingFor ?? '?'}`);
    const before = await this.vm.bootId(10_000);
    await new QmpPowerDriver(this.vm.qmpSocket).reset();
    await this.vm.waitForSsh(300_000, before ? { notBootId: before } : {}).catch((e: Error) => this.note(`after the operator's reset: ${e.message}`));
    await within(this.sess.client, 30_000, () => this.handle.signal(hostRecoveredSignal, { by: 'chaos', note: 'QMP reset by the chaos harness' }));
    this.note('operator: QMP reset, hostRecovered signalled');
  }

  /** The fault itself. Returns false when it could not go in (no SSH session to cut). */
  async inject(s: WorkflowStatus | null): Promise<boolean> {
    switch (this.def.fault) {
      case 'none':
        return false;
      case 'worker-kill': {
        await this.worker.kill();
        const ready = await this.startWorker();
        this.note(`worker SIGKILLed (last phase seen: ${s?.phase ?? '?'}); a new worker process was ready ${round(ready)} s later`);
        return true;
      }
      case 'server-restart': {
        const took = await restartServer(this.sess);
        this.note(`Temporal server SIGKILLed in phase ${s?.phase ?? '?'} and answering again on the same database ${round(took)} s later`);
        if (!this.worker.alive) {
          this.note(`the worker exited while the server was away (${this.worker.exit}); starting a new one`);
          await this.startWorker();
        }
        return true;
      }
      case 'ssh-cut': {
        // Every root session's sshd process except the one running this command ($PPID); the
        // listener's command line is different ("sshd: /usr/sbin/sshd -D [listener] ...").
        const out = await onVm(
          this.vm,
          `n=0; for p in $(pgrep -f '^sshd(-session)?: root@notty'); do [ "$p" = "$PPID" ] && continue; kill -9 "$p" && n=$((n+1)); done; echo $n`,
        );
        const n = Number(out.trim());
        this.note(`cut ${n} SSH session(s) on the host in phase ${s?.phase ?? '?'}`);
        return n > 0;
      }
      case 'host-key': {
        // On the spare (the new slot): ssh.service makes new host keys before sshd starts. The
        // final sync copies carried files onto the new slot but leaves this drop-in alone.
        const spare = s?.facts?.spare.device;
        if (!spare) throw new Error('no spare device in the status');
        // Written through the runbook's own mount when it is read-write (a second mount of the
        // same filesystem could not be read-write while that one is read-only), else our own.
        await onVm(
          this.vm,
          `set -e
if findmnt -n -o OPTIONS --mountpoint ${SPARE} | grep -q '^rw'; then m=${SPARE}; own=; else m=/run/chaos-rekey; own=1; mkdir -p $m; mount ${spare} $m; fi
d=$m/etc/systemd/system/ssh.service.d; mkdir -p $d
printf '%s\\n' '[Service]' "ExecStartPre=/bin/sh -c 'rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; ssh-keygen -A'" > $d/zz-chaos-new-host-keys.conf
sync -f $d
[ -z "$own" ] || umount $m`,
        );
        this.note(`new slot (${spare}) set to boot with new SSH host keys`);
        return true;
      }
    }
  }

  /** Activities whose completing attempt was not the first, from the history (bounded). */
  async retriedActivities(): Promise<string[]> {
    try {
      const events = (await within(this.sess.client, 60_000, () => this.handle.fetchHistory())).events ?? [];
      const names = new Map<string, string>();
      const out: string[] = [];
      for (const e of events) {
        const scheduled = e.activityTaskScheduledEventAttributes;
        if (scheduled) names.set(String(e.eventId), scheduled.activityType?.name ?? '?');
        const started = e.activityTaskStartedEventAttributes;
        if (started && (started.attempt ?? 1) > 1) out.push(`${names.get(String(started.scheduledEventId)) ?? '?'}#${started.attempt}`);
      }
      return out;
    } catch (e) {
      this.note(`could not read the history: ${(e as Error).message.split('\n')[0]}`);
      return [];
    }
  }

  /** Drives the workflow to its end (approval, operator), bounded; returns the final status. */
  async drive(): Promise<WorkflowStatus | null> {
    let operatorActs = 0;
    for (let i = 0; i < 10_000 && Date.now() < this.deadline && !aborting; i++) {
      if (!this.worker.alive) {
        this.note(`the worker exited by itself (${this.worker.exit}); starting a new one`);
        await this.startWorker();
      }
      let running = true;
      try {
        running = (await within(this.sess.client, 15_000, () => this.handle.describe())).status.name === 'RUNNING';
      } catch {
        /* server away: ask again */
      }
      if (!running) break;
      const s = await this.status();
      if (s?.state === 'awaiting-approval' && !this.decided) await this.decide(this.def.scenario !== 'reject');
      if (s?.state === 'awaiting-operator') {
        if (operatorActs >= 2) {
          this.note('still awaiting the operator after two hand resets; giving up on this case');
          return s;
        }
        operatorActs++;
        await this.actAsOperator(s);
      }
      await sleep(2_000);
    }
    for (let i = 1; i <= 5 && !aborting; i++) {
      try {
        return await within(this.sess.client, 60_000, () => finalStatus(this.handle));
      } catch (e) {
        if (Date.now() >= this.deadline) break;
        this.note(`reading the result, attempt ${i}: ${(e as Error).message.split('\n')[0]}`);
        await sleep(3_000);
      }
    }
    return this.status();
  }
}
