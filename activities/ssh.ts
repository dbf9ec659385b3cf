// The one thin wrapper over ssh2. Everything that touches a host goes through SshHost.
//
// What it guarantees (see DESIGN.md "ssh2 rules that bite"):
// - the host key is pinned and verified (ssh2 accepts any key by default);
// - an `error` listener lives as long as the connection (ECONNRESET after a reboot would
//   otherwise crash the worker), keepalives detect a dead peer;
// - stdout and stderr are both consumed; a missing exit status is "unknown" (exitCode null),
//   never success; a dropped connection fails the running commands with exitCode null;
// - concurrent channels per connection are bounded (OpenSSH allows 10 sessions);
// - a timeout or an abort sends KILL and closes the channel, then reaps the command's processes
//   on the host: OpenSSH ignores the SSH "signal" request for root logins ("session signalling
//   requires privilege separation") and, for a sudo'd command, may not kill root processes; so
//   every command carries AB_UPGRADE_RUN=<random id> in its environment and a small /proc-based
//   script kills the processes carrying it, with all their descendants;
// - every argv element is POSIX-quoted; secrets (identity file contents, stdin) are never logged.
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import type { Profile } from '../lib/profile.js';
import { shJoin, shQuote } from '../lib/quote.js';
import {
  describeExpected,
  fingerprintOfKeyBlob,
  hostKeyAlgorithmsFor,
  hostKeyMatches,
  parseExpectedHostKeys,
} from '../lib/hostkey.js';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFile?: string;
  /** true: the agent at $SSH_AUTH_SOCK; a string: that agent socket. */
  agent?: boolean | string;
  /** `SHA256:...` fingerprint or an OpenSSH public key / known_hosts line (several lines allowed). */
  hostKey: string;
  become: 'root' | 'sudo';
  /** Handshake bound (ssh2 readyTimeout). Default 15 s. */
  connectTimeoutMs?: number;
  /** SSH keepalive interval; the connection is declared dead after 3 unanswered ones. Default 5 s. */
  keepaliveIntervalMs?: number;
  /** Concurrent channels on this connection; further execs queue. Default 4. */
  maxChannels?: number;
  /** Cipher preference, most preferred first (default: ssh2's, AES-GCM first on AES-NI machines). */
  ciphers?: string[];
}

export function targetFromProfile(p: Profile): SshTarget {
  const t: SshTarget = { host: p.host, port: p.port, user: p.user, hostKey: p.hostKey, become: p.become };
  if (p.auth.identityFile !== undefined) t.identityFile = p.auth.identityFile;
  if (p.auth.agent !== undefined && p.auth.agent !== false) t.agent = p.auth.agent;
  return t;
}

export interface ExecResult {
  command: string;
  /** The command's exit status; null when unknown (timeout, abort, killed by a signal, connection lost). */
  exitCode: number | null;
  /** The signal that ended the command on the host (e.g. "SIGTERM", Node's spelling), when sshd reported one. */
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface ExecOptions {
  /**
   * Kill the command after this long, counted from when it gets a channel (time spent queued
   * behind maxChannels does not count): KILL over SSH, close the channel, then kill the
   * command's processes on the host. The result has timedOut true and exitCode null.
   */
  timeoutMs?: number;
  /** Aborting kills the command like a timeout; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
  stdin?: string | Buffer | NodeJS.ReadableStream;
  /**
   * Default true: reject with CommandError unless the exit code is 0. With false, the result is
   * returned whatever the exit code, also when the command was killed by a signal or timed out
   * (exitCode null, timedOut true). Still rejected either way: a lost connection (CommandError,
   * exitCode null), a command that could not be started (CommandError), an abort (the signal's
   * reason: Temporal's CancelledFailure, or an AbortError).
   */
  check?: boolean;
  onStdoutChunk?: (chunk: Buffer) => void;
  /** Per stream; beyond it the oldest output is dropped and the tail kept. Default 64 MiB. */
  maxBuffer?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_KEEPALIVE_MS = 5_000;
const KEEPALIVE_COUNT_MAX = 3;
const DEFAULT_MAX_CHANNELS = 4;
const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;
/** After killing a channel, how long its slot stays taken waiting for the server's close. */
const KILL_GRACE_MS = 2_000;
const STDERR_LINES_IN_MESSAGE = 10;
const REAP_TIMEOUT_MS = 5_000;

/** Environment variable that marks the processes of one run on the host. */
export const RUN_MARKER = 'AB_UPGRADE_RUN';

/**
 * Runs on the host after a timeout or an abort. $1 is the run id. Finds the processes whose
 * initial environment holds AB_UPGRADE_RUN=<id> (the command, or sudo in front of it), adds all
 * their descendants, stops them all, then kills them. Needs only /proc, GNU grep, sed and awk.
 */
const REAPER_SCRIPT = String.raw`marker="${RUN_MARKER}=$1"
roots=$(grep -lzxF -- "$marker" /proc/[0-9]*/environ 2>/dev/null | sed -n 's#^/proc/\([0-9]*\)/environ$#\1#p')
[ -n "$roots" ] || exit 0
all=$(for f in /proc/[0-9]*/status; do cat "$f" 2>/dev/null; done | awk -v roots="$roots" '
  BEGIN { n = split(roots, r, /[ \n]+/); for (i = 1; i <= n; i++) if (r[i] != "") want[r[i]] = 1 }
  /^Pid:/ { p = $2 }
  /^PPid:/ { parent[p] = $2 }
  END {
    do { changed = 0; for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; changed = 1 } } while (changed)
    for (p in want) print p
  }')
kill -STOP $all 2>/dev/null
kill -KILL $all 2>/dev/null
exit 0`;

function briefCommand(command: string): string {
  return command.length > 300 ? `${command.slice(0, 300)}…` : command;
}

function stderrTail(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  const tail = lines.slice(-STDERR_LINES_IN_MESSAGE).join('\n');
  return tail.length > 2000 ? tail.slice(-2000) : tail;
}

type FailureKind = 'exit' | 'signal' | 'timeout' | 'lost' | 'not-started' | 'no-status';

export class CommandError extends Error {
  readonly result: ExecResult;
  constructor(result: ExecResult, kind: FailureKind = 'exit', detail?: string) {
    const cmd = briefCommand(result.command);
    let message: string;
    switch (kind) {
      case 'timeout':
        message = `Command timed out after ${detail ?? '?'}ms: ${cmd}`;
        break;
      case 'lost':
        message = `Connection lost while running ${cmd}: exit status unknown`;
        break;
      case 'not-started':
        message = `${detail ?? 'Connection closed'}; command not started: ${cmd}`;
        break;
      case 'no-status':
        message = `Channel closed without an exit status while running ${cmd}: exit status unknown`;
        break;
      case 'signal':
        message = `Command killed by signal ${result.signal ?? '?'}: ${cmd}`;
        break;
      default:
        message = `Command failed with exit code ${result.exitCode}: ${cmd}`;
    }
    const tail = stderrTail(result.stderr);
    if (tail) message += `\n${tail}`;
    super(message);
    this.name = 'CommandError';
    this.result = result;
  }
}

export class HostKeyMismatchError extends Error {
  constructor(
    readonly host: string,
    readonly presented: string,
    readonly expected: string,
  ) {
    super(
      `Host key verification failed for ${host}: the server presented ${presented}, ` +
        `expected ${expected}. Refusing to connect (the host was reinstalled, or this is not the host you think).`,
    );
    this.name = 'HostKeyMismatchError';
  }
}

export class SshConnectError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SshConnectError';
  }
}

/** Keeps the last `limit` bytes of a stream. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }
  toString(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

/** FIFO counting semaphore whose waits can be abandoned. */
class Slots {
  private used = 0;
  private waiters: Array<{ grant: () => void }> = [];
  constructor(private readonly max: number) {}
  acquire(): { ready: Promise<void>; cancel: () => void } {
    if (this.used < this.max) {
      this.used++;
      return { ready: Promise.resolve(), cancel: () => {} };
    }
    let grant!: () => void;
    const ready = new Promise<void>((res) => (grant = res));
    const w = { grant };
    this.waiters.push(w);
    return {
      ready,
      cancel: () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
      },
    };
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.used--;
  }
}

/** Send a signal even after our side sent EOF (ssh2's Channel.signal is a no-op once we ended stdin). */
function sendSignal(ch: ClientChannel, name: string): void {
  try {
    const c = ch as unknown as {
      writable: boolean;
      outgoing?: { id: number; state: string };
      _client?: { _protocol?: { signal(id: number, name: string): void } };
    };
    if (c.writable) ch.signal(name);
    else if (c.outgoing?.state === 'open' || c.outgoing?.state === 'eof') c._client?._protocol?.signal(c.outgoing.id, name);
  } catch {
    // The channel or connection is already gone: nothing left to signal.
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error(typeof r === 'string' ? r : 'The operation was aborted');
  e.name = 'AbortError';
  return e;
}

type RunOptions = ExecOptions & {
  onStdinBytes?: (n: number) => void;
  /** Our own housekeeping commands: no run marker, never reaped. */
  internal?: boolean;
};

interface InFlight {
  connectionLost(): void;
}

/** The fingerprint of the host key a server presents (connects, never authenticates); null if unreachable. */
function presentedHostKey(target: SshTarget, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const c = new Client();
    let fp: string | null = null;
    const done = () => {
      clearTimeout(t);
      try {
        c.end();
      } catch {
        /* gone */
      }
      resolve(fp);
    };
    const t = setTimeout(done, timeoutMs);
    c.on('error', done);
    c.on('close', done);
    try {
      c.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        readyTimeout: timeoutMs,
        hostVerifier: (key: Buffer): boolean => {
          fp = fingerprintOfKeyBlob(key);
          return false;
        },
      });
    } catch {
      done();
    }
  });
}

export class SshHost {
  readonly target: SshTarget;
  readonly hostKeyFingerprint: string;
  private readonly client: Ssh2Client;
  private readonly slots: Slots;
  private readonly inFlight = new Set<InFlight>();
  private _closed = false;
  private readonly closeListeners = new Set<() => void>();

  private constructor(target: SshTarget, client: Ssh2Client, fingerprint: string) {
    this.target = target;
    this.client = client;
    this.hostKeyFingerprint = fingerprint;
    this.slots = new Slots(Math.max(1, target.maxChannels ?? DEFAULT_MAX_CHANNELS));
  }

  get closed(): boolean {
    return this._closed;
  }

  private get label(): string {
    return `${this.target.user}@${this.target.host}:${this.target.port}`;
  }

  /**
   * `signal`: aborting gives up the handshake (the connection is closed at once). `sock`: an
   * already connected socket to the target to speak SSH over (see ssh-greeting.ts).
   */
  static async connect(target: SshTarget, opts: { signal?: AbortSignal; sock?: Socket } = {}): Promise<SshHost> {
    const where = `${target.host}:${target.port}`;
    let expected;
    try {
      expected = parseExpectedHostKeys(target.hostKey);
    } catch (e) {
      throw new SshConnectError(`Invalid hostKey for ${where}: ${(e as Error).message}`);
    }

    const cfg: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      keepaliveInterval: target.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      ...(opts.sock ? { sock: opts.sock } : {}),
    };
    if (target.identityFile !== undefined) {
      try {
        cfg.privateKey = await readFile(target.identityFile);
      } catch (e) {
        throw new SshConnectError(
          `Cannot read identity file ${target.identityFile} for ${where}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    }
    if (target.agent === true) {
      const sock = process.env.SSH_AUTH_SOCK;
      if (sock) cfg.agent = sock;
      else if (cfg.privateKey === undefined) {
        throw new SshConnectError(`No SSH agent for ${where}: agent is true but SSH_AUTH_SOCK is not set`);
      }
    } else if (typeof target.agent === 'string' && target.agent !== '') {
      cfg.agent = target.agent;
    }
    if (cfg.privateKey === undefined && cfg.agent === undefined) {
      throw new SshConnectError(`No credentials for ${where}: give identityFile or agent`);
    }
    cfg.authHandler = [
      ...(cfg.privateKey !== undefined ? (['publickey'] as const) : []),
      ...(cfg.agent !== undefined ? (['agent'] as const) : []),
    ];
    type Algorithms = NonNullable<ConnectConfig['algorithms']>;
    const algos = hostKeyAlgorithmsFor(expected);
    cfg.algorithms = {
      ...(algos ? { serverHostKey: algos as Algorithms['serverHostKey'] } : {}),
      ...(target.ciphers?.length ? { cipher: target.ciphers as Algorithms['cipher'] } : {}),
    };

    let presented: string | null = null;
    let mismatch = false;
    cfg.hostVerifier = (key: Buffer): boolean => {
      presented = fingerprintOfKeyBlob(key);
      const ok = hostKeyMatches(expected, key);
      if (!ok) mismatch = true;
      return ok;
    };

    const client = new Client();
    return new Promise<SshHost>((resolve, reject) => {
      let settled = false;
      let host: SshHost | null = null;
      const guard = setTimeout(
        () => fail(new SshConnectError(`Timed out connecting to ${where}`)),
        (cfg.readyTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS) + 5_000,
      );
      const onAbort = () => fail(new SshConnectError(`Connecting to ${where}: aborted`));
      // Probes share one signal: a listener left behind per connection would pile up on it.
      const unlisten = () => opts.signal?.removeEventListener('abort', onAbort);
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        unlisten();
        try {
          client.end();
        } catch {
          /* already closed */
        }
        reject(err);
      };
      // Lives as long as the client: a socket error after `ready` must never become an
      // uncaught exception; the `close` that follows marks the host dead.
      client.on('error', (err: Error & { level?: string }) => {
        if (settled) return;
        if (mismatch) {
          fail(new HostKeyMismatchError(where, presented ?? 'unknown', describeExpected(expected)));
        } else if (algos && /no matching host key/i.test(err.message)) {
          // We offered only the pinned key types and the server has none of them: find out what
          // it does present, for an honest message.
          settled = true;
          clearTimeout(guard);
          unlisten();
          client.end();
          void presentedHostKey(target, cfg.readyTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS).then((fp) =>
            reject(
              new HostKeyMismatchError(where, fp ?? `no ${algos.join('/')} key`, describeExpected(expected)),
            ),
          );
        } else if (err.level === 'client-authentication') {
          fail(new SshConnectError(`Authentication failed for ${target.user}@${where}`, { cause: err }));
        } else if (err.level === 'client-timeout') {
          fail(new SshConnectError(`Timed out connecting to ${where} (no SSH handshake within ${cfg.readyTimeout}ms)`));
        } else {
          fail(new SshConnectError(`Cannot connect to ${where}: ${err.message}`, { cause: err }));
        }
      });
      client.on('close', () => {
        if (host) host.onClientClosed();
        else if (mismatch) fail(new HostKeyMismatchError(where, presented ?? 'unknown', describeExpected(expected)));
        else fail(new SshConnectError(`Connection to ${where} closed during the handshake`));
      });
      client.on('ready', () => {
        if (settled) {
          client.end();
          return;
        }
        settled = true;
        clearTimeout(guard);
        unlisten();
        host = new SshHost(target, client, presented ?? 'unknown');
        resolve(host);
      });
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        client.connect(cfg);
      } catch (e) {
        fail(new SshConnectError(`Cannot connect to ${where}: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  private onClientClosed(): void {
    if (!this._closed) this._closed = true;
    for (const f of [...this.inFlight]) f.connectionLost();
    for (const l of [...this.closeListeners]) l();
  }

  /** @internal used by the pool to forget dead connections. */
  onClose(listener: () => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    if (this._closed) return;
    this._closed = true;
    try {
      this.client.end();
    } catch {
      /* already gone */
    }
    // Do not wait for the socket's close: commands still running are lost from our point of view.
    for (const f of [...this.inFlight]) f.connectionLost();
  }

  private wrap(command: string): string {
    return this.target.become === 'sudo' ? `sudo -n -- ${command}` : command;
  }

  /** Run argv on the host; every element arrives verbatim as one argument. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0 || argv[0] === '') {
      return Promise.reject(new TypeError('exec: argv must start with a non-empty command'));
    }
    if (argv[0]!.includes('=')) {
      // sudo and the shell would both take NAME=value in command position as an assignment.
      return Promise.reject(new TypeError(`exec: the command name must not contain "=": ${JSON.stringify(argv[0])}`));
    }
    let command: string;
    try {
      command = this.wrap(shJoin(argv));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run(command, opts);
  }

  /** Run trusted script text with `sh -c`; `args` arrive as $1..$n verbatim ($0 is "ab-upgrade"). */
  script(body: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    let command: string;
    try {
      command = this.wrap(['sh', '-c', shQuote(body), 'ab-upgrade', ...args.map(shQuote)].join(' '));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run(command, opts);
  }

  /**
   * Stream data to remotePath: written to a temporary file next to it, synced, then renamed over
   * it, so the path holds either the old content or all of the new. Mode defaults to 0644.
   */
  async upload(
    remotePath: string,
    data: Buffer | NodeJS.ReadableStream,
    opts: { mode?: string; signal?: AbortSignal; onProgress?: (bytes: number) => void } = {},
  ): Promise<void> {
    if (!remotePath.startsWith('/') || remotePath.endsWith('/')) {
      throw new TypeError(`upload: remote path must be an absolute file path: ${JSON.stringify(remotePath)}`);
    }
    const mode = opts.mode ?? '0644';
    if (!/^[0-7]{3,4}$/.test(mode)) throw new TypeError(`upload: mode must be octal like 0644: ${JSON.stringify(mode)}`);
    const body = [
      'set -eu',
      'dst=$1 mode=$2',
      'tmp="$(dirname -- "$dst")/.$(basename -- "$dst").ab-upgrade.$$"',
      'trap \'rm -f -- "$tmp"\' EXIT',
      'umask 077',
      'cat > "$tmp"',
      'chmod -- "$mode" "$tmp"',
      'sync -- "$tmp" 2>/dev/null || true',
      'mv -f -- "$tmp" "$dst"',
      'trap - EXIT',
    ].join('\n');
    const execOpts: RunOptions = { stdin: data };
    if (opts.signal) execOpts.signal = opts.signal;
    if (opts.onProgress) {
      let total = 0;
      const cb = opts.onProgress;
      execOpts.onStdinBytes = (n) => {
        total += n;
        cb(total);
      };
    }
    await this.script(body, [remotePath, mode], execOpts);
  }

  private run(command: string, opts: RunOptions): Promise<ExecResult> {
    const started = Date.now();
    const check = opts.check ?? true;
    const maxBuffer = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;
    const stdout = new TailBuffer(maxBuffer);
    const stderr = new TailBuffer(maxBuffer);
    const signal = opts.signal;
    // The marker lets reap() find the command's processes on the host after a timeout or abort.
    const runId = opts.internal ? null : randomBytes(12).toString('hex');
    const wire = runId ? `${RUN_MARKER}=${runId} ${command}` : command;

    return new Promise<ExecResult>((resolve, reject) => {
      let settled = false;
      let ch: ClientChannel | null = null;
      let holdsSlot = false;
      let slotReleased = false;
      let timer: NodeJS.Timeout | undefined;
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      let gotExit = false;
      let timedOut = false;
      let stopStdin: () => void = () => {};
      let cancelQueue: () => void = () => {};

      const result = (): ExecResult => ({
        command,
        exitCode,
        signal: exitSignal,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        durationMs: Date.now() - started,
        timedOut,
      });
      const releaseSlot = () => {
        if (holdsSlot && !slotReleased) {
          slotReleased = true;
          this.slots.release();
        }
      };
      const cleanup = () => {
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.inFlight.delete(flight);
        if (!holdsSlot) cancelQueue();
        stopStdin();
      };
      const settleOk = (r: ExecResult) => {
        if (settled) return;
        cleanup();
        resolve(r);
      };
      const settleErr = (e: unknown) => {
        if (settled) return;
        cleanup();
        reject(e);
      };
      /**
       * Stop the command: KILL over SSH (sshd delivers it to the process group, but refuses for
       * root logins and cannot reach sudo's root processes), close the channel, then reap the
       * command's processes on the host over a fresh channel. Settles once reaping is done (bounded).
       */
      const killThenFail = (makeError: () => unknown, resolveInstead?: () => ExecResult) => {
        if (settled) return;
        const opened = ch !== null;
        cleanup();
        kill();
        const err = resolveInstead ? undefined : makeError();
        const finish = () => (resolveInstead ? resolve(resolveInstead()) : reject(err));
        if (opened && runId && !this._closed) {
          void this.reap(runId).then(finish);
        } else {
          finish();
        }
      };
      const kill = () => {
        if (ch) {
          const c = ch;
          sendSignal(c, 'KILL');
          try {
            c.close();
          } catch {
            /* gone */
          }
          // Keep the slot until the server confirms the close, but not forever.
          const t = setTimeout(releaseSlot, KILL_GRACE_MS);
          t.unref();
          c.once('close', () => {
            clearTimeout(t);
            releaseSlot();
          });
        } else {
          releaseSlot();
        }
      };

      const flight: InFlight = {
        connectionLost: () => {
          if (settled) return;
          releaseSlot();
          exitCode = null;
          settleErr(
            ch
              ? new CommandError(result(), 'lost')
              : new CommandError(result(), 'not-started', `Connection to ${this.label} closed`),
          );
        },
      };
      const onAbort = () => killThenFail(() => abortReason(signal!));

      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      if (this._closed) {
        reject(new CommandError(result(), 'not-started', `Connection to ${this.label} is closed`));
        return;
      }
      this.inFlight.add(flight);
      signal?.addEventListener('abort', onAbort, { once: true });

      const slot = this.slots.acquire();
      // If we give up while still queued, leave the queue.
      cancelQueue = slot.cancel;

      void slot.ready.then(() => {
        holdsSlot = true;
        if (settled) {
          releaseSlot();
          return;
        }
        if (opts.timeoutMs !== undefined) {
          const ms = opts.timeoutMs;
          timer = setTimeout(() => {
            timedOut = true;
            exitCode = null;
            const r = result();
            killThenFail(
              () => new CommandError(r, 'timeout', String(ms)),
              check ? undefined : () => r,
            );
          }, ms);
        }
        try {
          this.client.exec(wire, (err, channel) => {
            if (err) {
              releaseSlot();
              settleErr(
                new CommandError(
                  result(),
                  'not-started',
                  this._closed
                    ? `Connection to ${this.label} closed`
                    : `Could not open a channel on ${this.label}: ${err.message}`,
                ),
              );
              return;
            }
            ch = channel;
            if (settled) {
              // Timed out or aborted while the channel was opening: the command may have started.
              kill();
              if (runId && !this._closed) void this.reap(runId);
              return;
            }
            this.attach(channel, {
              onStdout: (chunk) => {
                stdout.push(chunk);
                if (opts.onStdoutChunk && !settled) {
                  try {
                    opts.onStdoutChunk(chunk);
                  } catch (e) {
                    killThenFail(() => e);
                  }
                }
              },
              onStderr: (chunk) => stderr.push(chunk),
              onExit: (code, sig) => {
                gotExit = true;
                exitCode = code;
                exitSignal = sig;
              },
              onClose: () => {
                releaseSlot();
                if (settled) return;
                const r = result();
                if (!gotExit) {
                  settleErr(new CommandError(r, this._closed ? 'lost' : 'no-status'));
                } else if (r.exitCode === 0 || (!check && (r.exitCode !== null || r.signal !== null))) {
                  settleOk(r);
                } else {
                  settleErr(new CommandError(r, r.exitCode === null ? 'signal' : 'exit'));
                }
              },
            });
            stopStdin = this.feedStdin(channel, opts.stdin, opts.onStdinBytes, (e) => killThenFail(() => e));
          });
        } catch (e) {
          releaseSlot();
          settleErr(
            new CommandError(result(), 'not-started', `Could not open a channel on ${this.label}: ${(e as Error).message}`),
          );
        }
      });
    });
  }

  /**
   * Kill, on the host, every process carrying the run's marker in its environment and all their
   * descendants. Best effort and bounded: never throws.
   */
  private async reap(runId: string): Promise<void> {
    try {
      await this.run(this.wrap(['sh', '-c', shQuote(REAPER_SCRIPT), 'ab-upgrade-reap', runId].join(' ')), {
        internal: true,
        check: false,
        timeoutMs: REAP_TIMEOUT_MS,
      });
    } catch {
      // The connection is gone or the host is too busy: nothing more we can do from here.
    }
  }

  private attach(
    ch: ClientChannel,
    h: {
      onStdout: (b: Buffer) => void;
      onStderr: (b: Buffer) => void;
      onExit: (code: number | null, signal: string | null) => void;
      onClose: () => void;
    },
  ): void {
    ch.on('data', (b: Buffer) => h.onStdout(b));
    ch.stderr.on('data', (b: Buffer) => h.onStderr(b));
    ch.on('exit', (code: number | null, signal?: string) => {
      h.onExit(typeof code === 'number' ? code : null, typeof signal === 'string' ? signal : null);
    });
    ch.on('error', () => {
      /* reported through close / connection loss */
    });
    ch.stderr.on('error', () => {});
    ch.once('close', () => h.onClose());
  }

  /** Write stdin (or EOF) to the channel, honouring backpressure. Returns a function that stops feeding. */
  private feedStdin(
    ch: ClientChannel,
    input: ExecOptions['stdin'],
    onBytes: ((n: number) => void) | undefined,
    onError: (e: unknown) => void,
  ): () => void {
    if (input === undefined) {
      ch.end();
      return () => {};
    }
    const src: NodeJS.ReadableStream =
      typeof input === 'string' || Buffer.isBuffer(input)
        ? Readable.from(chunksOf(typeof input === 'string' ? Buffer.from(input, 'utf8') : input), { objectMode: false })
        : input;
    let stopped = false;
    const onDrain = () => {
      if (!stopped) src.resume();
    };
    const onData = (chunk: Buffer | string) => {
      if (stopped) return;
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      let ok: boolean;
      try {
        ok = ch.write(b);
      } catch (e) {
        stop();
        onError(e);
        return;
      }
      onBytes?.(b.length);
      if (!ok) {
        src.pause();
        ch.once('drain', onDrain);
      }
    };
    const onEnd = () => {
      if (stopped) return;
      stopped = true;
      detach();
      ch.end();
    };
    const onErr = (e: unknown) => {
      if (stopped) return;
      stop();
      onError(e);
    };
    const detach = () => {
      src.removeListener('data', onData);
      src.removeListener('end', onEnd);
      src.removeListener('error', onErr);
      ch.removeListener('drain', onDrain);
    };
    const stop = () => {
      if (stopped) return;
      stopped = true;
      detach();
      src.pause();
    };
    src.on('data', onData);
    src.on('end', onEnd);
    src.on('error', onErr);
    src.resume();
    return stop;
  }
}

function* chunksOf(buf: Buffer, size = 64 * 1024): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

// ---------------------------------------------------------------------------------------------
// Connection pool: one connection per target, reused across activities in this worker.

const IDLE_CLOSE_MS = 120_000;

interface PoolEntry {
  host: Promise<SshHost>;
  users: number;
  idleTimer?: NodeJS.Timeout;
}

const pool = new Map<string, PoolEntry>();

/** user@host:port, plus every other setting: a changed pin or key never reuses an old connection. */
function poolKey(t: SshTarget): string {
  const { user, host, port, ...rest } = t;
  const sorted = Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b)));
  return `${user}@${host}:${port} ${JSON.stringify(sorted)}`;
}

function getEntry(target: SshTarget): PoolEntry {
  const key = poolKey(target);
  const existing = pool.get(key);
  if (existing) return existing;
  const entry: PoolEntry = { host: SshHost.connect(target), users: 0 };
  pool.set(key, entry);
  entry.host.then(
    (h) => {
      h.onClose(() => {
        if (pool.get(key) === entry) pool.delete(key);
        if (entry.idleTimer) clearTimeout(entry.idleTimer);
      });
      if (h.closed && pool.get(key) === entry) pool.delete(key);
    },
    () => {
      if (pool.get(key) === entry) pool.delete(key);
    },
  );
  return entry;
}

/** Pooled connections keyed by user@host:port, reused across activities in one worker; a dead one is replaced. */
export async function withHost<T>(target: SshTarget, fn: (h: SshHost) => Promise<T>): Promise<T> {
  const key = poolKey(target);
  let entry = getEntry(target);
  entry.users++;
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  let host: SshHost;
  try {
    host = await entry.host;
    if (host.closed) {
      // Died between uses: drop it and connect afresh, once.
      entry.users--;
      if (pool.get(key) === entry) pool.delete(key);
      entry = getEntry(target);
      entry.users++;
      host = await entry.host;
    }
  } catch (e) {
    entry.users--;
    throw e;
  }
  try {
    return await fn(host);
  } finally {
    entry.users--;
    if (host.closed) {
      if (pool.get(key) === entry) pool.delete(key);
    } else if (entry.users === 0 && pool.get(key) === entry) {
      const e = entry;
      e.idleTimer = setTimeout(() => {
        if (e.users === 0 && pool.get(key) === e) {
          pool.delete(key);
          host.close();
        }
      }, IDLE_CLOSE_MS);
      e.idleTimer.unref();
    }
  }
}

export function closeAllHosts(): void {
  const entries = [...pool.values()];
  pool.clear();
  for (const e of entries) {
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.host.then(
      (h) => h.close(),
      () => {},
    );
  }
}
