// Device paths recorded at inspect are kernel names (/dev/sdb2), which may point elsewhere
// after a reboot on a host with several disks. Every activity that may run in a later boot than
// inspect finds the slots again by what does not change: PARTUUID, else the filesystem UUID
// (prepareSpare keeps it).
import type { HostFacts, SlotFacts } from '../lib/contract.js';
import { diskOf, LSBLK_COLUMNS, parseLsblk, relocateSlot, type LsblkDevice } from '../lib/blockdev.js';
import { sh } from './host-io.js';
import type { SshHost } from './ssh.js';

export class SlotMissingError extends Error {
  override name = 'SlotMissingError';
}

/** `facts` with the slots' device paths and the boot disk as this boot names them. */
export function relocateFacts(facts: HostFacts, devices: LsblkDevice[]): HostFacts {
  const move = (slot: SlotFacts): { slot: SlotFacts; dev: LsblkDevice } => {
    const dev = relocateSlot(slot, devices) ?? devices.find((d) => d.path === slot.device && !slot.partuuid && !slot.uuid);
    if (!dev) throw new SlotMissingError(`slot ${slot.name} (PARTUUID ${slot.partuuid ?? '-'}, UUID ${slot.uuid ?? '-'}, was ${slot.device}) is not on this host any more`);
    return { slot: { ...slot, device: dev.path }, dev };
  };
  const active = move(facts.active);
  const spare = move(facts.spare);
  const disk = diskOf(active.dev, devices);
  return { ...facts, active: active.slot, spare: spare.slot, disk: disk?.path ?? facts.disk };
}

export async function currentFacts(h: SshHost, facts: HostFacts): Promise<HostFacts> {
  return relocateFacts(facts, parseLsblk(await sh(h, `lsblk -J -b -o ${LSBLK_COLUMNS}`)));
}
