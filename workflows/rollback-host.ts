// rollbackHost: return a committed host to its previous slot, any time after an upgrade
// (the seed's "return to the state before the upgrade after an arbitrary period of time").
//   inspect → approval → [carry the configuration back] → one-time reboot into the previous
//   slot → comeback watch → verify slot → health → commit the previous slot.
// The reboot is one-time (grub-reboot): GRUB's default stays on the current slot, so if the
// previous slot does not come back healthy, a reset (power driver, or the operator) lands the
// host back on the current slot; the workflow then ends 'rolled-back', meaning "this rollback
// was abandoned, the host still runs the current slot".
import { otherSlot, type SlotName } from '../lib/contract.js';
import type { RollbackInput, UpgradeResult } from '../lib/workflow-api.js';
import { Runbook, comebackMissed, summarizeHealth } from './runbook.js';
import { checkedInput } from './checked-input.js';

export async function rollbackHost(raw: RollbackInput): Promise<UpgradeResult> {
  const { input, invalid } = checkedInput(raw); // the profile is validated before any activity
  const rb = new Runbook('rollbackHost', input); // registers the handlers first
  let home: SlotName | undefined;
  try {
    if (invalid) throw invalid;
    const a = rb.start();
    const { profile } = input;
    const { comebackDeadline } = profile.timings;

    // 1. Which slot runs now; the previous one is the other.
    const facts = await rb.inspect();
    home = facts.active.name;
    const previous = otherSlot(home);
    rb.status.fromSlot = home;
    rb.status.toSlot = previous;

    // 2. A human says when (unless autoApprove).
    const decision = await rb.awaitApproval(`reboot ${profile.name} back into its previous slot ${previous} (${facts.spare.device})`);
    if (!decision.approved) return await rb.endRejected(decision);

    // 3. Optionally carry today's configuration back onto it, at the last moment.
    if (input.carryBack) {
      rb.status.carry = await rb.phase(
        'carryBack',
        () => a.prepare.carryBack(profile, facts),
        (c) => `${c.carried.length} files carried back, ${c.regenerated.length} regenerated, ${c.usersMerged.length} users, ${c.servicesEnabled.length} services`,
      );
    }

    // 4. One-time reboot into the previous slot. Never retried.
    rb.rebootIssued = true;
    const boot = await rb.phase(
      'rebootToSlot',
      () => a.reboot.rebootToSlot(profile, facts, previous, true),
      (b) => `${b.mode} one-time reboot into slot ${previous} issued`,
    );

    // 5. It must come back on the previous slot before the deadline.
    const back = await rb.watchComeback('awaitComeback', boot.bootIdBefore, boot.issuedAt, comebackDeadline);
    if (!back) return await rb.rollBack(home, `${comebackMissed(previous, comebackDeadline, rb.comebackFailure)}; rollback abandoned, host returned to slot ${home}`);
    if (back.slot !== previous) {
      return await rb.rollBack(home, `host came back on slot ${back.slot}, not on slot ${previous}: the one-time boot did not take; rollback abandoned`);
    }

    // 6. Health of the previous system.
    const health = await rb.phase('checkHealth', () => a.health.checkHealth(profile), summarizeHealth);
    rb.status.health = health;
    if (!health.ok) {
      return await rb.rollBack(home, `health checks failed on slot ${previous}: ${summarizeHealth(health)}; rollback abandoned`);
    }

    // 7. Commit: the previous slot is the default again.
    await rb.phase('commitSlot', () => a.commit.commitSlot(profile, facts, previous), () => `slot ${previous} is the default`);

    await rb.recordDowntime(boot, back, health);
    return rb.finish('committed');
  } catch (err) {
    return await rb.fail(err, home);
  }
}
