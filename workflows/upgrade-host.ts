// upgradeHost: the seed's runbook as a durable workflow. Reads top to bottom:
//   inspect → prepare spare → install release → carry config → add boot entry
//   → await approval → final config sync → trial boot → await comeback (timer) → health
//   → commit → measure downtime.
// Any failure before the trial boot: compensations in reverse, then the execution fails
// (UpgradeFailed, carrying the final status). Any failure after it: automatic rollback to the old
// slot (SSH reboot, else power reset, else the operator), compensations, result 'rolled-back'.
// Not approved: compensations, result 'rejected'.
import type { SlotName } from '../lib/contract.js';
import type { UpgradeInput, UpgradeResult } from '../lib/workflow-api.js';
import { checkedInput } from './checked-input.js';
import { Runbook, comebackMissed, summarizeHealth } from './runbook.js';

export async function upgradeHost(raw: UpgradeInput): Promise<UpgradeResult> {
  const { input, invalid } = checkedInput(raw);
  const rb = new Runbook('upgradeHost', input); // registers the handlers first
  let home: SlotName | undefined;
  try {
    if (invalid) throw invalid;
    const a = rb.start();
    const { profile } = input;
    const { comebackDeadline } = profile.timings;

    // 1. What are we working with: which slot runs, which is spare, is the layout safe.
    const facts = await rb.inspect();
    home = facts.active.name;
    const spare = facts.spare.name;
    rb.status.fromSlot = home;
    rb.status.toSlot = spare;

    // 2. Make a fresh filesystem on the spare slot (the running one keeps serving).
    await rb.phase('prepareSpare', () => a.prepare.prepareSpare(profile, facts), () => `formatted slot ${spare} (${facts.spare.device})`);

    // 3. Install the new release onto it.
    rb.status.install = await rb.phase(
      'installRelease',
      () => a.install.installRelease(profile, facts),
      (r) => `${r.prettyName}, kernel ${r.kernel}`,
    );

    // 4. Carry the configuration over and enable the same services.
    rb.status.carry = await rb.phase(
      'carryConfig',
      () => a.prepare.carryConfig(profile, facts),
      (c) => `${c.carried.length} files carried, ${c.regenerated.length} regenerated, ${c.skipped.length} skipped`,
    );

    // 5. A GRUB entry for the spare slot; undone by removeBootEntry if we do not finish. The undo
    //    is registered first: addBootEntry may change GRUB's files and still fail.
    rb.pushCompensation('compensate.removeBootEntry', () => a.grub.removeBootEntry(profile, facts));
    const entry = await rb.phase(
      'addBootEntry',
      () => a.grub.addBootEntry(profile, facts),
      (e) => `entry ${e.entryId} → slot ${e.targetSlot}`,
    );
    rb.status.bootEntry = entry;

    // 6. A human says when (unless autoApprove).
    const decision = await rb.awaitApproval(`reboot ${profile.name} into slot ${spare} (${rb.status.install.prettyName})`);
    if (!decision.approved) return await rb.endRejected(decision);

    // 7. Files edited since step 4 are copied again at the last moment.
    rb.status.carry = await rb.phase(
      'finalSync',
      () => a.prepare.finalSync(profile, facts, rb.status.carry!),
      (c) => `${c.carried.length} files in sync${c.resynced?.length ? `, changed since the first carry: ${c.resynced.join(', ')}` : ''}`,
    );

    // 8. Trial boot: one-time GRUB entry or kexec; GRUB's default stays on the old slot, so a
    //    hang or reset from here on lands back there. Never retried.
    rb.rebootIssued = true;
    const boot = await rb.phase(
      'trialBoot',
      () => a.reboot.trialBoot(profile, facts, entry),
      (b) => `${b.mode} reboot into slot ${spare} issued`,
    );

    // 9. The comeback watch: a new boot must answer on the spare slot before the deadline.
    const back = await rb.watchComeback('awaitComeback', boot.bootIdBefore, boot.issuedAt, comebackDeadline);
    if (!back) return await rb.rollBack(home, comebackMissed(spare, comebackDeadline, rb.comebackFailure));
    if (back.slot !== spare) {
      return await rb.rollBack(home, `host came back on slot ${back.slot} (${back.rootDevice}), not on slot ${spare}: the trial boot did not take`);
    }

    // 10. Health of the new system.
    const health = await rb.phase('checkHealth', () => a.health.checkHealth(profile), summarizeHealth);
    rb.status.health = health;
    if (!health.ok) return await rb.rollBack(home, `health checks failed on slot ${spare}: ${summarizeHealth(health)}`);

    // 11. Commit: the new slot becomes GRUB's default. The old slot stays bootable for a later rollbackHost.
    await rb.phase('commitSlot', () => a.commit.commitSlot(profile, facts, spare), () => `slot ${spare} is the default`);

    // 12. Downtime as the users saw it, plus the host's own account (best effort).
    await rb.recordDowntime(boot, back, health);
    return rb.finish('committed');
  } catch (err) {
    return await rb.fail(err, home);
  }
}
