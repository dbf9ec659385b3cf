// Out-of-band power control: the way back when a trial boot never answers over SSH.
//
// One small interface, one class per backend (QEMU's QMP for the lab, IPMI and Redfish for
// real servers). Every operation is bounded by a timeout. Secrets never travel in argv or in
// the profile: IPMI reads its password file itself (`ipmitool -f`), Redfish reads the file at
// call time.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { PowerConfig } from '../lib/profile.js';

export type PowerStatus = 'on' | 'off' | 'unknown';

export interface PowerDriver {
  /** Hard reset (no guest shutdown): the machine restarts from firmware. */
  reset(): Promise<void>;
  /** Hard power off, no guest shutdown. */
  powerOff(): Promise<void>;
  /** Power on (from off: a fresh boot from firmware). */
  powerOn(): Promise<void>;
  status(): Promise<PowerStatus>;
}

export class PowerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PowerError';
  }
}

// ---------------------------------------------------------------------------------------------
// QMP (QEMU Machine Protocol) over a unix socket.

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

// ---------------------------------------------------------------------------------------------
// IPMI via ipmitool.

export interface IpmiOptions {
  address: string;
  user: string;
  passwordFile: string;
  interface?: 'lanplus' | 'lan';
  /** ipmitool binary (tests point this at a fake). */
  ipmitool?: string;
  timeoutMs?: number;
}

/** `ipmitool -I lanplus -H .. -U .. -f <passwordFile> chassis power reset|off|on|status`. */
export class IpmiPowerDriver implements PowerDriver {
  constructor(private readonly o: IpmiOptions) {}

  /** The argv (password only by file, never on the command line). */
  argv(action: 'reset' | 'off' | 'on' | 'status'): string[] {
    return ['-I', this.o.interface ?? 'lanplus', '-H', this.o.address, '-U', this.o.user, '-f', this.o.passwordFile, 'chassis', 'power', action];
  }

  private async ipmi(action: 'reset' | 'off' | 'on' | 'status'): Promise<string> {
    const r = await runCommand(this.o.ipmitool ?? 'ipmitool', this.argv(action), this.o.timeoutMs ?? 30_000);
    if (r.timedOut) throw new PowerError(`ipmitool chassis power ${action}: timed out after ${this.o.timeoutMs ?? 30_000} ms`);
    if (r.exitCode !== 0) {
      throw new PowerError(`ipmitool chassis power ${action} failed with exit code ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
    }
    return r.stdout;
  }

  async reset(): Promise<void> {
    await this.ipmi('reset');
  }
  async powerOff(): Promise<void> {
    await this.ipmi('off');
  }
  async powerOn(): Promise<void> {
    await this.ipmi('on');
  }
  async status(): Promise<PowerStatus> {
    let out: string;
    try {
      out = await this.ipmi('status');
    } catch {
      return 'unknown';
    }
    const m = /Chassis Power is (on|off)/i.exec(out);
    return m ? (m[1]!.toLowerCase() as 'on' | 'off') : 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// Redfish.

export interface RedfishOptions {
  /** BMC base URL, e.g. https://bmc.example (the /redfish/v1 path is appended). */
  url: string;
  user: string;
  passwordFile: string;
  systemId?: string;
  insecureTls?: boolean;
  /** Allow an http:// URL (basic auth in clear); refused otherwise. */
  allowHttp?: boolean;
  timeoutMs?: number;
}

/**
 * Redfish `ComputerSystem.Reset` with HTTP basic auth. Uses node:http(s) rather than global
 * fetch because fetch cannot skip TLS verification (self-signed BMC certificates) without the
 * undici package.
 */
export class RedfishPowerDriver implements PowerDriver {
  constructor(private readonly o: RedfishOptions) {}

  private systemPath(): string {
    return `/redfish/v1/Systems/${encodeURIComponent(this.o.systemId ?? '1')}`;
  }

  /** The BMC URL, checked again here: the profile reaching this activity may not have come through the CLI. */
  private baseUrl(): URL {
    let base: URL;
    try {
      base = new URL(this.o.url);
    } catch {
      throw new PowerError('Redfish: the BMC url is not a URL');
    }
    if (base.username || base.password) throw new PowerError('Redfish: the BMC url must not contain a user name or password (use user and passwordFile)');
    if (base.protocol === 'http:' && !this.o.allowHttp) {
      throw new PowerError(`Redfish: refusing http://${base.host}: the password would travel in clear (use https, or allowHttp: true)`);
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new PowerError(`Redfish: the BMC url must be https:// (got ${base.protocol})`);
    return base;
  }

  /**
   * The password: the file's one line. Anything longer (a private key, a config file) is
   * refused without a word of it, so a wrong path cannot send some other secret to the BMC.
   */
  private async password(): Promise<string> {
    const file = this.o.passwordFile;
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new PowerError(`Redfish: cannot read passwordFile ${file}: ${e.code ?? e.message}`);
    });
    const lines = text.split(/\r?\n/).filter((l) => l !== '');
    if (lines.length > 1) throw new PowerError(`Redfish: passwordFile ${file} has ${lines.length} lines; it must hold the password alone, on one line`);
    return lines[0] ?? '';
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
    const base = this.baseUrl();
    const password = await this.password();
    const target = new URL(base.pathname.replace(/\/+$/, '') + path, base);
    // Connection and TLS failures name the BMC and the cause (never the credentials).
    const failed = (e: Error & { code?: string }) =>
      e instanceof PowerError ? e : new PowerError(`Redfish ${method} ${target.host}${target.pathname}: ${e.code ? `${e.code}: ` : ''}${e.message}`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      Authorization: `Basic ${Buffer.from(`${this.o.user}:${password}`).toString('base64')}`,
      Accept: 'application/json',
    };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const timeoutMs = this.o.timeoutMs ?? 30_000;
    const mod = target.protocol === 'https:' ? https : http;
    return await new Promise((resolve, reject) => {
      const req = mod.request(
        target,
        { method, headers, timeout: timeoutMs, ...(target.protocol === 'https:' ? { rejectUnauthorized: !this.o.insecureTls } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown = null;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {
              json = null;
            }
            resolve({ status: res.statusCode ?? 0, json, text });
          });
          res.on('error', (e) => reject(failed(e)));
        },
      );
      const timer = setTimeout(() => req.destroy(new PowerError(`Redfish ${method} ${target.pathname}: timed out after ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('timeout', () => req.destroy(new PowerError(`Redfish ${method} ${target.pathname}: timed out after ${timeoutMs} ms`)));
      req.on('error', (e) => reject(failed(e)));
      req.end(payload);
    });
  }

  private async resetAction(resetType: 'ForceRestart' | 'ForceOff' | 'On'): Promise<void> {
    const path = `${this.systemPath()}/Actions/ComputerSystem.Reset`;
    const r = await this.request('POST', path, { ResetType: resetType });
    if (r.status < 200 || r.status >= 300) {
      throw new PowerError(`Redfish ${resetType}: HTTP ${r.status}: ${redfishMessage(r.json) ?? r.text.slice(0, 300)}`);
    }
  }

  async reset(): Promise<void> {
    await this.resetAction('ForceRestart');
  }
  async powerOff(): Promise<void> {
    await this.resetAction('ForceOff');
  }
  async powerOn(): Promise<void> {
    await this.resetAction('On');
  }
  async status(): Promise<PowerStatus> {
    try {
      const r = await this.request('GET', this.systemPath());
      if (r.status !== 200) return 'unknown';
      const state = (r.json as { PowerState?: unknown } | null)?.PowerState;
      if (state === 'On') return 'on';
      if (state === 'Off') return 'off';
      return 'unknown'; // PoweringOn, PoweringOff, Paused, absent
    } catch {
      return 'unknown';
    }
  }
}

function redfishMessage(json: unknown): string | null {
  const e = (json as { error?: { message?: unknown; '@Message.ExtendedInfo'?: { Message?: unknown }[] } } | null)?.error;
  if (!e) return null;
  const ext = e['@Message.ExtendedInfo']?.map((i) => i.Message).filter(Boolean).join('; ');
  return [e.message, ext].filter(Boolean).join(': ') || null;
}

// ---------------------------------------------------------------------------------------------

/** The driver for a profile's `power` section; `none` gives null. */
export function powerDriverFor(config: PowerConfig): PowerDriver | null {
  switch (config.driver) {
    case 'none':
      return null;
    case 'qmp':
      return new QmpPowerDriver(config.socket);
    case 'ipmi':
      return new IpmiPowerDriver({ address: config.address, user: config.user, passwordFile: config.passwordFile, interface: config.interface });
    case 'redfish':
      return new RedfishPowerDriver({
        url: config.url,
        user: config.user,
        passwordFile: config.passwordFile,
        systemId: config.systemId,
        insecureTls: config.insecureTls,
        allowHttp: config.allowHttp,
      });
  }
}

// ---------------------------------------------------------------------------------------------
// helpers

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PowerError(`${what}: timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
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

interface CommandResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function runCommand(file: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ exitCode: null, stdout, stderr: stderr + err.message, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, stdout, stderr, timedOut });
    });
  });
}
