// The contract between the workflows and the host activities. Workflows import only these
// types (never the activity code), so the same workflow runs against the real SSH activities
// in production and against scripted fakes in the fast workflow tests.
import type { CheckedProfile, Profile } from './profile.js';

/** How long one attempt of phase 3 (installRelease) may take, the image's transfer included. */
export const INSTALL_LIMIT_MS = 3 * 3600_000;

export type SlotName = 'a' | 'b';
export const otherSlot = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

export interface SlotFacts {
  name: SlotName;
  /** Kernel device path, e.g. /dev/vda2. */
  device: string;
  partuuid: string | null;
  uuid: string | null;
  label: string | null;
  fstype: string | null;
  sizeBytes: number;
  /** Bytes used on the filesystem (active slot only; null for the spare). */
  usedBytes: number | null;
}

export interface HostFacts {
  hostname: string;
  bootId: string;
  kernel: string;
  cmdline: string;
  distro: { id: string; versionId: string; codename: string; prettyName: string };
  active: SlotFacts;
  spare: SlotFacts;
  /** Whole disk holding the slots: where grub-install writes the boot code. */
  disk: string;
  data: { device: string; uuid: string; fstype: string; mountPoint: string };
  bootMode: 'bios' | 'uefi';
  esp: { device: string; uuid: string; mountPoint: string } | null;
  grub: {
    version: string;
    /** Path of the grubenv that GRUB reads at boot (on the slot that owns the boot). */
    grubenvPath: string;
    /** Device holding grubenv, and its type as lsblk reports it (part, lvm, raid1, ...). */
    grubenvDevice: string;
    grubenvDeviceType: string;
    defaultIsSaved: boolean;
    savedEntry: string | null;
  };
  /** Slot that owns the boot (whose GRUB is installed); normally the active one. */
  bootOwner: SlotName;
  inspectedAt: string;
}

export interface InstallResult {
  prettyName: string;
  kernel: string;
  /** Bytes of the image streamed by this install (null: debootstrap, or already complete). */
  bytes: number | null;
  /** How those bytes reached the host: over SSH, or pulled by the host over TCP (release.pull). */
  via?: 'ssh' | 'pull';
  durationMs: number;
  /** An image release: the sha256 verified on the controller and again on the host, and its signing key (null: allowed unsigned). */
  image?: { sha256: string; keyId: string | null };
}

export interface CarryReport {
  /** Files copied verbatim from the active slot. */
  carried: string[];
  /** Files written by us (fstab, merged passwd/group/shadow, /etc/default/grub). */
  regenerated: string[];
  skipped: { path: string; reason: string }[];
  /** Human accounts carried from the old slot into the new release's account files. */
  usersMerged: string[];
  /** Units enabled on the old slot and enabled on the new one. */
  servicesEnabled: string[];
  /**
   * Keyed digest of every carried file at carry time, for the final sync: sha256 over a random
   * key kept on the host, then the content, so the history (where this report is kept) reveals
   * nothing about the files, private host keys included.
   */
  digests: Record<string, string>;
  /** The operator's own systemd units (files, drop-ins, masks, linked units) carried, as paths. */
  localUnits?: string[];
  /** Set by the final sync: carried files that changed since the first carry. */
  resynced?: string[];
}

/** One reason `plan` finds that this host's upgrade would fail (inhibitor) or may go wrong (warning). */
export interface PreflightFinding {
  severity: 'inhibitor' | 'warning';
  what: string;
  fix: string;
}

export interface PreflightReport {
  inhibitors: number;
  warnings: number;
  findings: PreflightFinding[];
  /** Every line of the running slot's fstab and what the new slot's fstab does with it. */
  fstab: { line: string; carried: string }[];
}

export interface BootEntry {
  /** GRUB menuentry id for the slot to boot. */
  entryId: string;
  targetSlot: SlotName;
  title: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  /** saved_entry before we touched GRUB (null when none was set). */
  previousDefault: string | null;
  /** Whether we had to switch /etc/default/grub to GRUB_DEFAULT=saved (restored on compensation). */
  changedGrubDefault: boolean;
  /** Where the originals of every GRUB file we changed are kept on the host. */
  backupDir: string;
}

export interface TrialBootResult {
  mode: 'firmware' | 'kexec';
  /** Epoch ms when the reboot was issued (controller clock). */
  issuedAt: number;
  bootIdBefore: string;
  /** The host's own clock (epoch seconds) when the reboot was issued, for host-side downtime. */
  hostIssuedAtS?: number | null;
}

export interface ComebackResult {
  bootId: string;
  slot: SlotName;
  rootDevice: string;
  /** Epoch ms of the first successful probe after the reboot. */
  answeredAt: number;
  probes: number;
}

export interface HealthCheckResult {
  name: string;
  ok: boolean;
  detail: string;
}
export interface HealthReport {
  ok: boolean;
  checks: HealthCheckResult[];
  /** Epoch ms when the checks finished. */
  checkedAt: number;
}

export interface ProbeResult {
  reachable: boolean;
  bootId: string | null;
  slot: SlotName | null;
  detail: string;
}

/** The host's own view of the downtime, read from its journals after the comeback. */
export interface HostDowntime {
  /** Seconds from the old system starting to shut down to the new slot's sshd being active. */
  toSshdS: number | null;
  /** ... to the last health-checked unit being active. */
  toServicesS: number | null;
}

/** Activities that never touch a host; every worker has them (worker/worker.ts). */
export interface InputActivities {
  checkHostProfile(profile: unknown): Promise<CheckedProfile>;
}

/** Every activity takes the profile first: it carries no secrets, only references to them. */
export interface HostActivities {
  /** Read-only facts; throws a non-retryable `UnsafeLayout` / `HostKeyMismatch` failure. */
  inspectHost(profile: Profile): Promise<HostFacts>;
  /** mkfs the spare slot with a label naming it. Refuses if the spare is mounted or active. */
  prepareSpare(profile: Profile, facts: HostFacts): Promise<void>;
  /** debootstrap on the host or stream the image; heartbeats progress. */
  installRelease(profile: Profile, facts: HostFacts): Promise<InstallResult>;
  carryConfig(profile: Profile, facts: HostFacts): Promise<CarryReport>;
  /** carryConfig onto the previous slot (a complete system of its own) before a rollback. */
  carryBack(profile: Profile, facts: HostFacts): Promise<CarryReport>;
  /** Re-copy carried files that changed since `previous`. */
  finalSync(profile: Profile, facts: HostFacts, previous: CarryReport): Promise<CarryReport>;
  /** Add a GRUB entry for the spare on the owning slot's GRUB. */
  addBootEntry(profile: Profile, facts: HostFacts): Promise<BootEntry>;
  /**
   * Compensation: remove our entry and restore the GRUB files from the backup addBootEntry made
   * for this inspected boot (found from `facts`, so it also undoes an addBootEntry that failed
   * half-way) and the saved default inspect saw.
   */
  removeBootEntry(profile: Profile, facts: HostFacts): Promise<void>;
  /** grub-reboot or kexec into the spare; the dropped connection is success. */
  trialBoot(profile: Profile, facts: HostFacts, entry: BootEntry): Promise<TrialBootResult>;
  /** Polls (heartbeating) until a new boot_id answers; runs until cancelled by the workflow's timer. */
  awaitComeback(profile: Profile, bootIdBefore: string, pollIntervalMs: number): Promise<ComebackResult>;
  /** Health checks until all pass or healthTimeout; throws HostRebooted if a boot other than `bootId` answers. */
  checkHealth(profile: Profile, bootId?: string): Promise<HealthReport>;
  /** Make `slot` the default and move GRUB ownership to it (it must be the running slot). */
  commitSlot(profile: Profile, facts: HostFacts, slot: SlotName): Promise<void>;
  /** Quick read-only probe: is the host answering, on which boot and slot. */
  probeHost(profile: Profile): Promise<ProbeResult>;
  /** Over SSH: make sure the owning GRUB boots `slot` next (default or one-time) and reboot. */
  rebootToSlot(profile: Profile, facts: HostFacts, slot: SlotName, oneTime: boolean): Promise<TrialBootResult>;
  /** Through the power driver: hard reset. Throws non-retryable `NoPowerDriver` when none. */
  powerReset(profile: Profile): Promise<void>;
  /** Host-side downtime from the journals of the previous and current boot. */
  measureHostDowntime(profile: Profile, trial?: TrialBootResult): Promise<HostDowntime>;
}

/** Failure types the workflows branch on (ApplicationFailure.type). */
export const FailureTypes = {
  UnsafeLayout: 'UnsafeLayout',
  HostKeyMismatch: 'HostKeyMismatch',
  NoPowerDriver: 'NoPowerDriver',
  InvalidInput: 'InvalidInput',
  CommandFailed: 'CommandFailed',
  /** The release image's signature or pinned sha256 does not check out: nothing was sent to the host. */
  ReleaseUnverified: 'ReleaseUnverified',
  /** The host booted again while its health was checked: retrying would check another boot. */
  HostRebooted: 'HostRebooted',
} as const;
