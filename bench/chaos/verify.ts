// The check after a chaos case: the host must be in one of the two allowed end states, new-slot
// or old-slot (see bench/chaos.ts's header), and the workflow's final state must agree with it.
import { isFinalState, type WorkflowStatus } from '../../lib/workflow-api.js';
import { onVm, plainReboot, slotManifest } from '../../test/helpers/lab-env.js';
import type { CaseRun } from './case-run.js';
import type { EndState } from './cases.js';
import { grubenvMatch, hostState, otherSlot, type HostState } from './host-state.js';

/** Checks the host's end state against the state before the workflow started. */
export async function verify(r: CaseRun, before: HostState, expectedNewVersion: string, s: WorkflowStatus | null, manifestBefore: string | null) {
  const vm = r.vm;
  const problems: string[] = [];
  const from = before.slot;
  const to = otherSlot(from);
  let endState: EndState = 'third';
  try {
    await vm.waitForSsh(300_000);
    const now = await hostState(vm);
    if (now.slot === to) {
      if (!now.version.startsWith(expectedNewVersion)) problems.push(`slot ${to} runs VERSION_ID ${now.version}, expected ${expectedNewVersion}`);
      if (!now.grubenv.split('\n').includes(`saved_entry=ab-upgrade-slot-${to}`)) problems.push(`grubenv has no saved_entry=ab-upgrade-slot-${to}`);
      if (/^next_entry=\S/m.test(now.grubenv)) problems.push('grubenv has a pending one-time entry');
      if (!problems.length) {
        const after = await plainReboot(vm);
        if (after !== to) problems.push(`a plain reboot came back on slot ${after}, not ${to}`);
        else endState = 'new-slot';
      }
    } else if (now.slot === from) {
      if (now.version !== before.version) problems.push(`slot ${from} runs VERSION_ID ${now.version}, was ${before.version}`);
      for (const f of ['/boot/grub/grub.cfg', '/boot/grub/custom.cfg', '/etc/default/grub']) {
        if (now.grub[f] !== before.grub[f]) problems.push(`${f}: sha256 ${now.grub[f]}, was ${before.grub[f]}`);
      }
      const env = grubenvMatch(before.grubenv, now.grubenv);
      if (!env) problems.push(`/boot/grub/grubenv differs beyond an empty next_entry: ${JSON.stringify(now.grubenv.replace(/#+$/, ''))}, was ${JSON.stringify(before.grubenv.replace(/#+$/, ''))}`);
      else if (env !== 'identical') r.note(`grubenv equal but for an empty next_entry= line`);
      const leftovers = (await onVm(vm, 'ls -d /boot/grub/ab-upgrade-backup-* 2>/dev/null || true')).trim();
      if (leftovers) r.note(`GRUB backup left behind: ${leftovers}`);
      if (manifestBefore !== null) {
        const m = await slotManifest(vm, '/', /^(boot\/grub\/ab-upgrade-backup-)/);
        if (m !== manifestBefore) problems.push(`slot ${from}'s system files changed (manifest differs)`);
      }
      if (!problems.length) {
        const after = await plainReboot(vm);
        if (after !== from) problems.push(`a plain reboot came back on slot ${after}, not ${from}`);
        else endState = 'old-slot';
      }
    } else {
      problems.push(`the host runs neither slot`);
    }
  } catch (e) {
    problems.push(`host check failed: ${(e as Error).message.split('\n')[0]}`);
  }
  // The workflow must say what the host shows.
  const state = s?.state;
  if (!state) problems.push('the workflow reported no final status');
  else if (!isFinalState(state)) problems.push(`the workflow did not end (state ${state})`);
  else if (endState === 'new-slot' && state !== 'committed') problems.push(`host committed on the new slot, workflow says ${state}`);
  else if (endState === 'old-slot' && state === 'committed') problems.push('host back on the old slot, workflow says committed');
  if (s && r.def.require) {
    const why = r.def.require(s);
    if (why) problems.push(why);
  }
  return { endState, problems };
}
