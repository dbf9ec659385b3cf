// The lab's VM runner: one QEMU per test host, booting a qcow2 overlay over a pristine image
// from lab/build-image.sh, SSH forwarded to a free port on 127.0.0.1, QMP on a unix socket.
//
// Restart supervisor (default on, see lab/README.md for the measurements): QEMU runs with
// `-action reboot=shutdown,shutdown=pause`, so any reset (guest reboot, panic=10, QMP
// system_reset) stops that QEMU; the supervisor, listening on a private second QMP socket,
// sees the SHUTDOWN event and starts a fresh QEMU with the same disk, OVMF vars, SSH port, QMP
// socket path and serial log. A fresh QEMU boots much faster under TCG than a warm reset:
// its translation cache holds no code of an earlier boot, which a warm reset's GRUB and kernel
// would write over, each such write making QEMU drop translations. grubenv lives on the disk,
// so grub-reboot's one-time entry behaves as on a real machine. A guest poweroff leaves QEMU
// paused in the 'shutdown' state so QMP keeps answering; power on = system_reset (+ cont).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmpConnection, type QmpEvent } from '../activities/power.js';
import { freePort } from '../lib/free-port.js';
import { runCommand } from '../lib/run-command.js';
import { OVMF_CODE, OVMF_VARS } from './vm/firmware.js';
import { kvmUsable } from './vm/kvm-probe.js';
import { hasSetprivPdeathsig, installExitHook, killStale, live } from './vm/qemu-processes.js';

export type Layout = 'bios' | 'uefi';

export interface StartVmOptions {
  /** Pristine disk image (raw or .qcow2); the VM writes to a qcow2 overlay in its own dir. */
  disk: string;
  layout: Layout;
  /** Names the VM's directory under workDir. */
  name: string;
  workDir: string;
  memMiB?: number;
  cpus?: number;
  /** Restart QEMU on every reset instead of resetting in place (default: true, or AB_LAB_SUPERVISE=0). */
  supervise?: boolean;
  /** Keep an existing overlay (default false: a fresh overlay over the pristine disk). */
  reuseOverlay?: boolean;
  /** Host port for SSH (default: a free one). */
  sshPort?: number;
  /** Defaults: id_ed25519 and host_key.pub next to the disk (lab/build-image.sh outputs). */
  identityFile?: string;
  hostKey?: string;
  user?: string;
  /** 'auto' (default, or AB_LAB_ACCEL): KVM only if it actually runs a guest, else TCG. */
  accel?: 'auto' | 'kvm' | 'tcg';
  /**
   * TCG threading: 'single' (default) runs all vCPUs on one host thread; 'multi' gives each
   * vCPU its own (real parallelism with cpus > 1, but Debian 13's 6.12 kernel once oopsed
   * early in boot under it here).
   */
  tcgThread?: 'single' | 'multi';
  /**
   * TCG's translation cache in MiB (default: QEMU's, or AB_LAB_TB_SIZE). A small one is flushed
   * often, which drops translations of memory a kexec'd kernel or a warm reset writes over
   * (see lab/README.md), at the cost of translating again after every flush.
   */
  tbSizeMiB?: number;
  /**
   * Seconds the firmware waits before it boots (default 0, or AB_LAB_FIRMWARE_WAIT): its boot
   * menu's wait (QEMU's -boot splash-time, which OVMF and SeaBIOS both honour), standing for a
   * server's power-on self test, the stage a kexec skips. Every firmware boot pays it.
   */
  firmwareWaitS?: number;
  /** Bound for QEMU to come up with its QMP socket (default 30 s). */
  startTimeoutMs?: number;
  extraArgs?: string[];
}

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface VmEvent {
  at: number;
  what: 'start' | 'shutdown' | 'restart' | 'exit' | 'stop';
  detail: string;
}

export interface VmHandle {
  name: string;
  dir: string;
  sshPort: number;
  qmpSocket: string;
  serialLog: string;
  /** How QEMU runs the guest, as decided at start (KVM probed, or TCG), and its vCPU count. */
  accel: 'kvm' | 'tcg';
  cpus: number;
  /** The firmware's wait before it boots, as started (StartVmOptions.firmwareWaitS). */
  firmwareWaitS: number;
  /** PID of the current QEMU process (changes when the supervisor restarts it). */
  readonly pid: number;
  readonly restarts: number;
  readonly events: readonly VmEvent[];
  readonly running: boolean;
  identityFile: string;
  knownHostsFile: string;
  /** ssh argv (without the command) that reaches the guest with the pinned host key. */
  sshArgs(): string[];
  ssh(command: string, opts?: { timeoutMs?: number }): Promise<SshResult>;
  /** The guest's boot_id or null if SSH does not answer within the probe bound. */
  bootId(probeTimeoutMs?: number): Promise<string | null>;
  /** Waits until SSH answers (and, with notBootId, on a different boot); returns the boot_id. */
  waitForSsh(timeoutMs: number, opts?: { notBootId?: string }): Promise<string>;
  stop(): Promise<void>;
}

export async function startVm(opts: StartVmOptions): Promise<VmHandle> {
  installExitHook();
  const dir = path.resolve(opts.workDir, opts.name);
  mkdirSync(dir, { recursive: true });
  const disk = path.resolve(opts.disk);
  const imageDir = path.dirname(disk);
  const identityFile = path.resolve(opts.identityFile ?? path.join(imageDir, 'id_ed25519'));
  const hostKeyLine = (opts.hostKey ?? readFileSync(path.join(imageDir, 'host_key.pub'), 'utf8')).trim();
  const [keyType, keyData] = hostKeyLine.split(/\s+/);
  if (!keyType || !keyData) throw new Error(`startVm: bad host key "${hostKeyLine}"`);
  const knownHostsFile = path.join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, `lab-vm ${keyType} ${keyData}\n`);
  const user = opts.user ?? 'root';
  const supervise = opts.supervise ?? process.env.AB_LAB_SUPERVISE !== '0';
  const memMiB = opts.memMiB ?? 1024;
  const cpus = opts.cpus ?? 1;
  const tbSize = opts.tbSizeMiB ?? (Number(process.env.AB_LAB_TB_SIZE) || undefined);
  const firmwareWaitS = opts.firmwareWaitS ?? (Number(process.env.AB_LAB_FIRMWARE_WAIT) || 0);
  const accelChoice = opts.accel ?? ((process.env.AB_LAB_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) || 'auto');
  const useKvm = accelChoice === 'kvm' || (accelChoice === 'auto' && (await kvmUsable(disk, opts.layout)));

  // A VM left over from an earlier run of the same dir (crashed test process) is ours: end it.
  const pidFile = path.join(dir, 'qemu.pid');
  killStale(pidFile, dir);

  const overlay = path.join(dir, 'overlay.qcow2');
  if (!opts.reuseOverlay || !existsSync(overlay)) {
    rmSync(overlay, { force: true });
    const fmt = disk.endsWith('.qcow2') ? 'qcow2' : 'raw';
    const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', disk, '-F', fmt, overlay], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`qemu-img create failed: ${r.stderr || r.error?.message}`);
  }
  const varsFile = path.join(dir, 'OVMF_VARS.fd');
  if (opts.layout === 'uefi' && (!opts.reuseOverlay || !existsSync(varsFile))) copyFileSync(OVMF_VARS, varsFile);

  const qmpSocket = path.join(dir, 'qmp.sock');
  const ctlSocket = path.join(dir, 'qmp-supervisor.sock');
  const serialLog = path.join(dir, 'serial.log');
  const qemuLog = path.join(dir, 'qemu.log');
  writeFileSync(serialLog, '');
  writeFileSync(qemuLog, '');

  const buildArgs = (port: number): string[] => {
    const a = [
      '-name', `ab-lab-${opts.name},process=ab-lab-${opts.name}`,
      '-accel', useKvm ? 'kvm' : `tcg,thread=${opts.tcgThread ?? 'single'}${tbSize ? `,tb-size=${tbSize}` : ''}`,
      '-machine', opts.layout === 'uefi' ? 'q35' : 'pc',
      '-m', String(memMiB),
      '-smp', String(cpus),
      '-display', 'none',
      '-nodefaults',
      '-no-user-config',
      '-drive', `if=none,id=disk0,file=${overlay},format=qcow2,cache=writeback,discard=unmap`,
      '-device', 'virtio-blk-pci,drive=disk0,bootindex=1',
      '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device', 'virtio-net-pci,netdev=net0',
      // Entropy: keeps early-boot getrandom (sshd) from stalling under emulation.
      '-device', 'virtio-rng-pci',
      '-chardev', `file,id=ser0,path=${serialLog},append=on`,
      '-serial', 'chardev:ser0',
      '-qmp', `unix:${qmpSocket},server=on,wait=off`,
      '-pidfile', pidFile,
    ];
    if (opts.layout === 'uefi') {
      a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
      a.push('-drive', `if=pflash,format=raw,unit=1,file=${varsFile}`);
    }
    if (firmwareWaitS > 0) a.push('-boot', `menu=on,splash-time=${Math.round(firmwareWaitS * 1000)}`);
    if (supervise) {
      a.push('-qmp', `unix:${ctlSocket},server=on,wait=off`);
      a.push('-action', 'reboot=shutdown,shutdown=pause');
    } else {
      a.push('-action', 'shutdown=pause');
    }
    a.push(...(opts.extraArgs ?? []));
    return a;
  };

  let child: ChildProcess | null = null;
  let ctl: QmpConnection | null = null;
  let stopping = false;
  let restarts = 0;
  let restarting: Promise<void> | null = null;
  const events: VmEvent[] = [];
  const note = (what: VmEvent['what'], detail: string) => events.push({ at: Date.now(), what, detail });

  const spawnQemu = (port: number): ChildProcess => {
    rmSync(qmpSocket, { force: true });
    rmSync(ctlSocket, { force: true });
    const logFd = openSync(qemuLog, 'a');
    const args = buildArgs(port);
    const c = hasSetprivPdeathsig()
      ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args], { stdio: ['ignore', logFd, logFd] })
      : spawn('qemu-system-x86_64', args, { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    live.add(c);
    c.on('exit', (code, signal) => {
      live.delete(c);
      note('exit', `pid ${c.pid} exited (${signal ?? code})`);
    });
    c.on('error', () => live.delete(c));
    note('start', `pid ${c.pid}`);
    return c;
  };

  const waitExit = (c: ChildProcess, ms: number): Promise<boolean> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve(true)
      : Promise.race([new Promise<boolean>((r) => c.once('exit', () => r(true))), sleep(ms).then(() => false)]);

  /** Waits until the public QMP socket answers (bounded); fails fast if QEMU exits. */
  const waitUp = async (c: ChildProcess, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    let exited = false;
    c.once('exit', () => (exited = true));
    while (Date.now() < deadline) {
      if (exited || c.exitCode !== null) {
        throw new Error(`QEMU exited at start: ${readFileSync(qemuLog, 'utf8').trim().split('\n').slice(-5).join(' | ')}`);
      }
      if (existsSync(qmpSocket) && (!supervise || existsSync(ctlSocket))) return;
      await sleep(50);
    }
    throw new Error(`QEMU did not come up within ${ms} ms`);
  };

  const restart = async (reason: string): Promise<void> => {
    const old = child;
    if (!old || stopping) return;
    // The reset QEMU sits paused; let it quit cleanly (flushes the overlay), then kill if slow.
    try {
      await ctl?.execute('quit', undefined, 5_000);
    } catch {
      /* the connection drops as QEMU exits */
    }
    ctl?.close();
    ctl = null;
    if (!(await waitExit(old, 10_000))) {
      old.kill('SIGKILL');
      await waitExit(old, 5_000);
    }
    if (stopping) return;
    restarts++;
    note('restart', reason);
    child = spawnQemu(sshPort);
    await waitUp(child, opts.startTimeoutMs ?? 30_000);
    await attachSupervisor();
  };

  const attachSupervisor = async (): Promise<void> => {
    if (!supervise) return;
    const conn = await QmpConnection.connect(ctlSocket, {
      timeoutMs: 10_000,
      onEvent: (e: QmpEvent) => {
        if (e.event !== 'SHUTDOWN') return;
        const reason = String(e.data?.reason ?? 'unknown');
        note('shutdown', reason);
        if (reason === 'guest-reset' || reason === 'host-qmp-system-reset' || reason === 'guest-panic' || reason === 'subsystem-reset') {
          if (!restarting) {
            restarting = restart(reason)
              .catch((err: unknown) => {
                note('exit', `restart failed: ${err instanceof Error ? err.message : String(err)}`);
              })
              .finally(() => {
                restarting = null;
              });
          }
        }
        // guest-shutdown: stay paused in 'shutdown' (powered off); host-qmp-quit: QEMU exits.
      },
    });
    ctl = conn;
  };

  // Start, retrying on a port lost to a race (only when we picked the port).
  let sshPort = opts.sshPort ?? (await freePort());
  for (let attempt = 1; ; attempt++) {
    child = spawnQemu(sshPort);
    try {
      await waitUp(child, opts.startTimeoutMs ?? 30_000);
      break;
    } catch (err) {
      child.kill('SIGKILL');
      await waitExit(child, 5_000);
      const msg = err instanceof Error ? err.message : String(err);
      if (opts.sshPort === undefined && attempt < 3 && /host forwarding|Address already in use/i.test(msg)) {
        sshPort = await freePort();
        continue;
      }
      throw err;
    }
  }
  await attachSupervisor();

  const sshArgs = (): string[] => [
    '-i', identityFile,
    '-p', String(sshPort),
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'HostKeyAlias=lab-vm',
    '-o', `HostKeyAlgorithms=${keyType}`,
    '-o', 'ConnectTimeout=5',
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=3',
    '-o', 'LogLevel=ERROR',
    `${user}@127.0.0.1`,
  ];

  const ssh = async (command: string, o: { timeoutMs?: number } = {}): Promise<SshResult> => {
    const r = await runCommand('ssh', [...sshArgs(), '--', command], o.timeoutMs ?? 60_000);
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
  };

  const bootId = async (probeTimeoutMs = 15_000): Promise<string | null> => {
    const r = await ssh('cat /proc/sys/kernel/random/boot_id', { timeoutMs: probeTimeoutMs });
    const id = r.stdout.trim();
    return r.code === 0 && /^[0-9a-f-]{36}$/.test(id) ? id : null;
  };

  const handle: VmHandle = {
    name: opts.name,
    dir,
    sshPort,
    qmpSocket,
    serialLog,
    accel: useKvm ? 'kvm' : 'tcg',
    cpus,
    firmwareWaitS,
    get pid() {
      return child?.pid ?? -1;
    },
    get restarts() {
      return restarts;
    },
    get events() {
      return events;
    },
    get running() {
      return !!child && child.exitCode === null && child.signalCode === null;
    },
    identityFile,
    knownHostsFile,
    sshArgs,
    ssh,
    bootId,
    async waitForSsh(timeoutMs: number, o: { notBootId?: string } = {}): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      let last = 'no answer';
      while (Date.now() < deadline) {
        if (!handle.running && !restarting && !supervise) throw new Error(`VM ${opts.name}: QEMU is not running`);
        const left = deadline - Date.now();
        const id = await bootId(Math.max(1_000, Math.min(15_000, left)));
        if (id && id !== o.notBootId) return id;
        last = id ? `still on boot ${id}` : 'no answer';
        await sleep(Math.min(1_000, Math.max(0, deadline - Date.now())));
      }
      throw new Error(`VM ${opts.name}: SSH on port ${sshPort} did not answer within ${timeoutMs} ms (${last}); serial log: ${serialLog}`);
    },
    async stop(): Promise<void> {
      if (stopping) return;
      stopping = true;
      note('stop', 'requested');
      await restarting?.catch(() => undefined);
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) {
        try {
          const conn = ctl ?? (await QmpConnection.connect(qmpSocket, { timeoutMs: 3_000 }));
          await conn.execute('quit', undefined, 3_000).catch(() => undefined);
          conn.close();
        } catch {
          /* fall through to SIGKILL */
        }
        if (!(await waitExit(c, 5_000))) {
          c.kill('SIGKILL');
          await waitExit(c, 5_000);
        }
      }
      ctl?.close();
      ctl = null;
      rmSync(qmpSocket, { force: true });
      rmSync(ctlSocket, { force: true });
    },
  };
  return handle;
}
