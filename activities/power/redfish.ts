// Redfish: a BMC's REST API.
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { PowerError, type PowerDriver, type PowerStatus } from './driver.js';

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
