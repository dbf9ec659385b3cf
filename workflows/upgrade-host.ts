// upgradeHost: the A/B upgrade runbook as a durable workflow. Reads top to bottom:
//   inspect → prepare spare → install release → carry config → add boot entry
//   → await approval → final config sync → trial boot → await comeback (timer) → health
//   → commit → measure downtime.
// Any failure before the trial boot: compensations in reverse, then the execution fails
// (UpgradeFailed, carrying the final status). Any failure after it: automatic rollback to the old
// slot (SSH reboot, else power reset, else the operator), compensations, result 'rolled-back'.
// Not approved: compensations, result 'rejected'.
import type { UpgradeInput, UpgradeResult } from '../lib/workflow-api.js';
import { activitiesFor } from './activity-options.js';
import { awaitApproval } from './approval.js';
import { checkedInput } from './checked-input.js';
import { summarizeFacts } from './describe.js';
import { endFailed, endRejected } from './endings.js';
import { setHandlers } from './handlers.js';
import { HostRun } from './host-run.js';
import { Saga } from './saga.js';
import { switchSlot } from './switch-slot.js';

export async function upgradeHost(raw: UpgradeInput): Promise<UpgradeResult> {
  const run = new HostRun('upgradeHost', raw);
  const inbox = setHandlers(run); // before anything can block
  const saga = new Saga(run);
  try {
    const input = await checkedInput(raw); // before any host activity
    const { profile } = input;
    const a = activitiesFor(profile);

    // 1. What are we working with: which slot runs, which is spare, is the layout safe.
    const facts = await run.phase('inspect', () => a.inspect.inspectHost(profile), summarizeFacts);
    const home = facts.active.name;
    const spare = facts.spare.name;
    Object.assign(run.status, { facts, fromSlot: home, toSlot: spare });

    // 2. Make a fresh filesystem on the spare slot (the running one keeps serving).
    await run.phase('prepareSpare', () => a.prepare.prepareSpare(profile, facts), () => `formatted slot ${spare} (${facts.spare.device})`);

    // 3. Install the new release onto it.
    const install = await run.phase(
      'installRelease',
      () => a.install.installRelease(profile, facts),
      (r) => `${r.prettyName}, kernel ${r.kernel}`,
    );
    run.status.install = install;

    // 4. Carry the configuration over and enable the same services.
    const carry = await run.phase(
      'carryConfig',
      () => a.prepare.carryConfig(profile, facts),
      (c) => `${c.carried.length} files carried, ${c.regenerated.length} regenerated, ${c.skipped.length} skipped`,
    );
    run.status.carry = carry;

    // 5. A GRUB entry for the spare slot. Its undo, removeBootEntry, is registered before it runs:
    //    addBootEntry may change GRUB's files and still fail.
    const entry = await saga.step(
      'addBootEntry',
      { phase: 'compensate.removeBootEntry', run: () => a.grub.removeBootEntry(profile, facts), otherwise: "check the host's GRUB configuration by hand" },
      () => a.grub.addBootEntry(profile, facts),
      (e) => `entry ${e.entryId} → slot ${e.targetSlot}`,
    );
    run.status.bootEntry = entry;

    // 6. A human says when (unless autoApprove).
    const decision = await awaitApproval(run, inbox, input, `reboot ${profile.name} into slot ${spare} (${install.prettyName})`);
    if (!decision.approved) return await endRejected(run, saga, decision);

    // 7. Files edited since step 4 are copied again at the last moment.
    run.status.carry = await run.phase(
      'finalSync',
      () => a.prepare.finalSync(profile, facts, carry),
      (c) => `${c.carried.length} files in sync${c.resynced?.length ? `, changed since the first carry: ${c.resynced.join(', ')}` : ''}`,
    );

    // Steps 8–12 are switch-slot.ts, shared with rollbackHost:
    //  8. Trial boot: one-time GRUB entry or kexec; GRUB's default stays on the old slot, so a
    //     hang or reset from here on lands back there. Never retried.
    //  9. The comeback watch: a new boot must answer on the spare slot before the deadline.
    // 10. Health of the new system.
    // 11. Commit: the new slot becomes GRUB's default. The old slot stays bootable for a later
    //     rollbackHost.
    // 12. Downtime as the users saw it, plus the host's own account (best effort).
    // Whatever fails from step 8 on rolls the host back to the old slot (recovery.ts), for the
    // reason given here.
    return await switchSlot(
      { run, inbox, saga, a, profile, facts },
      {
        home,
        target: spare,
        reboot: {
          phase: 'trialBoot',
          run: () => a.reboot.trialBoot(profile, facts, entry),
          describe: (b) => `${b.mode} reboot into slot ${spare} issued`,
        },
        rollBackWhen: {
          missed: (missed) => missed,
          cameBackOn: (back) => `host came back on slot ${back.slot} (${back.rootDevice}), not on slot ${spare}: the trial boot did not take`,
          unhealthy: (summary) => `health checks failed on slot ${spare}: ${summary}`,
        },
      },
    );
  } catch (err) {
    return await endFailed(run, saga, err);
  }
}
