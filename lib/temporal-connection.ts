// Where and how the worker and the CLI connect to Temporal: address, namespace, TLS (optionally
// mutual, with a client certificate) and an API key. Each setting comes from a command-line flag
// or else from an environment variable named as the Temporal CLI names it (the older spelling in
// parentheses is read too; the newer one wins when both are set):
//
//   --address                        TEMPORAL_ADDRESS                        (default 127.0.0.1:7233)
//   --namespace                      TEMPORAL_NAMESPACE                      (default "default")
//   --tls / --no-tls                 TEMPORAL_TLS                            true/false
//   --tls-cert-path                  TEMPORAL_TLS_CLIENT_CERT_PATH (TEMPORAL_TLS_CERT)
//   --tls-key-path                   TEMPORAL_TLS_CLIENT_KEY_PATH (TEMPORAL_TLS_KEY)
//   --tls-ca-path                    TEMPORAL_TLS_SERVER_CA_CERT_PATH (TEMPORAL_TLS_CA)
//   --tls-server-name                TEMPORAL_TLS_SERVER_NAME
//   --tls-disable-host-verification  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION  (refused: see below)
//   --api-key                        TEMPORAL_API_KEY
//
// TLS is on when asked for, or when any TLS file, the server name or an API key is given, unless
// it is turned off explicitly (then giving TLS files as well is refused as contradictory; an API
// key is then sent in clear). A client certificate needs its key and the other way round. The
// files must be readable PEM files; they are read here, so a bad path is reported before any
// connection attempt. Messages name the flag or variable a value came from, never quote a key
// file's content, and the API key appears nowhere but in the connection options.
//
// Host name verification cannot be turned off: the worker's connection (Temporal's Rust core)
// has no such switch. A server whose certificate does not name the address is reached with
// --tls-server-name set to a name the certificate holds.
import { readFileSync, statSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { TLSConfig } from '@temporalio/client';
import { z } from 'zod';

/** The command-line flags (each overrides its environment variables). */
export interface ConnectionFlags {
  address?: string;
  namespace?: string;
  tls?: boolean;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  tlsCaPath?: string;
  tlsServerName?: string;
  tlsDisableHostVerification?: boolean;
  apiKey?: string;
}

type Setting = keyof ConnectionFlags;

/** Per setting: its flag, and its environment variables (preferred first). */
export const CONNECTION_SETTINGS: Record<Setting, { flag: string; env: readonly string[] }> = {
  address: { flag: '--address', env: ['TEMPORAL_ADDRESS'] },
  namespace: { flag: '--namespace', env: ['TEMPORAL_NAMESPACE'] },
  tls: { flag: '--tls', env: ['TEMPORAL_TLS'] },
  tlsCertPath: { flag: '--tls-cert-path', env: ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CERT'] },
  tlsKeyPath: { flag: '--tls-key-path', env: ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_KEY'] },
  tlsCaPath: { flag: '--tls-ca-path', env: ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_CA'] },
  tlsServerName: { flag: '--tls-server-name', env: ['TEMPORAL_TLS_SERVER_NAME'] },
  tlsDisableHostVerification: { flag: '--tls-disable-host-verification', env: ['TEMPORAL_TLS_DISABLE_HOST_VERIFICATION'] },
  apiKey: { flag: '--api-key', env: ['TEMPORAL_API_KEY'] },
};

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

/** A connection setting that cannot be used; the message names its flag or variable. */
export class ConnectionConfigError extends Error {
  override name = 'ConnectionConfigError';
}

/** What to connect to and how; `tls` undefined means plaintext. */
export interface TemporalConnection {
  address: string;
  namespace: string;
  tls?: TLSConfig;
  apiKey?: string;
  /** One line for logs and messages: address, namespace, TLS and authentication, no secret. */
  summary: string;
}

const text = z.string().trim().min(1, 'must not be empty');
const bool = z.union(
  [
    z.boolean(),
    z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(['true', 'false', '1', '0']))
      .transform((v) => v === 'true' || v === '1'),
  ],
  { error: 'must be true or false' },
);
const schemas: Record<Setting, z.ZodType<string | boolean>> = {
  address: text.regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/, 'must be host:port (no scheme), e.g. temporal.example.com:7233'),
  namespace: text,
  tls: bool,
  tlsCertPath: text,
  tlsKeyPath: text,
  tlsCaPath: text,
  tlsServerName: text.regex(/^[^\s/:]+$/, 'must be a host name'),
  tlsDisableHostVerification: bool,
  apiKey: text.regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
};

interface Sourced<T> {
  value: T;
  /** The flag or variable it came from. */
  source: string;
}

/** The value of one setting (flag first, then its variables) and where it came from; undefined when unset. */
function pick(setting: Setting, flags: ConnectionFlags, env: NodeJS.ProcessEnv): Sourced<string | boolean> | undefined {
  const { flag, env: names } = CONNECTION_SETTINGS[setting];
  if (flags[setting] !== undefined) return { value: flags[setting], source: flag };
  const name = names.find((n) => env[n] !== undefined && env[n] !== '');
  return name ? { value: env[name]!, source: name } : undefined;
}

/**
 * The connection named by `flags` and `env`, TLS files read. Throws a ConnectionConfigError
 * listing every problem, each naming its flag or variable.
 */
export function resolveConnection(flags: ConnectionFlags = {}, env: NodeJS.ProcessEnv = process.env): TemporalConnection {
  const problems: string[] = [];
  const got: Partial<Record<Setting, Sourced<string | boolean>>> = {};
  for (const setting of Object.keys(CONNECTION_SETTINGS) as Setting[]) {
    const raw = pick(setting, flags, env);
    if (!raw) continue;
    const parsed = schemas[setting].safeParse(raw.value);
    // The API key is never quoted, not even when it is refused.
    const shown = setting === 'apiKey' ? '' : ` (got ${JSON.stringify(raw.value)})`;
    if (parsed.success) got[setting] = { value: parsed.data, source: raw.source };
    else problems.push(`${raw.source} ${parsed.error.issues[0]?.message ?? 'is invalid'}${shown}`);
  }
  if (problems.length) throw new ConnectionConfigError(problems.join('; '));
  const str = (s: Setting) => got[s] as Sourced<string> | undefined;

  if (got.tlsDisableHostVerification?.value === true) {
    problems.push(
      `${got.tlsDisableHostVerification.source}: host name verification cannot be turned off (the worker's connection has no such setting); set ${CONNECTION_SETTINGS.tlsServerName.flag} (${CONNECTION_SETTINGS.tlsServerName.env[0]}) to a name the server's certificate holds`,
    );
  }
  const cert = str('tlsCertPath');
  const key = str('tlsKeyPath');
  if (cert && !key) problems.push(`${cert.source} is set but no client key: set ${CONNECTION_SETTINGS.tlsKeyPath.flag} or ${CONNECTION_SETTINGS.tlsKeyPath.env[0]}`);
  if (key && !cert) problems.push(`${key.source} is set but no client certificate: set ${CONNECTION_SETTINGS.tlsCertPath.flag} or ${CONNECTION_SETTINGS.tlsCertPath.env[0]}`);
  const tlsFiles = [cert, key, str('tlsCaPath'), str('tlsServerName')].filter((s): s is Sourced<string> => s !== undefined);
  const explicitTls = got.tls as Sourced<boolean> | undefined;
  if (explicitTls?.value === false && tlsFiles.length) {
    problems.push(`${explicitTls.source} turns TLS off, but TLS settings are given: ${tlsFiles.map((s) => s.source).join(', ')}`);
  }
  if (problems.length) throw new ConnectionConfigError(problems.join('; '));

  const apiKey = str('apiKey')?.value;
  const tlsOn = explicitTls ? explicitTls.value : tlsFiles.length > 0 || apiKey !== undefined;
  let tls: TLSConfig | undefined;
  if (tlsOn) {
    const ca = str('tlsCaPath');
    const serverName = str('tlsServerName')?.value;
    tls = {
      ...(serverName ? { serverNameOverride: serverName } : {}),
      ...(ca ? { serverRootCACertificate: readPem(ca, 'CA certificate') } : {}),
      ...(cert && key ? { clientCertPair: { crt: readPem(cert, 'client certificate'), key: readPem(key, 'client key') } } : {}),
    };
  }
  const address = str('address')?.value ?? DEFAULT_ADDRESS;
  const namespace = str('namespace')?.value ?? DEFAULT_NAMESPACE;
  const how = !tls
    ? 'plaintext'
    : `TLS${tls.clientCertPair ? ' with client certificate' : ''}${tls.serverRootCACertificate ? ', own CA' : ''}${tls.serverNameOverride ? `, server name ${tls.serverNameOverride}` : ''}`;
  const summary = `${address}, namespace ${namespace}, ${how}${apiKey !== undefined ? ', API key' : ''}`;
  return { address, namespace, ...(tls ? { tls } : {}), ...(apiKey !== undefined ? { apiKey } : {}), summary };
}

/** Reads a PEM file named by a setting; errors name the setting and the path, never the content. */
function readPem(s: Sourced<string>, what: string): Buffer {
  const path = s.value;
  let data: Buffer;
  try {
    if (!statSync(path).isFile()) throw new ConnectionConfigError(`${s.source}: the ${what} ${path} is not a regular file`);
    data = readFileSync(path);
  } catch (e) {
    if (e instanceof ConnectionConfigError) throw e;
    throw new ConnectionConfigError(`${s.source}: cannot read the ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!data.includes('-----BEGIN ')) throw new ConnectionConfigError(`${s.source}: the ${what} ${path} is not a PEM file (no -----BEGIN line)`);
  return data;
}

/**
 * Options for the client's Connection.connect and the worker's NativeConnection.connect (the
 * fields used are common to both). TLS is passed as false when off, so that an API key alone
 * does not turn it on in the SDK.
 */
export function connectionOptions(c: TemporalConnection): { address: string; tls: TLSConfig | false; apiKey?: string } {
  return { address: c.address, tls: c.tls ?? false, ...(c.apiKey !== undefined ? { apiKey: c.apiKey } : {}) };
}

/**
 * Why a TLS handshake with the server fails (e.g. "self-signed certificate in certificate chain",
 * "alert certificate required"), or undefined when it succeeds or the connection is plaintext.
 * The SDK's client reports a failed handshake only as a connection timeout; this says why.
 */
export async function tlsHandshakeProblem(c: TemporalConnection, timeoutMs = 5_000): Promise<string | undefined> {
  if (!c.tls) return undefined;
  const i = c.address.lastIndexOf(':');
  const host = c.address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const { serverNameOverride, serverRootCACertificate, clientCertPair } = c.tls;
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port: Number(c.address.slice(i + 1)),
      servername: serverNameOverride ?? host,
      ALPNProtocols: ['h2'],
      ...(serverRootCACertificate ? { ca: Buffer.from(serverRootCACertificate) } : {}),
      ...(clientCertPair ? { cert: Buffer.from(clientCertPair.crt), key: Buffer.from(clientCertPair.key) } : {}),
    });
    const done = (problem: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    // OpenSSL's alerts come as "<code>:error:<n>:SSL routines:<function>:<reason>:<file>:..."; keep the reason.
    socket.once('error', (e) => done((/SSL routines:[^:]*:([^:]+)/.exec(e.message)?.[1] ?? e.message).trim()));
    // With TLS 1.3 a server refuses a client certificate after the client's side of the
    // handshake is done: give its alert a moment to arrive.
    socket.once('secureConnect', () => setTimeout(() => done(undefined), 300));
  });
}

/**
 * The error to report when connecting to `c` failed with `e`: where it tried (no secret) and why,
 * with the TLS handshake's own reason when that is what failed.
 */
export async function connectionError(c: TemporalConnection, e: unknown): Promise<Error> {
  const tlsProblem = await tlsHandshakeProblem(c);
  const why = tlsProblem ? `TLS handshake failed: ${tlsProblem}` : e instanceof Error ? e.message : String(e);
  const local = /^(127\.|localhost:|\[::1\]:)/.test(c.address);
  const hint = !c.tls && local ? '; start it with ./temporal-dev.sh start' : '';
  return new Error(`cannot reach the Temporal server at ${c.summary} (${why})${hint}`);
}

let cliFlags: ConnectionFlags = {};
let pinned: TemporalConnection | undefined;

/** Records the CLI's global flags; later configuredConnection() calls apply them over the environment. */
export function setConnectionFlags(flags: ConnectionFlags): void {
  cliFlags = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
}

/** Makes configuredConnection() return `c` whatever the flags and environment say (the lab, on its own dev server). */
export function pinConnection(c: TemporalConnection | undefined): void {
  pinned = c;
}

/** A plaintext connection to `address` (a local dev server). */
export function plaintextConnection(address: string, namespace = DEFAULT_NAMESPACE): TemporalConnection {
  return { address, namespace, summary: `${address}, namespace ${namespace}, plaintext` };
}

/** The connection the CLI's flags and the environment name (or the pinned one). */
export function configuredConnection(env: NodeJS.ProcessEnv = process.env): TemporalConnection {
  return pinned ?? resolveConnection(cliFlags, env);
}
