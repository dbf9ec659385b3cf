// One chaos case from start to end on a fresh lab VM (its profile, the fault, the host check, the
// result), and the cached disk committed on slot B that the rollbackHost cases start from.
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QmpPowerDriver } from '../../activities/power.js';
import { startHostWorkflow } from '../../client/follow.js';
import type { Profile, ProfileInput } from '../../lib/profile.js';
import type { WorkflowState, WorkflowStatus } from '../../lib/workflow-api.js';
import { bootLab, labProfile } from '../../lab/session.js';
import type { VmHandle } from '../../lab/vm.js';
import { hostSlot, onVm, slotManifest } from '../../test/helpers/lab-env.js';
import { CaseRun, type CaseResult } from './case-run.js';
import { PointMissed, type CaseDef, type EndState, type Scenario } from './cases.js';
import { hostState, otherSlot } from './host-state.js';
import { log, round, sleep } from './options.js';
import { liveVms } from './processes.js';
import type { Session } from './session.js';
import { verify } from './verify.js';

/**
 * The profile for a case's scenario: the lab's timings (comeback deadline 10 min, for slow
 * emulated boots), an approval that waits long enough for any fault, and the failures e2e's
 * settings for the health-fail and never-back scenarios. With new host keys the comeback fails
 * as soon as the new slot's sshd answers, and the rollback waits out the rest of the deadline: 5 min.
 */
function caseProfile(sess: Session, vm: VmHandle, c: CaseDef): Profile {
  const timings = { approvalTimeout: '2h', comebackDeadline: '10m', pollInterval: '2s', healthTimeout: '2m' };
  let release = sess.release.good;
  const o: Partial<ProfileInput> = { timings };
  if (c.scenario === 'health-fail') {
    o.health = { commands: [{ name: 'still bookworm', run: 'grep -q bookworm /etc/os-release', timeout: '10s' }], units: [], tcpPorts: [] };
    o.timings = { ...timings, healthTimeout: '20s' };
  } else if (c.scenario === 'never-back') {
    release = sess.release.broken;
    o.timings = { ...timings, comebackDeadline: '150s' };
  }
  if (c.fault === 'host-key') o.timings = { ...timings, comebackDeadline: '5m' };
  return labProfile(sess.image, vm, release, o);
}

const expectedState: Record<Scenario, WorkflowState> = { good: 'committed', 'health-fail': 'rolled-back', 'never-back': 'rolled-back', reject: 'rejected' };

export async function runCase(sess: Session, c: CaseDef, base: string | null): Promise<CaseResult> {
  const started = Date.now();
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(4, 14);
  const name = `chaos-${c.name}-${stamp}`.slice(0, 60);
  const logDir = join(sess.workDir, 'logs', c.name);
  mkdirSync(logDir, { recursive: true });
  log(`${c.name}: ${c.fault} at ${c.point}; booting a fresh VM${base ? ' (committed on slot B)' : ''}`);
  const image = base ? { ...sess.image, disk: base } : sess.image;
  const vm = await bootLab(image, name, join(sess.workDir, 'vms'));
  liveVms.add(vm);
  const bootSeconds = (Date.now() - started) / 1000;
  const r = new CaseRun(c, sess, vm, logDir, started + sess.caseTimeoutMs);
  let injected = false;
  let faultPhase: string | null = null;
  let injectedAt: number | null = null;
  let wfStart = Date.now();
  let wfEnd = Date.now();
  let final: WorkflowStatus | null = null;
  let endState: EndState = 'third';
  let problems: string[] = [];
  let verifySeconds = 0;
  let timings: Profile['timings'] | null = null;
  let retried: string[] = [];
  try {
    await r.startWorker();
    const before = await hostState(vm);
    let expectedNew = sess.releaseVersion;
    if (c.workflow === 'rollbackHost') {
      const other = otherSlot(before.slot);
      expectedNew = (
        await onVm(vm, `m=/run/chaos-other; mkdir -p $m; mount -o ro LABEL=ab-slot-${other} $m; . $m/etc/os-release; echo "$VERSION_ID"; umount $m`)
      ).trim();
    }
    const manifestBefore = sess.manifest ? await slotManifest(vm, '/', /^(boot\/grub\/ab-upgrade-backup-)/) : null;
    const profile = caseProfile(sess, vm, c);
    timings = profile.timings;
    wfStart = Date.now();
    r.handle = await startHostWorkflow(sess.client, c.workflow, profile, c.approval === 'auto');
    log(`${c.name}: ${c.workflow} started (${r.handle.workflowId}); waiting for the point`);
    if (c.fault !== 'none') {
      try {
        await c.at(r);
        faultPhase = r.lastStatus?.phase ?? null;
        injected = await r.inject(r.lastStatus);
        injectedAt = Date.now();
      } catch (e) {
        if (!(e instanceof PointMissed)) throw e;
        r.note(`point missed, no fault injected: ${e.message}`);
      }
    }
    final = await r.drive();
    wfEnd = Date.now();
    log(`${c.name}: workflow ended ${final?.state ?? 'unknown'}${final?.reason ? ` (${final.reason})` : ''}; checking the host`);
    const expected = c.fault === 'host-key' ? 'rolled-back' : expectedState[c.scenario];
    if (final && final.state !== expected) r.note(`ended ${final.state}; without the fault this scenario ends ${expected}`);
    retried = await r.retriedActivities();
    await r.worker.stop();
    const v0 = Date.now();
    ({ endState, problems } = await verify(r, before, expectedNew, final, manifestBefore));
    verifySeconds = (Date.now() - v0) / 1000;
  } catch (e) {
    problems.push(`case error: ${(e as Error).stack ?? e}`);
    wfEnd = Date.now();
  } finally {
    await r.worker?.kill();
    try {
      copyFileSync(vm.serialLog, join(logDir, 'serial.log'));
    } catch {
      /* no serial log */
    }
    await vm.stop();
    liveVms.delete(vm);
    rmSync(vm.dir, { recursive: true, force: true });
  }
  const result: CaseResult = {
    name: c.name,
    point: c.point,
    fault: c.fault,
    workflow: c.workflow,
    scenario: c.scenario,
    injected,
    faultPhase,
    workflowState: final?.state ?? 'unknown',
    reason: final?.reason ?? null,
    endState,
    verified: endState !== 'third' && problems.length === 0,
    problems,
    notes: r.notes,
    path:
      final?.timeline.map((p) => `${p.phase}:${p.outcome ?? 'running'}${p.endedAt ? `:${round((Date.parse(p.endedAt) - Date.parse(p.startedAt)) / 1000)}s` : ''}`) ?? [],
    timings,
    retried,
    seconds: round((Date.now() - started) / 1000),
    bootSeconds: round(bootSeconds),
    workflowSeconds: round((wfEnd - wfStart) / 1000),
    afterFaultSeconds: injectedAt ? round((wfEnd - injectedAt) / 1000) : null,
    verifySeconds: round(verifySeconds),
    date: new Date().toISOString(),
  };
  log(`${c.name}: ${result.verified ? 'VERIFIED' : 'NOT VERIFIED'} ${endState} in ${result.seconds} s${problems.length ? `: ${problems.join('; ')}` : ''}`);
  return result;
}

/**
 * A lab disk committed on slot B (for the rollbackHost cases), cached next to the lab image,
 * keyed by the release: one clean upgrade, then the guest powered off and its overlay kept.
 */
export async function committedBase(sess: Session): Promise<string> {
  const file = join(sess.image.dir, `chaos-committed-${sess.release.good.sha256.slice(0, 16)}.qcow2`);
  if (existsSync(file)) return file;
  log(`making ${file}: one upgrade committed on slot B`);
  const name = `chaos-base-${Date.now().toString(36)}`;
  const vm = await bootLab(sess.image, name, join(sess.workDir, 'vms'));
  liveVms.add(vm);
  const logDir = join(sess.workDir, 'logs', 'committed-base');
  mkdirSync(logDir, { recursive: true });
  const def: CaseDef = { name: 'committed-base', fault: 'none', point: '', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: async () => undefined };
  const r = new CaseRun(def, sess, vm, logDir, Date.now() + sess.caseTimeoutMs);
  try {
    await r.startWorker();
    r.handle = await startHostWorkflow(sess.client, 'upgradeHost', caseProfile(sess, vm, def), true);
    const s = await r.drive();
    await r.worker.stop();
    if (s?.state !== 'committed') throw new Error(`the base upgrade ended ${s?.state ?? 'unknown'}: ${s?.reason ?? ''}`);
    if ((await hostSlot(vm)) !== 'b') throw new Error('the base upgrade committed, but the host is not on slot B');
    await vm.ssh('systemd-run --on-active=1 systemctl poweroff', { timeoutMs: 15_000 });
    const power = new QmpPowerDriver(vm.qmpSocket);
    let off = false;
    for (let i = 0; i < 120 && !off; i++) {
      await sleep(1_000);
      off = (await power.status()) === 'off';
    }
    if (!off) throw new Error('the base VM did not power off within 2 min');
  } finally {
    await r.worker?.kill();
    await vm.stop();
    liveVms.delete(vm);
  }
  renameSync(join(vm.dir, 'overlay.qcow2'), `${file}.part`);
  renameSync(`${file}.part`, file);
  rmSync(vm.dir, { recursive: true, force: true });
  return file;
}
