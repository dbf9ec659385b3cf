// What `ab-upgrade plan` prints: the exact changes an upgrade would make to this host, from
// read-only facts. Nothing here touches the host.
import type { HostFacts, PreflightReport } from './contract.js';
import { spareFsLabel } from './blockdev.js';
import { carryList, REGENERATED } from './carry.js';
import { formatDurationMs } from './duration.js';
import { slotCmdline, slotEntryId } from './grub.js';
import type { LayoutAssessment } from './layout.js';
import { renderPreflight } from './preflight.js';
import type { Profile } from './profile.js';
import { installSummary, pullSummary } from './profile-summary.js';
import { describeReleaseCheck, type ReleaseCheck } from './signature.js';

const mib = (b: number) => `${Math.round(b / 1048576)} MiB`;

/** What the pre-flight gather adds: the report, the operator's own units that will be carried, the release's check. */
export interface PlanExtras {
  preflight?: PreflightReport;
  localUnits?: string[];
  release?: ReleaseCheck;
}

export function renderPlan(profile: Profile, a: LayoutAssessment, present: Set<string>, extras: PlanExtras = {}): string {
  const out: string[] = [`plan for ${profile.name} (${profile.user}@${profile.host}:${profile.port}) — nothing has been written`];
  for (const w of a.warnings) out.push(`warning: ${w}`);
  const preflight = extras.preflight ? ['', ...renderPreflight(extras.preflight)] : [];
  if (!a.ok) {
    out.push('REFUSED — the upgrade would stop before writing anything:', ...a.refusals.map((r) => `  - ${r}`), ...preflight);
    return out.join('\n');
  }
  const localUnits = extras.localUnits ?? [];
  const listed = carryList(profile);
  const f: HostFacts = a.facts;
  const r = profile.release;
  out.push(
    `host: ${f.hostname}, ${f.distro.prettyName}, kernel ${f.kernel}, ${f.bootMode.toUpperCase()} boot, GRUB ${f.grub.version}`,
    `active slot ${f.active.name}: ${f.active.device} (${f.active.fstype ?? '?'}, ${mib(f.active.sizeBytes)}, ${mib(f.active.usedBytes ?? 0)} used)`,
    `spare slot ${f.spare.name}: ${f.spare.device} (${mib(f.spare.sizeBytes)})`,
    `data: ${f.data.device} at ${f.data.mountPoint} (UUID ${f.data.uuid}) — kept, mounted by UUID on the new slot`,
    '',
    'steps:',
    `  1. format ${f.spare.device}: mkfs.ext4 -L ${spareFsLabel(f.spare)}${f.spare.uuid ? ` -U ${f.spare.uuid}` : ''} (erases slot ${f.spare.name})`,
    r.source === 'debootstrap'
      ? `  2. install Debian ${r.suite} from ${r.mirror} with debootstrap on the host${r.packages.length ? ` (+ ${r.packages.join(', ')})` : ''}`
      : `  2. stream ${r.url} (${r.format}${r.sha256 ? `, sha256 ${r.sha256.slice(0, 12)}…` : ''}) ${r.pull ? pullSummary(r.pull) : 'over SSH'} and ${
          r.format === 'ext4-image'
            ? `write it to ${f.spare.device} with dd, the host checking the digest of what it received; then e2fsck, UUID and label of slot ${f.spare.name}, resize2fs to the slot`
            : `unpack onto slot ${f.spare.name}, the host checking the digest of what it received`
        }`,
    ...(extras.release ? [`     ${describeReleaseCheck(extras.release)}`] : []),
    `     steps 1 and 2 on the host at ${installSummary(profile.install, r)}`,
    '  3. carry configuration to the new slot:',
    ...listed.map((p) => `       ${present.has(p) ? 'copy ' : 'skip '} ${p}${present.has(p) ? '' : ' (absent)'}`),
    // found on the host, so present; carryList drops the excluded ones
    ...carryList(profile, localUnits)
      .filter((p) => !listed.includes(p))
      .map((p) => `       copy  ${p} (local unit)`),
    ...REGENERATED.map((p) => `       write ${p} (regenerated)`),
    '       enable the services enabled here that exist in the new release (local units included)',
    `  4. GRUB on slot ${f.active.name}: back up /boot/grub/{custom.cfg,grubenv,grub.cfg} and /etc/default/grub,`,
    `     add menu entry ${slotEntryId(f.spare.name)} to /boot/grub/custom.cfg (cmdline: ${slotCmdline(f.cmdline, f.spare.name, profile.kernelArgs)})`,
    ...(f.grub.defaultIsSaved ? [] : ['     set GRUB_DEFAULT=saved in /etc/default/grub and run update-grub (restored on rollback)']),
    `  5. wait for approval (timeout ${formatDurationMs(profile.timings.approvalTimeout)}), then re-carry changed files`,
    profile.reboot === 'kexec'
      ? `  6. kexec into slot ${f.spare.name}'s kernel (GRUB default stays on slot ${f.active.name})`
      : `  6. grub-reboot ${slotEntryId(f.spare.name)} (one time) and reboot`,
    `  7. wait up to ${formatDurationMs(profile.timings.comebackDeadline)} for a new boot on slot ${f.spare.name}, then health checks:`,
    '       systemd finished booting',
    ...profile.health.units.map((u) => `       unit ${u} active`),
    ...profile.health.tcpPorts.map((p) => `       tcp port ${p} listening`),
    ...profile.health.commands.map((c) => `       ${c.name ?? c.run}`),
    `  8. commit: slot ${f.spare.name} takes over GRUB (custom.cfg, update-grub, grub-set-default, grub-install ${f.bootMode === 'uefi' ? 'to the ESP' : `to ${f.disk}`})`,
    `  on failure: back to slot ${f.active.name} ${profile.power.driver === 'none' ? 'over SSH, or by an operator reset (no power driver)' : `over SSH or by a ${profile.power.driver} reset`}`,
    ...preflight,
  );
  return out.join('\n');
}
