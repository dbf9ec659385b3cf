// rollbackHost: return a committed host to its previous slot, any time after an upgrade
// (the way back an operator can take at any later time, not only during the trial boot).
//   inspect → approval → [carry the configuration back] → one-time reboot into the previous
//   slot → comeback watch → verify slot → health → commit the previous slot.
// The reboot is one-time (grub-reboot): GRUB's default stays on the current slot, so if the
// previous slot does not come back healthy, a reset (power driver, or the operator) lands the
// host back on the current slot; the workflow then ends 'rolled-back', meaning "this rollback
// was abandoned, the host still runs the current slot".
import { otherSlot } from '../lib/contract.js';
import type { RollbackInput, UpgradeResult } from '../lib/workflow-api.js';
import { activitiesFor } from './activity-options.js';
import { awaitApproval } from './approval.js';
import { checkedInput } from './checked-input.js';
import { summarizeFacts } from './describe.js';
import { endFailed, endRejected } from './endings.js';
import { setHandlers } from './handlers.js';
import { HostRun } from './host-run.js';
import { Saga } from './saga.js';
import { switchSlot } from './switch-slot.js';

export async function rollbackHost(raw: RollbackInput): Promise<UpgradeResult> {
  const run = new HostRun('rollbackHost', raw);
  const inbox = setHandlers(run); // before anything can block
  const saga = new Saga(run); // stays empty: nothing here needs undoing
  try {
    const input = await checkedInput(raw); // before any host activity
    const { profile } = input;
    const a = activitiesFor(profile);

    // 1. Which slot runs now; the previous one is the other.
    const facts = await run.phase('inspect', () => a.inspect.inspectHost(profile), summarizeFacts);
    const home = facts.active.name;
    const previous = otherSlot(home);
    Object.assign(run.status, { facts, fromSlot: home, toSlot: previous });

    // 2. A human says when (unless autoApprove).
    const decision = await awaitApproval(run, inbox, input, `reboot ${profile.name} back into its previous slot ${previous} (${facts.spare.device})`);
    if (!decision.approved) return await endRejected(run, saga, decision);

    // 3. Optionally carry today's configuration back onto it, at the last moment.
    if (input.carryBack) {
      run.status.carry = await run.phase(
        'carryBack',
        () => a.prepare.carryBack(profile, facts),
        (c) => `${c.carried.length} files carried back, ${c.regenerated.length} regenerated, ${c.usersMerged.length} users, ${c.servicesEnabled.length} services`,
      );
    }

    // Steps 4–7 are switch-slot.ts, shared with upgradeHost:
    // 4. One-time reboot into the previous slot. Never retried.
    // 5. It must come back on the previous slot before the deadline.
    // 6. Health of the previous system.
    // 7. Commit: the previous slot is the default again.
    // Whatever fails from step 4 on returns the host to the current slot (recovery.ts) and
    // abandons the rollback, for the reason given here.
    return await switchSlot(
      { run, inbox, saga, a, profile, facts },
      {
        home,
        target: previous,
        reboot: {
          phase: 'rebootToSlot',
          run: () => a.reboot.rebootToSlot(profile, facts, previous, true),
          describe: (b) => `${b.mode} one-time reboot into slot ${previous} issued`,
        },
        rollBackWhen: {
          missed: (missed) => `${missed}; rollback abandoned, host returned to slot ${home}`,
          cameBackOn: (back) => `host came back on slot ${back.slot}, not on slot ${previous}: the one-time boot did not take; rollback abandoned`,
          unhealthy: (summary) => `health checks failed on slot ${previous}: ${summary}; rollback abandoned`,
        },
      },
    );
  } catch (err) {
    return await endFailed(run, saga, err);
  }
}
