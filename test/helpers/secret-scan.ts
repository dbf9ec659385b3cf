// The workflow tests' secret scan. When a test file's workflow environment closes
// (./workflow-env.ts), every workflow started on the dev server since it was set up is listed,
// each history is fetched, its payloads decrypted with the file's codec (when it has one), and
// all of its text — with what the in-process workers logged, and the stdout/stderr of the worker
// processes the file started (./kill-harness.ts) — is searched for:
//   - "PRIVATE KEY" (any PEM or OpenSSH private key header), always;
//   - secrets the tests registered: the contents of the key and password files their profiles
//     reference (each long line of a key file and the file's sha256 as well, as a digest of a
//     carried file would give it away), passwords, and what a BMC request would carry.
// An encrypted payload the scan cannot decrypt counts as a finding: it could hide anything.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { LogLevel, LogMetadata, Logger, Payload } from '@temporalio/common';
import { ENCRYPTED_ENCODING } from '../../lib/codec.js';

export interface Secret {
  /** What it is, for the report (the report never repeats the secret itself). */
  label: string;
  value: string;
}

const ALWAYS: Secret[] = [{ label: 'a private key header', value: 'PRIVATE KEY' }];
const registered: Secret[] = [];

/** Registers a secret that no history or worker log line may contain. */
export function registerSecret(label: string, value: string): void {
  if (value.length < 8) throw new Error(`secret ${label} is too short to search for without false hits`);
  registered.push({ label, value });
}

/** Registers a secret file: its whole content, each line of 16 characters or more, and its sha256. */
export function registerSecretFile(label: string, file: string): void {
  const content = readFileSync(file, 'utf8');
  registerSecret(`${label} (whole file)`, content.trim());
  content
    .split('\n')
    .map((l) => l.trim())
    .forEach((line, i) => line.length >= 16 && registerSecret(`${label} line ${i + 1}`, line));
  registerSecret(`${label} sha256`, createHash('sha256').update(content).digest('hex'));
}

export interface SecretFixtures {
  dir: string;
  /** An Ed25519 private key (PKCS#8 PEM), mode 0600: a profile's auth.identityFile. */
  identityFile: string;
  /** A BMC password alone on one line, mode 0600: a profile's power.passwordFile. */
  passwordFile: string;
  password: string;
  user: string;
  /** The HTTP basic credentials a Redfish request carries for user and password. */
  basicAuth: string;
  remove(): void;
}

/** Writes a fresh private key and BMC password file for a test profile and registers their contents. */
export function secretFixtures(): SecretFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-secrets-'));
  const identityFile = join(dir, 'id_ed25519');
  writeFileSync(identityFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const passwordFile = join(dir, 'bmc-password');
  const password = `bmc-${randomBytes(12).toString('hex')}`;
  writeFileSync(passwordFile, `${password}\n`);
  for (const f of [identityFile, passwordFile]) chmodSync(f, 0o600);
  const user = 'bmc-operator';
  const basicAuth = Buffer.from(`${user}:${password}`).toString('base64');
  registerSecretFile('identity file', identityFile);
  registerSecret('BMC password', password);
  registerSecret('BMC basic auth', basicAuth);
  return { dir, identityFile, passwordFile, password, user, basicAuth, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The Runtime's logger for the tests: records every entry (all levels) for the scan and passes
 * it on to `inner`, which prints what its level lets through.
 */
export class RecordingLogger implements Logger {
  readonly lines: string[] = [];

  constructor(private readonly inner: Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.lines.push(`${level} ${message} ${safeJson(meta)}`);
    this.inner.log(level, message, meta);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

function safeJson(v: unknown): string {
  try {
    return (
      JSON.stringify(v, (_k, x: unknown) =>
        x instanceof Error ? { name: x.name, message: x.message, stack: x.stack, cause: x.cause } : typeof x === 'bigint' ? String(x) : x,
      ) ?? ''
    );
  } catch {
    return String(v);
  }
}

export interface ScanReport {
  histories: number;
  /** Worker logs scanned: the in-process workers' lines, and each worker process's output. */
  workerLogs: number;
  /** Encrypted payloads decrypted for the scan. */
  decrypted: number;
  /** "<where>: <label>" for each secret found, and each payload that could not be decrypted. */
  findings: string[];
}

const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');

/**
 * A fetched history as stored: the text of every string and byte field, the encrypted payloads
 * (whose bytes are not in `text`), and the data of each payload stored as JSON in clear.
 */
export function storedHistory(history: unknown): { text: string; encrypted: Payload[]; plainJson: string[] } {
  const out: string[] = [];
  const encrypted: Payload[] = [];
  const plainJson: string[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) out.push(utf8(v));
    else if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const encoding = (v as Payload).metadata?.encoding;
      const kind = encoding instanceof Uint8Array ? utf8(encoding) : undefined;
      if (kind === ENCRYPTED_ENCODING) encrypted.push(v as Payload);
      else {
        if (kind === 'json/plain' && (v as Payload).data) plainJson.push(utf8((v as Payload).data!));
        Object.values(v).forEach(walk);
      }
    }
  };
  walk(history);
  return { text: out.join('\n'), encrypted, plainJson };
}

/** A history's text with its encrypted payloads decrypted by `client`'s codecs (each one it cannot decrypt is a finding). */
async function historyText(history: unknown, client: Client, where: string, report: ScanReport): Promise<string> {
  const stored = storedHistory(history);
  const texts = [stored.text];
  const codecs = [...client.options.loadedDataConverter.payloadCodecs].reverse();
  for (const p of stored.encrypted) {
    let payloads = [p];
    try {
      for (const c of codecs) payloads = await c.decode(payloads);
    } catch (e) {
      report.findings.push(`${where}: an encrypted payload the scan cannot decrypt (${(e as Error).message})`);
      continue;
    }
    const decoded = storedHistory(payloads[0]);
    if (decoded.encrypted.length) {
      report.findings.push(`${where}: an encrypted payload the scan cannot decrypt (the test file's environment has no codec)`);
      continue;
    }
    report.decrypted++;
    texts.push(decoded.text);
  }
  return texts.join('\n');
}

/** "<where>: <label>" for each secret in `text`: the rules' and the registered ones, and `extra`. */
export function secretsIn(text: string, where: string, extra: Secret[] = []): string[] {
  const found: string[] = [];
  for (const s of [...ALWAYS, ...registered, ...extra]) {
    // A secret inside a JSON string has its newlines, quotes and backslashes escaped.
    const forms = new Set([s.value, JSON.stringify(s.value).slice(1, -1)]);
    if ([...forms].some((f) => text.includes(f))) found.push(`${where}: ${s.label}`);
  }
  return found;
}

function find(text: string, where: string, report: ScanReport): void {
  report.findings.push(...secretsIn(text, where));
}

/** A worker process's output, read when the scan runs. */
export interface WorkerLog {
  where: string;
  text: () => string;
}

/**
 * Scans every workflow started on the server (the client's namespace) at or after `since`, the
 * in-process workers' log lines, and the output of the worker processes in `processLogs`.
 */
export async function scanForSecrets(client: Client, since: Date, logLines: string[], processLogs: readonly WorkerLog[] = []): Promise<ScanReport> {
  const report: ScanReport = { histories: 0, workerLogs: 1 + processLogs.length, decrypted: 0, findings: [] };
  const query = `StartTime >= "${since.toISOString()}"`;
  for await (const { workflowId, history } of client.workflow.list({ query }).intoHistories({ concurrency: 4 })) {
    report.histories++;
    const where = `history of ${workflowId}`;
    find(await historyText(history, client, where, report), where, report);
  }
  find(logLines.join('\n'), 'worker log', report);
  for (const l of processLogs) find(l.text(), l.where, report);
  return report;
}

/** Forgets the registered secrets (each test file registers its own). */
export function clearSecrets(): void {
  registered.length = 0;
}
