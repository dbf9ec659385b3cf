// fstab for the new slot: its own root and the data partition by UUID, plus every other line of
// the old slot's fstab (ESP, swap, extra mounts) that does not name the old root or the data mount.
export interface FstabInput {
  rootUuid: string;
  rootFstype: string;
  dataUuid: string;
  dataFstype: string;
  dataMountPoint: string;
  /** The old slot's /etc/fstab. */
  previous: string;
}

export function renderFstab(i: FstabInput): string {
  const kept: string[] = [];
  for (const line of i.previous.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const fields = t.split(/\s+/);
    const mountPoint = fields[1];
    if (mountPoint === '/' || mountPoint === i.dataMountPoint) continue;
    kept.push(t);
  }
  return [
    '# /etc/fstab written by ab-upgrade for this slot',
    `UUID=${i.rootUuid}\t/\t${i.rootFstype}\terrors=remount-ro\t0\t1`,
    `UUID=${i.dataUuid}\t${i.dataMountPoint}\t${i.dataFstype}\tdefaults\t0\t2`,
    ...kept,
    '',
  ].join('\n');
}
