// The host state that a chaos case compares before and after the workflow (slot, os-release,
// GRUB files, grubenv), and grubenvMatch, the one grubenv difference tolerated on the old slot.
import type { VmHandle } from '../../lab/vm.js';
import { grubFiles, hostSlot, onVm } from '../../test/helpers/lab-env.js';

export interface HostState {
  slot: string;
  version: string;
  grub: Record<string, string>;
  grubenv: string;
}

export async function hostState(vm: VmHandle): Promise<HostState> {
  return {
    slot: await hostSlot(vm),
    version: (await onVm(vm, '. /etc/os-release; echo "$VERSION_ID"')).trim(),
    grub: await grubFiles(vm),
    grubenv: await onVm(vm, 'cat /boot/grub/grubenv'),
  };
}

/** 'identical', 'empty next_entry' (the one tolerated difference, see the header), or null. */
export function grubenvMatch(before: string, after: string): 'identical' | 'empty next_entry' | null {
  if (before === after) return 'identical';
  if (before.length !== after.length) return null;
  const vars = (t: string) => t.split('\n').filter((l) => l !== '' && !l.startsWith('#') && l !== 'next_entry=');
  return JSON.stringify(vars(before)) === JSON.stringify(vars(after)) ? 'empty next_entry' : null;
}

export const otherSlot = (s: string) => (s === 'a' ? 'b' : 'a');
