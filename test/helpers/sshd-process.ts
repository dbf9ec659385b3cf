// A real OpenSSH sshd for tests and benchmarks: own temp dir and config, freshly generated host
// key and client key, loopback only, foreground (-D -e), started in bounded time and always
// cleaned up. No test framework here (bench/ imports it); the vitest fixture is in sshd.ts.
//
//   const sshd = await startSshd();
//   const host = await SshHost.connect(sshd.target());
//   ...
//   await sshd.stop();
//
// Every start generates a new host key, so a second startSshd() is "the same host, reinstalled"
// (pass { identityFile } to let the same client key in).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile, copyFile, chmod, mkdir, rm } from 'node:fs/promises';
import { rmSync, readFileSync, readdirSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SshTarget } from '../../activities/ssh.js';
import { freePort } from '../../lib/free-port.js';
import { parseProfile, type Profile } from '../../lib/profile.js';

const execFileP = promisify(execFile);

export const SSHD_PATH = process.env.AB_UPGRADE_SSHD ?? '/usr/sbin/sshd';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export type HostKeyType = 'ed25519' | 'rsa' | 'ecdsa';

export interface SshdOptions {
  /** Host key types to generate; the first is the one reported in hostKeyLine. Default ['ed25519']. */
  hostKeyTypes?: HostKeyType[];
  /** Reuse this client private key (its .pub must sit next to it) instead of generating one. */
  identityFile?: string;
  /** Extra sshd_config lines (placed first, so they override the defaults). */
  extraConfig?: string[];
}

export interface Sshd {
  port: number;
  /** "ssh-ed25519 AAAA..." of the first host key. */
  hostKeyLine: string;
  /** SHA256:... of the first host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** All generated host keys: type → public key line / fingerprint. */
  hostKeys: Array<{ type: HostKeyType; line: string; fingerprint: string }>;
  identityFile: string;
  user: string;
  dir: string;
  pid: number;
  target(overrides?: Partial<SshTarget>): SshTarget;
  /** PIDs of the per-connection sshd processes (direct children of the listener). */
  connectionPids(): number[];
  /**
   * SIGKILL every per-connection sshd process (the clients see their connections drop, with no
   * exit status), then the processes those sessions had started. Returns how many connections.
   */
  killConnections(): number;
  /**
   * SIGSTOP every per-connection sshd process: the connections go silent without closing (a
   * peer that vanished from the network). stop() still kills them.
   */
  freezeConnections(): number;
  /** sshd's stderr so far (-e), for diagnostics. */
  logs(): string;
  stop(): Promise<void>;
}

const live = new Set<{ child: ChildProcess; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const s of live) {
      if (s.child.pid) {
        killConnectionTrees(s.child.pid);
        tryKill(s.child.pid, 'SIGKILL');
      }
      try {
        rmSync(s.dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

function tryKill(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** pid → ppid for every process, from /proc. */
function parentMap(): Map<number, number> {
  const map = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return map;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may contain spaces and parentheses.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      map.set(Number(e), Number(rest[1]));
    } catch {
      /* process went away */
    }
  }
  return map;
}

/** Direct children of pid. */
function childPidsOf(pid: number): number[] {
  return [...parentMap()].filter(([, ppid]) => ppid === pid).map(([p]) => p);
}

/** All descendants of pid (children first, then theirs). */
function descendantsOf(pid: number): number[] {
  const map = parentMap();
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const cur = queue.shift()!;
    for (const [p, pp] of map) {
      if (pp === cur && !out.includes(p)) {
        out.push(p);
        queue.push(p);
      }
    }
  }
  return out;
}

/**
 * SIGKILL the per-connection sshd processes (children of the listener) first, so that the
 * clients see their connections drop without any exit status, then everything they had started,
 * so that no test command outlives the test.
 */
function killConnectionTrees(listenerPid: number): number {
  const conns = childPidsOf(listenerPid);
  const below = conns.flatMap((c) => descendantsOf(c));
  const killed = conns.filter((p) => tryKill(p, 'SIGKILL')).length;
  for (const p of below) tryKill(p, 'SIGKILL');
  return killed;
}

/** Resolves true once something on the port speaks SSH (sends an "SSH-" banner). */
function probeSsh(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.startsWith('SSH-')) done(true);
      else if (buf.length >= 4) done(false);
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

async function keygen(args: string[]): Promise<string> {
  const { stdout } = await execFileP('ssh-keygen', args, { timeout: 30_000 });
  return stdout;
}

async function fingerprintOf(pubPath: string): Promise<string> {
  // "256 SHA256:xxxx comment (ED25519)"
  const out = await keygen(['-E', 'sha256', '-l', '-f', pubPath]);
  const fp = out.split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -l output: ${out}`);
  return fp;
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  installExitHook();
  const user = userInfo().username;
  const dir = await mkdtemp(join(tmpdir(), 'ab-upgrade-sshd-'));
  let started: Sshd | null = null;
  try {
    // sshd refuses to start without its privilege separation directory.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

    const types = opts.hostKeyTypes?.length ? opts.hostKeyTypes : (['ed25519'] as HostKeyType[]);
    const hostKeys: Sshd['hostKeys'] = [];
    for (const type of types) {
      const path = join(dir, `ssh_host_${type}_key`);
      await keygen(['-q', '-t', type, '-N', '', '-C', `ab-upgrade-test-host-${type}`, '-f', path]);
      const line = (await readFile(`${path}.pub`, 'utf8')).trim();
      hostKeys.push({ type, line, fingerprint: await fingerprintOf(`${path}.pub`) });
    }

    const identityFile = join(dir, 'client_key');
    if (opts.identityFile) {
      await copyFile(opts.identityFile, identityFile);
      await copyFile(`${opts.identityFile}.pub`, `${identityFile}.pub`);
      await chmod(identityFile, 0o600);
    } else {
      await keygen(['-q', '-t', 'ed25519', '-N', '', '-C', 'ab-upgrade-test-client', '-f', identityFile]);
    }
    await writeFile(join(dir, 'authorized_keys'), await readFile(`${identityFile}.pub`), { mode: 0o600 });

    const cfgPath = join(dir, 'sshd_config');
    const pidFile = join(dir, 'sshd.pid');

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = [
        // sshd keeps the first value it reads for most keywords: extra lines go first to override.
        ...(opts.extraConfig ?? []),
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        ...types.map((t) => `HostKey ${join(dir, `ssh_host_${t}_key`)}`),
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PrintMotd no',
        'LogLevel VERBOSE',
        `AllowUsers ${user}`,
        '',
      ].join('\n');
      await writeFile(cfgPath, config, { mode: 0o600 });

      const child = spawn(SSHD_PATH, ['-D', '-e', '-f', cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      const rec = { child, dir };
      live.add(rec);
      let log = '';
      child.stderr!.on('data', (d: Buffer) => {
        log += d.toString('utf8');
        if (log.length > 256 * 1024) log = log.slice(-128 * 1024);
      });
      let exited = false;
      const exitedP = new Promise<void>((res) => child.once('exit', () => ((exited = true), res())));
      child.once('error', () => {
        exited = true;
      });

      const deadline = Date.now() + START_TIMEOUT_MS;
      let up = false;
      while (!exited && Date.now() < deadline) {
        if (await probeSsh(port, 1_000)) {
          up = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!up) {
        if (!exited) child.kill('SIGKILL');
        await Promise.race([exitedP, new Promise((r) => setTimeout(r, 2_000))]);
        live.delete(rec);
        if (/Address already in use|Bind to port/.test(log) && attempt < 3) continue;
        throw new Error(`sshd did not come up on 127.0.0.1:${port} within ${START_TIMEOUT_MS}ms:\n${log}`);
      }

      const pid = child.pid!;
      const first = hostKeys[0]!;
      let stopped: Promise<void> | null = null;
      started = {
        port,
        hostKeyLine: first.line,
        hostKeyFingerprint: first.fingerprint,
        hostKeys,
        identityFile,
        user,
        dir,
        pid,
        target: (overrides = {}) => ({
          host: '127.0.0.1',
          port,
          user,
          identityFile,
          hostKey: first.line,
          become: 'root',
          connectTimeoutMs: 5_000,
          ...overrides,
        }),
        connectionPids: () => childPidsOf(pid),
        killConnections: () => killConnectionTrees(pid),
        freezeConnections: () => childPidsOf(pid).filter((p) => tryKill(p, 'SIGSTOP')).length,
        logs: () => log,
        stop: () =>
          (stopped ??= (async () => {
            if (!exited) child.kill('SIGTERM');
            killConnectionTrees(pid);
            const ok = await Promise.race([
              exitedP.then(() => true),
              new Promise<boolean>((r) => setTimeout(() => r(false), STOP_TIMEOUT_MS)),
            ]);
            if (!ok) {
              child.kill('SIGKILL');
              await Promise.race([exitedP, new Promise((r) => setTimeout(r, 2_000))]);
            }
            live.delete(rec);
            await rm(dir, { recursive: true, force: true });
          })()),
      };
      return started;
    }
  } catch (e) {
    if (!started) await rm(dir, { recursive: true, force: true });
    throw e;
  }
}


/**
 * A host profile pointing at this sshd. Its slots and data partition name devices that do not
 * exist: this machine's root is on neither slot.
 */
export function sshdProfile(sshd: Sshd, overrides: Record<string, unknown> = {}): Profile {
  return parseProfile({
    host: '127.0.0.1',
    port: sshd.port,
    user: sshd.user,
    auth: { identityFile: sshd.identityFile },
    hostKey: sshd.hostKeyLine,
    slots: { a: '/dev/ab-test-missing-a', b: '/dev/ab-test-missing-b' },
    data: { device: '/dev/ab-test-missing-data', mountPoint: '/srv' },
    release: { source: 'debootstrap', suite: 'trixie' },
    ...overrides,
  });
}
