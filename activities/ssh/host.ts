// SshHost, the one thin wrapper over ssh2: everything that touches a host goes through it.
//
// What it guarantees:
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
import { shJoin, shQuote } from '../../lib/quote.js';
import {
  describeExpected,
  fingerprintOfKeyBlob,
  hostKeyAlgorithmsFor,
  hostKeyMatches,
  parseExpectedHostKeys,
} from '../../lib/hostkey.js';
import { Slots } from './channel-slots.js';
import { sendSignal } from './channel-signal.js';
import { abortReason, CommandError, HostKeyMismatchError, SshConnectError } from './errors.js';
import type { ExecOptions, ExecResult } from './exec-types.js';
import { presentedHostKey } from './host-key-probe.js';
import { REAPER_SCRIPT, RUN_MARKER } from './reaper.js';
import { TailBuffer } from './tail-buffer.js';
import type { SshTarget } from './target.js';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_KEEPALIVE_MS = 5_000;
const KEEPALIVE_COUNT_MAX = 3;
const DEFAULT_MAX_CHANNELS = 4;
const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;
/** After killing a channel, how long its slot stays taken waiting for the server's close. */
const KILL_GRACE_MS = 2_000;
const REAP_TIMEOUT_MS = 5_000;

type RunOptions = ExecOptions & {
  onStdinBytes?: (n: number) => void;
  /** Our own housekeeping commands: no run marker, never reaped. */
  internal?: boolean;
};

interface InFlight {
  connectionLost(): void;
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
      throw new SshConnectError(`Invalid hostKey for ${where}: ${(e as Error).message}`, { failure: 'setup' });
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
          { failure: 'setup' },
        );
      }
    }
    if (target.agent === true) {
      const sock = process.env.SSH_AUTH_SOCK;
      if (sock) cfg.agent = sock;
      else if (cfg.privateKey === undefined) {
        throw new SshConnectError(`No SSH agent for ${where}: agent is true but SSH_AUTH_SOCK is not set`, { failure: 'setup' });
      }
    } else if (typeof target.agent === 'string' && target.agent !== '') {
      cfg.agent = target.agent;
    }
    if (cfg.privateKey === undefined && cfg.agent === undefined) {
      throw new SshConnectError(`No credentials for ${where}: give identityFile or agent`, { failure: 'setup' });
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
          fail(new SshConnectError(`Authentication failed for ${target.user}@${where}`, { cause: err, failure: 'credentials' }));
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
