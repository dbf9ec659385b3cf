// QMP (QEMU Machine Protocol) over a unix socket: the lab's power driver.
import * as net from 'node:net';
import { PowerError, type PowerDriver, type PowerStatus } from './driver.js';
import { errMsg, sleep, withTimeout } from './timeout.js';

export interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
}
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/**
 * One QMP connection: greeting, `qmp_capabilities`, then commands one at a time. Events are
 * delivered to `onEvent`. QEMU's monitor serves one client per socket at a time.
 */
export class QmpConnection {
  private buf = '';
  private waiting: { resolve: (r: QmpReply) => void; reject: (e: Error) => void } | null = null;
  private greeted: ((ok: boolean) => void) | null = null;
  private greetingSeen = false;
  private closedError: Error | null = null;
  private readonly closeListeners: (() => void)[] = [];

  private constructor(
    private readonly sock: net.Socket,
    private readonly onEvent?: (e: QmpEvent) => void,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new PowerError('QMP connection closed')));
  }

  /** Connects (retrying while the socket is missing or refusing, e.g. during a QEMU restart). */
  static async connect(
    socketPath: string,
    opts: { timeoutMs?: number; onEvent?: (e: QmpEvent) => void } = {},
  ): Promise<QmpConnection> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    let lastErr: unknown = null;
    while (Date.now() < deadline) {
      try {
        const sock = await connectUnix(socketPath, Math.max(100, Math.min(5_000, deadline - Date.now())));
        const conn = new QmpConnection(sock, opts.onEvent);
        try {
          // Bounded per attempt: a QEMU that is going away may accept but never greet.
          await conn.handshake(Math.max(100, Math.min(5_000, deadline - Date.now())));
        } catch (err) {
          conn.close();
          throw err;
        }
        return conn;
      } catch (err) {
        lastErr = err;
        await sleep(100);
      }
    }
    throw new PowerError(`QMP: cannot connect to ${socketPath}: ${errMsg(lastErr)}`);
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const ok = this.greetingSeen
      ? true
      : this.closedError
      ? false
      : await withTimeout(
          new Promise<boolean>((resolve) => {
            this.greeted = resolve;
          }),
          timeoutMs,
          'QMP greeting',
        );
    if (!ok) throw this.closedError ?? new PowerError('QMP: no greeting');
    const r = await this.execute('qmp_capabilities', undefined, timeoutMs);
    if (r.error) throw new PowerError(`QMP qmp_capabilities: ${r.error.desc}`);
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greetingSeen = true;
        this.greeted?.(true);
        this.greeted = null;
      } else if ('event' in msg) {
        try {
          this.onEvent?.(msg as unknown as QmpEvent);
        } catch {
          /* a listener's error must not break the connection */
        }
      } else if ('return' in msg || 'error' in msg) {
        const w = this.waiting;
        this.waiting = null;
        w?.resolve(msg as QmpReply);
      }
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.greeted?.(false);
    this.greeted = null;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(err);
    for (const l of this.closeListeners.splice(0)) l();
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  onClose(listener: () => void): void {
    if (this.closedError) listener();
    else this.closeListeners.push(listener);
  }

  /** Sends one command and waits (bounded) for its reply. Error replies are returned, not thrown. */
  async execute(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<QmpReply> {
    if (this.closedError) throw this.closedError;
    if (this.waiting) throw new PowerError('QMP: one command at a time');
    const reply = new Promise<QmpReply>((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    try {
      return await withTimeout(reply, timeoutMs, `QMP ${command}`);
    } catch (err) {
      this.waiting = null;
      throw err;
    }
  }

  close(): void {
    this.sock.destroy();
    this.fail(new PowerError('QMP connection closed'));
  }
}

/**
 * Power control of a QEMU VM through its QMP socket. QEMU has no "power off but stay
 * controllable" switch, so:
 * - `reset()`: `system_reset` (hard reset, like the reset button).
 * - `powerOff()`: `stop` — the vCPUs halt at once, the guest gets no shutdown and stops
 *   answering; QEMU (and this socket) stay up. `status()` then reports 'off'.
 * - `powerOn()`: `system_reset` + `cont` — a fresh boot from firmware, never a resume of the
 *   frozen guest. Also works after the guest powered itself off (the lab runs QEMU with
 *   `-action shutdown=pause`, so a guest poweroff leaves QEMU up in the 'shutdown' state).
 * - `status()`: 'on' when running, 'off' when paused/shut down, 'unknown' when the socket
 *   does not answer (QEMU gone or restarting) or in any other state.
 * With the lab's restart supervisor (lab/vm.ts) a reset makes QEMU exit and a new QEMU start
 * on the same socket path; every call therefore opens its own connection and retries the
 * connect for `connectTimeoutMs`.
 */
export class QmpPowerDriver implements PowerDriver {
  constructor(
    readonly socketPath: string,
    private readonly opts: { connectTimeoutMs?: number; commandTimeoutMs?: number } = {},
  ) {}

  private async run(commands: string[], tolerateClose = false): Promise<QmpReply[]> {
    const conn = await QmpConnection.connect(this.socketPath, { timeoutMs: this.opts.connectTimeoutMs ?? 15_000 });
    const replies: QmpReply[] = [];
    try {
      for (const c of commands) {
        try {
          replies.push(await conn.execute(c, undefined, this.opts.commandTimeoutMs ?? 10_000));
        } catch (err) {
          // A reset under the restart supervisor can close the socket before the reply arrives.
          if (tolerateClose && conn.closed) break;
          throw err;
        }
      }
    } finally {
      conn.close();
    }
    return replies;
  }

  async reset(): Promise<void> {
    const [r] = await this.run(['system_reset'], true);
    if (r?.error) throw new PowerError(`QMP system_reset: ${r.error.desc}`);
  }

  async powerOff(): Promise<void> {
    const [r] = await this.run(['stop']);
    if (r?.error) throw new PowerError(`QMP stop: ${r.error.desc}`);
  }

  async powerOn(): Promise<void> {
    const replies = await this.run(['system_reset', 'cont'], true);
    const reset = replies[0];
    if (reset?.error) throw new PowerError(`QMP system_reset: ${reset.error.desc}`);
    // `cont` fails harmlessly when a supervisor has already replaced the reset QEMU, or when
    // the VM was running anyway; only a VM that stays paused is an error.
    const deadline = Date.now() + (this.opts.connectTimeoutMs ?? 15_000);
    for (;;) {
      const s = await this.queryStatus().catch(() => null);
      if (s === 'running') return;
      if (s === 'paused' || s === 'prelaunch') await this.run(['cont'], true).catch(() => undefined);
      if (Date.now() > deadline) throw new PowerError(`QMP: VM not running after power on (status ${s ?? 'unreachable'})`);
      await sleep(200);
    }
  }

  /** QEMU's run state (running, paused, shutdown, ...). */
  async queryStatus(): Promise<string> {
    const [r] = await this.run(['query-status']);
    if (!r || r.error) throw new PowerError(`QMP query-status: ${r?.error?.desc ?? 'no reply'}`);
    return String((r.return as { status?: unknown }).status);
  }

  async status(): Promise<PowerStatus> {
    let s: string;
    try {
      s = await this.queryStatus();
    } catch {
      return 'unknown';
    }
    if (s === 'running' || s === 'suspended') return 'on';
    if (s === 'paused' || s === 'shutdown' || s === 'prelaunch') return 'off';
    return 'unknown';
  }
}

function connectUnix(path: string, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new PowerError(`connect ${path}: timed out`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    });
  });
}
