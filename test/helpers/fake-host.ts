// A scripted in-memory host implementing HostActivities, for the workflow tests.
//
// It has two slots (a on /dev/vda2, b on /dev/vda3), a GRUB default and a one-time next entry,
// a boot id that changes on every boot, and an up/down state: a reboot takes `bootDelayMs`,
// then the host answers on the slot GRUB (or kexec) chose. Each test scripts failures:
// installs that throw, boots into a slot that hang until a hard reset, health that fails on a
// slot, a trial boot that does not take. Every activity call is recorded in `calls`, and every
// change the activities (and boots) made to the host in `effects`.
//
// The activities run in the test process (inside the Worker), so the state is shared by all
// workers of a test: a second worker that takes over sees the same host.
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  FailureTypes,
  otherSlot,
  type BootEntry,
  type CarryReport,
  type ComebackResult,
  type HealthReport,
  type HostActivities,
  type HostDowntime,
  type HostFacts,
  type InstallResult,
  type ProbeResult,
  type SlotName,
  type TrialBootResult,
} from '../../lib/contract.js';
import type { Profile } from '../../lib/profile.js';
import { HostKeyMismatchError } from '../../activities/ssh.js';

/** The SSH host key a slot listed in FakeHostScript.newHostKeyOn presents. */
export const FAKE_NEW_HOST_KEY = 'SHA256:bmV3IGhvc3Qga2V5IG9mIHRoZSBuZXcgc2xvdCEhIQ';

export interface FakeHostScript {
  /** How long a reboot takes until the host answers again (default 300 ms). */
  bootDelayMs?: number;
  /** Boots into these slots hang: the host stays dark until a power reset or operatorReset(). */
  hangOnBootInto?: SlotName[];
  /** checkHealth reports failure while running these slots. */
  healthFailsOn?: SlotName[];
  /** These activities fail (non-retryable CommandFailed) with the given message. */
  fail?: Partial<Record<keyof HostActivities, string>>;
  /** These activities do their work (their side effects happen), then fail with the given message. */
  failAfter?: Partial<Record<keyof HostActivities, string>>;
  /** Like `fail`, but only the first call of each fails. */
  failFirst?: Partial<Record<keyof HostActivities, string>>;
  /** installRelease takes this long (heartbeating every 100 ms; resumes from heartbeat details). */
  installDelayMs?: number;
  /** The one-time boot entry does not take: the trial boot lands on the default slot. */
  trialBootFallsBack?: boolean;
  /**
   * Booted into these slots, the host presents FAKE_NEW_HOST_KEY instead of the pinned key: every
   * call that reaches it over SSH (the comeback poll and the probe included) fails with a
   * non-retryable HostKeyMismatch, worded as the real activities word it.
   */
  newHostKeyOn?: SlotName[];
  /** The first checkHealth on these slots finds the host reset (a watchdog): it comes back on GRUB's default. */
  resetDuringHealthOn?: SlotName[];
  /** measureHostDowntime throws. */
  measureFails?: boolean;
  /** measureHostDowntime takes this long before it answers. */
  measureDelayMs?: number;
  /**
   * Calls of this activity block for good, either before its side effect (right after the call
   * is logged) or after it (the host changed, the result is never returned); `hangingIn` names
   * the point while a call blocks. Nothing releases such a call: it is meant for a worker process
   * that is then killed (see ./fake-worker-process.ts).
   */
  hang?: HangPoint;
}

export interface HangPoint {
  activity: keyof HostActivities;
  when: 'before' | 'after';
}

/** The `hangingIn` marker of a hang point. */
export const hangMarker = (h: HangPoint): string => `${h.activity}:${h.when}`;

export interface Call {
  name: keyof HostActivities;
  args: unknown[];
  at: number;
}

const DEVICES: Record<SlotName, string> = { a: '/dev/vda2', b: '/dev/vda3' };

export class FakeHost {
  readonly calls: Call[] = [];
  /** Progress (ms) each installRelease attempt resumed from (its heartbeat details). */
  readonly installResumedFrom: number[] = [];
  /** Slot the host runs (or last ran, while down). */
  running: SlotName;
  defaultSlot: SlotName;
  nextOnce: SlotName | null = null;
  up = true;
  hung = false;
  bootId: string;
  entry: BootEntry | undefined;
  /** Boots so far, counting the first (`boot-<bootSeq>` is the current boot id). */
  bootSeq = 1;
  /** What the activities and boots changed on the host, in order ("mkfs b", "trial boot → b", "up on b"). */
  readonly effects: string[] = [];
  /** Slots whose install is complete (installRelease's marker, written last; mkfs removes it). */
  installMarker: Record<SlotName, boolean> = { a: false, b: false };
  /** A boot in progress: into which slot, and when (epoch ms) the host answers. */
  pendingBoot: { slot: SlotName; at: number } | null = null;
  /** Set while a call blocks at the script's `hang` point (see hangMarker). */
  hangingIn: string | null = null;
  /** Called when a boot ends or a call blocks at the hang point (changes outside the calls' own steps). */
  onChange?: () => void;
  private generation = 0;
  private readonly lastBeat = new WeakMap<Context, unknown>();
  private readonly bootTimers = new Set<NodeJS.Timeout>();

  constructor(
    public script: FakeHostScript = {},
    start: SlotName = 'a',
  ) {
    this.running = start;
    this.defaultSlot = start;
    this.bootId = 'boot-1';
  }

  count(name: keyof HostActivities): number {
    return this.calls.filter((c) => c.name === name).length;
  }
  names(): (keyof HostActivities)[] {
    return this.calls.map((c) => c.name);
  }
  argsOf(name: keyof HostActivities): unknown[][] {
    return this.calls.filter((c) => c.name === name).map((c) => c.args);
  }

  /** The operator resets the box by hand: it boots GRUB's choice at once. */
  operatorReset(): void {
    this.reboot('operator reset', this.grubNext(), 0);
  }

  /** Continues a boot that was in progress (in another process) until `at`. */
  resumeBoot(boot: { slot: SlotName; at: number }): void {
    this.up = false;
    this.hung = false;
    this.scheduleBoot(boot.slot, Math.max(0, boot.at - Date.now()));
  }

  /** Stop pending boots (test cleanup). */
  dispose(): void {
    for (const t of this.bootTimers) clearTimeout(t);
    this.bootTimers.clear();
  }

  // -------------------------------------------------------------------------------------------

  private grubNext(): SlotName {
    const s = this.nextOnce ?? this.defaultSlot;
    this.nextOnce = null;
    return s;
  }

  private reboot(cause: string, slot: SlotName, delayMs = this.script.bootDelayMs ?? 300): void {
    this.effects.push(`${cause} → ${slot}`);
    this.up = false;
    this.hung = false;
    if (this.script.hangOnBootInto?.includes(slot)) {
      ++this.generation;
      this.pendingBoot = null;
      this.hung = true;
      this.effects.push(`hangs booting ${slot}`);
      return;
    }
    this.scheduleBoot(slot, delayMs);
  }

  private scheduleBoot(slot: SlotName, delayMs: number): void {
    const gen = ++this.generation;
    this.pendingBoot = { slot, at: Date.now() + delayMs };
    const t = setTimeout(() => {
      this.bootTimers.delete(t);
      if (gen !== this.generation) return;
      this.bootSeq++;
      this.bootId = `boot-${this.bootSeq}`;
      this.running = slot;
      this.up = true;
      this.pendingBoot = null;
      this.effects.push(`up on ${slot}`);
      this.onChange?.();
    }, delayMs);
    this.bootTimers.add(t);
  }

  private hangsAt(name: keyof HostActivities, when: HangPoint['when']): boolean {
    return this.script.hang?.activity === name && this.script.hang.when === when;
  }

  /** Heartbeats with `details`, remembered so a blocked call can repeat them. */
  private beat(ctx: Context, details: unknown): void {
    this.lastBeat.set(ctx, details);
    ctx.heartbeat(details);
  }

  /**
   * Blocks for good at the script's hang point. The call keeps heartbeating (its last details) as
   * a live worker would, so only its worker's death, not a heartbeat timeout, ends it.
   */
  private async hang(): Promise<never> {
    const ctx = Context.current();
    this.hangingIn = hangMarker(this.script.hang!);
    this.onChange?.();
    setInterval(() => ctx.heartbeat(this.lastBeat.has(ctx) ? this.lastBeat.get(ctx) : ctx.info.heartbeatDetails), 1_000).unref();
    return new Promise<never>(() => undefined);
  }

  private needUp(profile?: Profile): void {
    if (!this.up) throw ApplicationFailure.retryable('ssh: connect to host 192.0.2.10 port 22: No route to host', 'SshConnectError' /* as activities/ssh.ts names it */);
    this.checkHostKey(profile);
  }

  /** The key check of every SSH connection: a slot with new keys is refused, never trusted. */
  private checkHostKey(profile?: Profile): void {
    if (!this.script.newHostKeyOn?.includes(this.running)) return;
    const e = new HostKeyMismatchError(`${profile?.host ?? '192.0.2.10'}:${profile?.port ?? 22}`, FAKE_NEW_HOST_KEY, profile?.hostKey ?? 'the pinned key');
    throw ApplicationFailure.create({ message: e.message, type: FailureTypes.HostKeyMismatch, nonRetryable: true });
  }

  private facts(): HostFacts {
    const slot = (name: SlotName, active: boolean) => ({
      name,
      device: DEVICES[name],
      partuuid: `0000000${name === 'a' ? 2 : 3}-aaaa-bbbb-cccc-000000000000`,
      uuid: null,
      label: `ab-${name}`,
      fstype: 'ext4',
      sizeBytes: 8 * 2 ** 30,
      usedBytes: active ? 2 * 2 ** 30 : null,
    });
    return {
      hostname: 'fake',
      bootId: this.bootId,
      kernel: '6.1.0-fake',
      cmdline: `root=${DEVICES[this.running]} ro`,
      distro: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
      active: slot(this.running, true),
      spare: slot(otherSlot(this.running), false),
      disk: '/dev/vda',
      data: { device: '/dev/vda4', uuid: 'data-uuid', fstype: 'ext4', mountPoint: '/srv' },
      bootMode: 'bios',
      esp: null,
      grub: {
        version: '2.06',
        grubenvPath: '/boot/grub/grubenv',
        grubenvDevice: DEVICES[this.running],
        grubenvDeviceType: 'part',
        defaultIsSaved: true,
        savedEntry: `ab-${this.defaultSlot}`,
      },
      bootOwner: this.defaultSlot,
      inspectedAt: new Date().toISOString(),
    };
  }

  /** The activities the Worker registers. */
  activities(): HostActivities {
    const rec = <K extends keyof HostActivities>(name: K, fn: HostActivities[K]): HostActivities[K] =>
      (async (...args: unknown[]) => {
        this.calls.push({ name, args: args.slice(1), at: Date.now() });
        const first = this.calls.filter((c) => c.name === name).length === 1;
        const failure = this.script.fail?.[name] ?? (first ? this.script.failFirst?.[name] : undefined);
        if (failure) throw ApplicationFailure.nonRetryable(failure, FailureTypes.CommandFailed);
        if (this.hangsAt(name, 'before')) await this.hang();
        const result = await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
        if (this.hangsAt(name, 'after')) await this.hang();
        const after = this.script.failAfter?.[name];
        if (after) throw ApplicationFailure.nonRetryable(after, FailureTypes.CommandFailed);
        return result;
      }) as HostActivities[K];

    const carry: CarryReport = {
      carried: ['/etc/hostname', '/etc/ssh/ssh_host_ed25519_key'],
      regenerated: ['/etc/fstab'],
      skipped: [],
      usersMerged: ['alice'],
      servicesEnabled: ['nginx.service'],
      digests: {},
    };

    return {
      inspectHost: rec('inspectHost', async () => {
        this.needUp();
        return this.facts();
      }),
      prepareSpare: rec('prepareSpare', async (_p, facts) => {
        this.needUp();
        this.installMarker[facts.spare.name] = false;
        this.effects.push(`mkfs ${facts.spare.name}`);
      }),
      installRelease: rec('installRelease', async (_p, facts): Promise<InstallResult> => {
        this.needUp();
        const ctx = Context.current();
        const total = this.script.installDelayMs ?? 0;
        const result = { prettyName: 'Debian GNU/Linux 13 (trixie)', kernel: '6.12.0-fake', bytes: 1_000_000, durationMs: total };
        if (this.installMarker[facts.spare.name]) return result; // complete already: nothing is written again
        let done = (ctx.info.heartbeatDetails as { doneMs?: number } | undefined)?.doneMs ?? 0;
        this.installResumedFrom.push(done);
        while (done < total) {
          await ctx.sleep(100);
          done += 100;
          this.beat(ctx, { doneMs: done });
        }
        this.installMarker[facts.spare.name] = true;
        this.effects.push(`install ${facts.spare.name}`);
        return result;
      }),
      carryConfig: rec('carryConfig', async (_p, facts) => {
        this.needUp();
        this.effects.push(`carry ${facts.active.name}→${facts.spare.name}`);
        return carry;
      }),
      carryBack: rec('carryBack', async (_p, facts) => {
        this.needUp();
        this.effects.push(`carry back ${facts.active.name}→${facts.spare.name}`);
        return carry;
      }),
      finalSync: rec('finalSync', async (_p, facts) => {
        this.needUp();
        this.effects.push(`final sync ${facts.active.name}→${facts.spare.name}`);
        return carry;
      }),
      addBootEntry: rec('addBootEntry', async (_p, facts): Promise<BootEntry> => {
        this.needUp();
        this.effects.push(`boot entry ${facts.spare.name}`);
        this.entry = {
          entryId: `ab-${facts.spare.name}`,
          targetSlot: facts.spare.name,
          title: `ab-upgrade slot ${facts.spare.name}`,
          kernel: '/boot/vmlinuz',
          initrd: '/boot/initrd.img',
          cmdline: `root=${facts.spare.device} ro`,
          previousDefault: `ab-${this.defaultSlot}`,
          changedGrubDefault: false,
          backupDir: '/var/lib/ab-upgrade/grub-backup',
        };
        return this.entry;
      }),
      removeBootEntry: rec('removeBootEntry', async () => {
        this.needUp();
        this.entry = undefined;
        this.nextOnce = null;
        this.effects.push('boot entry removed');
      }),
      trialBoot: rec('trialBoot', async (profile: Profile, facts, entry): Promise<TrialBootResult> => {
        this.needUp();
        const bootIdBefore = this.bootId;
        const issuedAt = Date.now();
        if (profile.reboot === 'kexec') {
          this.reboot('trial kexec', entry.targetSlot);
          return { mode: 'kexec', issuedAt, bootIdBefore };
        }
        if (!this.script.trialBootFallsBack) this.nextOnce = facts.spare.name;
        this.reboot('trial boot', this.grubNext());
        return { mode: 'firmware', issuedAt, bootIdBefore };
      }),
      awaitComeback: rec('awaitComeback', async (profile, bootIdBefore, pollIntervalMs): Promise<ComebackResult> => {
        const ctx = Context.current();
        for (let probes = 1; ; probes++) {
          if (this.up && this.bootId !== bootIdBefore) {
            this.checkHostKey(profile);
            return { bootId: this.bootId, slot: this.running, rootDevice: DEVICES[this.running], answeredAt: Date.now(), probes };
          }
          this.beat(ctx, { probes });
          await ctx.sleep(pollIntervalMs); // throws CancelledFailure once the workflow's timer won
        }
      }),
      checkHealth: rec('checkHealth', async (_p, bootId): Promise<HealthReport> => {
        if (this.script.resetDuringHealthOn?.includes(this.running) && this.count('checkHealth') === 1) {
          this.reboot('watchdog reset', this.grubNext(), 0);
          while (!this.up) await Context.current().sleep(50);
        }
        this.needUp();
        if (bootId && bootId !== this.bootId) {
          const message = `the host booted again during its health checks: boot ${bootId} was checked, boot ${this.bootId} answers now`;
          throw ApplicationFailure.nonRetryable(message, FailureTypes.HostRebooted);
        }
        const ok = !this.script.healthFailsOn?.includes(this.running);
        return {
          ok,
          checks: [{ name: 'nginx.service', ok, detail: ok ? 'active' : 'failed (Result: exit-code)' }],
          checkedAt: Date.now(),
        };
      }),
      commitSlot: rec('commitSlot', async (_p, _f, slot) => {
        this.needUp();
        if (this.running !== slot) {
          throw ApplicationFailure.nonRetryable(`refusing to commit slot ${slot}: the host runs slot ${this.running}`, FailureTypes.UnsafeLayout);
        }
        this.defaultSlot = slot;
        this.effects.push(`commit ${slot}`);
      }),
      probeHost: rec('probeHost', async (profile: Profile): Promise<ProbeResult> => {
        if (!this.up) return { reachable: false, bootId: null, slot: null, detail: 'connect timed out' };
        this.checkHostKey(profile);
        return { reachable: true, bootId: this.bootId, slot: this.running, detail: 'ok' };
      }),
      rebootToSlot: rec('rebootToSlot', async (_p, _f, slot, oneTime): Promise<TrialBootResult> => {
        this.needUp();
        const bootIdBefore = this.bootId;
        if (oneTime) this.nextOnce = slot;
        else this.defaultSlot = slot;
        this.reboot(oneTime ? 'one-time reboot' : 'reboot', this.grubNext());
        return { mode: 'firmware', issuedAt: Date.now(), bootIdBefore };
      }),
      powerReset: rec('powerReset', async (profile: Profile) => {
        if (profile.power.driver === 'none') {
          throw ApplicationFailure.nonRetryable('no power driver configured for this host', FailureTypes.NoPowerDriver);
        }
        this.reboot('power reset', this.grubNext());
      }),
      measureHostDowntime: rec('measureHostDowntime', async (): Promise<HostDowntime> => {
        this.needUp();
        if (this.script.measureFails) throw ApplicationFailure.nonRetryable('journal of the previous boot is not persistent', 'NoJournal');
        if (this.script.measureDelayMs) await Context.current().sleep(this.script.measureDelayMs);
        return { toSshdS: 0.4, toServicesS: 0.6 };
      }),
    };
  }
}

/**
 * Activities that pass each call on to the host the call's profile names (every activity takes
 * the profile first): several fake hosts behind one worker.
 */
export function routeByProfile(hostActivities: (name: string) => HostActivities | undefined): HostActivities {
  const names = Object.keys(new FakeHost().activities()) as (keyof HostActivities)[];
  return Object.fromEntries(
    names.map((name) => [
      name,
      (profile: Profile, ...rest: unknown[]) => {
        const acts = hostActivities(profile.name);
        if (!acts) throw new Error(`no fake host named ${profile.name}`);
        return (acts[name] as (...a: unknown[]) => Promise<unknown>)(profile, ...rest);
      },
    ]),
  ) as unknown as HostActivities;
}
