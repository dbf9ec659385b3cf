// fstab for the new slot: its own root and the data partition by UUID, plus every other line of
// the old slot's fstab (ESP, swap, binds, network and tmpfs mounts) verbatim, except the lines
// that mount the old root or the data partition, however they name them.
export interface FstabInput {
  rootUuid: string;
  rootFstype: string;
  dataUuid: string;
  dataFstype: string;
  dataMountPoint: string;
  /** Other names of the data partition: its kernel path, the profile's reference (LABEL=…). */
  dataRefs?: string[];
  /** Names of the old root (the running slot): kernel path, UUID=…, PARTUUID=…, LABEL=…. */
  oldRootRefs?: string[];
  /** The old slot's /etc/fstab. */
  previous: string;
}

export interface FstabEntry {
  /** The line as written (trimmed). */
  line: string;
  /** Fields with fstab's octal escapes (\040 for a space) decoded. */
  spec: string;
  mountPoint: string;
  fstype: string;
  options: string;
  dump: string;
  pass: string;
}

/** fstab(5) escapes whitespace and backslashes in fields as \ooo octal. */
export const fstabUnescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
export const fstabEscape = (s: string): string => s.replace(/[\\\s]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

/** "/srv/data/" and "/srv/data" name the same mount point. */
export const normalMountPoint = (p: string): string => (p === '/' ? p : p.replace(/\/+$/, '') || '/');

export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    out.push({
      line,
      spec: fstabUnescape(f[0] ?? ''),
      mountPoint: normalMountPoint(fstabUnescape(f[1] ?? '')),
      fstype: f[2] ?? '',
      options: f[3] ?? 'defaults',
      dump: f[4] ?? '0',
      pass: f[5] ?? '0',
    });
  }
  return out;
}

/** UUID=, LABEL= and /dev/disk/by-* forms compare case-insensitively on the value for UUIDs. */
function sameRef(spec: string, ref: string): boolean {
  if (spec === ref) return true;
  const m = /^(UUID|PARTUUID)=(.*)$/i.exec(ref);
  if (!m) return false;
  const kind = m[1]!.toUpperCase();
  const v = m[2]!.toLowerCase();
  const byDir = kind === 'UUID' ? 'by-uuid' : 'by-partuuid';
  return spec.toLowerCase() === `${kind.toLowerCase()}=${v}` || spec.toLowerCase() === `/dev/disk/${byDir}/${v}`;
}

export type FstabDisposition = 'root' | 'data' | 'old-root-device' | 'kept';

/** What the new slot's fstab does with one line of the old one. */
export function fstabDisposition(e: FstabEntry, i: Pick<FstabInput, 'dataMountPoint' | 'dataUuid' | 'dataRefs' | 'oldRootRefs'>): FstabDisposition {
  if (e.mountPoint === '/') return 'root';
  const dataRefs = [`UUID=${i.dataUuid}`, ...(i.dataRefs ?? [])];
  if (e.mountPoint === normalMountPoint(i.dataMountPoint) || dataRefs.some((r) => sameRef(e.spec, r))) return 'data';
  if ((i.oldRootRefs ?? []).some((r) => sameRef(e.spec, r))) return 'old-root-device';
  return 'kept';
}

export function renderFstab(i: FstabInput): string {
  const kept: string[] = [];
  let dataLine: FstabEntry | null = null;
  for (const e of parseFstab(i.previous)) {
    const d = fstabDisposition(e, i);
    // The line mounting the data partition where the profile says wins over one that merely names it.
    if (d === 'data' && (!dataLine || (e.mountPoint === normalMountPoint(i.dataMountPoint) && dataLine.mountPoint !== e.mountPoint))) dataLine = e;
    if (d === 'kept') kept.push(e.line);
  }
  const opts = dataLine ? `${dataLine.options}\t${dataLine.dump}\t${dataLine.pass}` : 'defaults\t0\t2';
  return [
    '# /etc/fstab written by ab-upgrade for this slot',
    `UUID=${i.rootUuid}\t/\t${i.rootFstype}\terrors=remount-ro\t0\t1`,
    `UUID=${i.dataUuid}\t${fstabEscape(normalMountPoint(i.dataMountPoint))}\t${i.dataFstype}\t${opts}`,
    ...kept,
    '',
  ].join('\n');
}
