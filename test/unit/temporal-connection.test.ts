// How flags and TEMPORAL_* variables become the worker's and the CLI's connection
// (lib/temporal-connection.ts), and that the CLI's global flags reach it. No server involved:
// test/workflow/tls-connection.test.ts connects through TLS for real.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { main } from '../../client/cli.js';
import { runWorker } from '../../worker/main.js';
import { ConnectionConfigError, configuredConnection, connectionOptions, resolveConnection, setConnectionFlags } from '../../lib/temporal-connection.js';

const dir = mkdtempSync(join(tmpdir(), 'ab-temporal-connection-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pem = (name: string, label: string, body = 'MIIBfake') => {
  const file = join(dir, name);
  writeFileSync(file, `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`);
  return file;
};
const cert = pem('client.pem', 'CERTIFICATE');
const key = pem('client.key', 'PRIVATE KEY', 'KEYMATERIAL-DO-NOT-PRINT');
const ca = pem('ca.pem', 'CERTIFICATE');
const API_KEY = 'tmprl-apikey-0123456789abcdef';

const errorOf = (f: () => unknown): ConnectionConfigError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectionConfigError);
    return e as ConnectionConfigError;
  }
  throw new Error('expected a ConnectionConfigError');
};

describe('resolveConnection', () => {
  test('nothing set: the local dev server in plaintext, namespace default', () => {
    const c = resolveConnection({}, {});
    expect(c).toEqual({ address: '127.0.0.1:7233', namespace: 'default', summary: '127.0.0.1:7233, namespace default, plaintext' });
    expect(connectionOptions(c)).toEqual({ address: '127.0.0.1:7233', tls: false });
  });

  test('variables are read; a flag overrides its variable; an empty variable counts as unset', () => {
    const env = { TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'ops', TEMPORAL_TLS: '' };
    expect(resolveConnection({}, env)).toMatchObject({ address: 'temporal.internal:7233', namespace: 'ops' });
    expect(resolveConnection({ namespace: 'prod.a1b2c' }, env)).toMatchObject({ address: 'temporal.internal:7233', namespace: 'prod.a1b2c' });
    expect(resolveConnection({ address: '[::1]:7233' }, env).address).toBe('[::1]:7233');
    expect(resolveConnection({ tls: false }, { TEMPORAL_TLS: 'true' }).tls).toBeUndefined();
    expect(resolveConnection({ tls: true }, { TEMPORAL_TLS: 'false' }).tls).toEqual({});
  });

  test('mutual TLS from the variables: files read, server name and CA set', () => {
    const c = resolveConnection({}, {
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal.internal',
      TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'false',
    });
    expect(c.tls?.serverNameOverride).toBe('frontend.temporal.internal');
    expect(Buffer.from(c.tls!.clientCertPair!.crt).toString()).toContain('BEGIN CERTIFICATE');
    expect(Buffer.from(c.tls!.clientCertPair!.key).toString()).toContain('KEYMATERIAL');
    expect(Buffer.from(c.tls!.serverRootCACertificate!).toString()).toContain('BEGIN CERTIFICATE');
    expect(c.summary).toBe('temporal.internal:7233, namespace default, TLS with client certificate, own CA, server name frontend.temporal.internal');
    expect(connectionOptions(c).tls).toBe(c.tls);
  });

  test("the older variable spellings are read; the Temporal CLI's current ones win over them", () => {
    const other = pem('other.pem', 'CERTIFICATE', 'OTHER');
    const c = resolveConnection({}, { TEMPORAL_TLS_CERT: other, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca });
    expect(Buffer.from(c.tls!.clientCertPair!.crt).toString()).toContain('OTHER');
    const both = resolveConnection({}, { TEMPORAL_TLS_CERT: other, TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_KEY: key });
    expect(Buffer.from(both.tls!.clientCertPair!.crt).toString()).not.toContain('OTHER');
    // And a flag wins over both.
    const flag = resolveConnection({ tlsCertPath: other }, { TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_KEY: key });
    expect(Buffer.from(flag.tls!.clientCertPair!.crt).toString()).toContain('OTHER');
  });

  test('an API key turns TLS on (system CAs) and is never part of the summary', () => {
    const c = resolveConnection({}, { TEMPORAL_ADDRESS: 'ns.a1b2c.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.a1b2c', TEMPORAL_API_KEY: API_KEY });
    expect(c.tls).toEqual({});
    expect(c.apiKey).toBe(API_KEY);
    expect(c.summary).toBe('ns.a1b2c.tmprl.cloud:7233, namespace ns.a1b2c, TLS, API key');
    expect(connectionOptions(c)).toEqual({ address: 'ns.a1b2c.tmprl.cloud:7233', tls: {}, apiKey: API_KEY });
  });

  test('an API key with TLS turned off explicitly: plaintext, the key still sent', () => {
    for (const [flags, env] of [[{}, { TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' }], [{ tls: false, apiKey: API_KEY }, {}]] as const) {
      const c = resolveConnection(flags, env);
      expect(connectionOptions(c)).toEqual({ address: '127.0.0.1:7233', tls: false, apiKey: API_KEY });
      expect(c.summary).toBe('127.0.0.1:7233, namespace default, plaintext, API key');
    }
  });

  test('a missing file: the variable (or flag) and the path are named', () => {
    const missing = join(dir, 'nope.pem');
    expect(errorOf(() => resolveConnection({}, { TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing })).message).toBe(
      `TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read the CA certificate ${missing} (ENOENT)`,
    );
    expect(errorOf(() => resolveConnection({ tlsKeyPath: missing, tlsCertPath: cert }, {})).message).toBe(`--tls-key-path: cannot read the client key ${missing} (ENOENT)`);
    expect(errorOf(() => resolveConnection({ tlsCaPath: dir }, {})).message).toBe(`--tls-ca-path: the CA certificate ${dir} is not a regular file`);
  });

  test('a file that is not PEM is refused without quoting it', () => {
    const file = join(dir, 'key.der');
    writeFileSync(file, 'SECRET-KEY-BYTES');
    const e = errorOf(() => resolveConnection({}, { TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_CLIENT_KEY_PATH: file }));
    expect(e.message).toBe(`TEMPORAL_TLS_CLIENT_KEY_PATH: the client key ${file} is not a PEM file (no -----BEGIN line)`);
  });

  test('a certificate without its key, or a key without its certificate', () => {
    expect(errorOf(() => resolveConnection({}, { TEMPORAL_TLS_CLIENT_CERT_PATH: cert })).message).toBe(
      'TEMPORAL_TLS_CLIENT_CERT_PATH is set but no client key: set --tls-key-path or TEMPORAL_TLS_CLIENT_KEY_PATH',
    );
    expect(errorOf(() => resolveConnection({ tlsKeyPath: key }, {})).message).toBe(
      '--tls-key-path is set but no client certificate: set --tls-cert-path or TEMPORAL_TLS_CLIENT_CERT_PATH',
    );
  });

  test('TLS turned off while TLS files are given is contradictory', () => {
    expect(errorOf(() => resolveConnection({ tls: false }, { TEMPORAL_TLS_CA: ca })).message).toBe('--tls turns TLS off, but TLS settings are given: TEMPORAL_TLS_CA');
  });

  test('malformed values name their source; the API key is never quoted', () => {
    const e = errorOf(() =>
      resolveConnection({}, { TEMPORAL_ADDRESS: 'https://temporal.internal:7233', TEMPORAL_TLS: 'yes', TEMPORAL_NAMESPACE: '  ', TEMPORAL_API_KEY: 'two words-secret' }),
    );
    expect(e.message).toContain('TEMPORAL_ADDRESS must be host:port (no scheme), e.g. temporal.example.com:7233 (got "https://temporal.internal:7233")');
    expect(e.message).toContain('TEMPORAL_TLS must be true or false (got "yes")');
    expect(e.message).toContain('TEMPORAL_NAMESPACE must not be empty');
    expect(e.message).toContain('TEMPORAL_API_KEY must be printable ASCII without spaces');
    expect(e.message).not.toContain('secret');
  });

  test('host verification cannot be turned off; the message points at the server name instead', () => {
    expect(errorOf(() => resolveConnection({}, { TEMPORAL_TLS: 'true', TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).message).toMatch(
      /^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: host name verification cannot be turned off .*set --tls-server-name \(TEMPORAL_TLS_SERVER_NAME\)/,
    );
  });
});

describe('the CLI and the worker', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('TEMPORAL_') && !(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    setConnectionFlags({});
    process.exitCode = undefined;
    vi.restoreAllMocks();
  });

  async function run(...args: string[]): Promise<{ code: number | undefined; stderr: string }> {
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    await main(['node', 'ab-upgrade', ...args]);
    return { code: process.exitCode as number | undefined, stderr: err.mock.calls.map((c) => c.join(' ')).join('\n') };
  }

  test('a bad certificate path stops a command before it connects, naming the flag; the API key is not printed', async () => {
    process.env.TEMPORAL_API_KEY = API_KEY;
    const missing = join(dir, 'missing.pem');
    const r = await run('status', 'web-1', '--tls-cert-path', missing, '--tls-key-path', key);
    expect(r).toEqual({ code: 1, stderr: `ab-upgrade: --tls-cert-path: cannot read the client certificate ${missing} (ENOENT)` });
  });

  test('global flags override the variables for every command (the failure names where it tried)', async () => {
    process.env.TEMPORAL_NAMESPACE = 'from-env';
    process.env.TEMPORAL_ADDRESS = '127.0.0.1:2';
    // Nothing listens on port 1: the message shows the settings the command used.
    const r = await run('--address', '127.0.0.1:1', 'list', '--namespace', 'from-flag', '--api-key', API_KEY, '--no-tls');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ab-upgrade: cannot reach the Temporal server at 127\.0\.0\.1:1, namespace from-flag, plaintext, API key \(/);
    expect(r.stderr).not.toContain(API_KEY);
    expect(configuredConnection().namespace).toBe('from-flag');
  });

  test('the worker reads the same settings and refuses bad ones before connecting', async () => {
    process.env.TEMPORAL_TLS_CLIENT_CERT_PATH = cert;
    await expect(runWorker()).rejects.toThrow('TEMPORAL_TLS_CLIENT_CERT_PATH is set but no client key: set --tls-key-path or TEMPORAL_TLS_CLIENT_KEY_PATH');
  });

  test('a worker that cannot connect says where it tried', async () => {
    process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
    process.env.TEMPORAL_NAMESPACE = 'ops';
    await expect(runWorker()).rejects.toThrow(/^cannot reach the Temporal server at 127\.0\.0\.1:1, namespace ops, plaintext \(.*\); start it with \.\/temporal-dev\.sh start$/s);
  });
});
