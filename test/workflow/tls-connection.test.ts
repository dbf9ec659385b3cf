// The worker's and the CLI's connections through mutual TLS, for real: certificates made with
// openssl, a TLS proxy (client certificate required) in front of the run's dev server, and the
// connection settings of lib/temporal-connection.ts. A worker (NativeConnection) and the CLI's
// client (connectClient) run a workflow through it; a client without a certificate is refused
// and one trusting another CA fails, both with the handshake's reason in the CLI's message. An API key reaches the server as
// `authorization: Bearer <key>` (observed by a TLS HTTP/2 endpoint that records the header).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { inject } from 'vitest';
import { connectClient } from '../../client/temporal.js';
import { runWorker } from '../../worker/main.js';
import { connectionOptions, resolveConnection, setConnectionFlags, type ConnectionFlags } from '../../lib/temporal-connection.js';
import { SERVER_NAME, makePki, startAuthRecorder, startTlsProxy, type AuthRecorder, type Pki, type TlsProxy } from '../helpers/tls.js';
import { greet } from './connection.workflows.js';

const dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-tls-'));
let pki: Pki;
let proxy: TlsProxy;
let recorder: AuthRecorder;
let bundle: WorkflowBundle;
const API_KEY = `test-api-key-${randomUUID()}`;

/** Settings as an operator would give them for the proxy: address, CA, server name, client certificate. */
const mtls = (): ConnectionFlags => ({
  address: proxy.address,
  tlsCaPath: pki.caCert,
  tlsServerName: SERVER_NAME,
  tlsCertPath: pki.clientCert,
  tlsKeyPath: pki.clientKey,
});

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // already installed in this process
  }
  const upstream = inject('temporalAddress') ?? process.env.TEMPORAL_TEST_ADDRESS;
  if (!upstream) throw new Error('no Temporal server: run through vitest.config.ts (globalSetup test/helpers/temporal.ts)');
  [pki, bundle] = await Promise.all([
    makePki(dir),
    bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./connection.workflows.ts', import.meta.url)), logger: new DefaultLogger('ERROR') }),
  ]);
  [proxy, recorder] = await Promise.all([startTlsProxy(pki, upstream), startAuthRecorder(pki)]);
});

afterEach(() => setConnectionFlags({}));

afterAll(async () => {
  await Promise.all([proxy?.close(), recorder?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('mutual TLS through a proxy that requires a client certificate', () => {
  test("a worker and the CLI's client run a workflow through it", async () => {
    const target = resolveConnection(mtls(), {});
    expect(target.summary).toBe(`${proxy.address}, namespace default, TLS with client certificate, own CA, server name ${SERVER_NAME}`);
    const native = await NativeConnection.connect(connectionOptions(target));
    setConnectionFlags(mtls());
    const client = await connectClient();
    try {
      const taskQueue = `tls-${randomUUID()}`;
      const worker = await Worker.create({ connection: native, namespace: target.namespace, taskQueue, workflowBundle: bundle });
      const result = await worker.runUntil(client.workflow.execute(greet, { taskQueue, workflowId: `tls-${randomUUID()}`, args: ['mtls'] }));
      expect(result).toBe('hello mtls');
      // The namespace is there, seen through the same connection.
      const ns = await client.workflowService.describeNamespace({ namespace: 'default' });
      expect(ns.namespaceInfo?.name).toBe('default');
    } finally {
      await client.connection.close();
      await native.close();
    }
    // The worker's and the client's connections both went through the proxy's mTLS.
    expect(proxy.authorized).toBeGreaterThanOrEqual(2);
  });

  test('a client without a certificate is refused', async () => {
    const refusedBefore = proxy.refused.length;
    const { tlsCertPath: _c, tlsKeyPath: _k, ...noCert } = mtls();
    const target = resolveConnection(noCert, {});
    await expect(Connection.connect({ ...connectionOptions(target), connectTimeout: '3s' })).rejects.toThrow();
    await expect(NativeConnection.connect(connectionOptions(target))).rejects.toThrow();
    expect(proxy.refused.length).toBeGreaterThan(refusedBefore);
    expect(proxy.refused.slice(refusedBefore).join('\n')).toMatch(/certificate/i);
    // The CLI's client says why.
    setConnectionFlags(noCert);
    const err = await connectClient().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/\(TLS handshake failed: tlsv13 alert certificate required\)$/);
  });

  test('trusting another CA fails, saying the certificate is not trusted', async () => {
    setConnectionFlags({ ...mtls(), tlsCaPath: pki.otherCaCert });
    const err = await connectClient().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(new RegExp(`^cannot reach the Temporal server at ${proxy.address.replace(/\./g, '\\.')}, namespace default, TLS with client certificate, own CA, server name ${SERVER_NAME} \\(`));
    // The SDK's client only times out; the message carries the handshake's own reason.
    expect(err?.message).toMatch(/\(TLS handshake failed: (unable to get local issuer certificate|unable to verify the first certificate|self-signed certificate in certificate chain)\)$/);
    const native = await NativeConnection.connect(connectionOptions(resolveConnection({ ...mtls(), tlsCaPath: pki.otherCaCert }, {}))).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(native?.message).toMatch(/certificate|UnknownIssuer/i);
    // `ab-upgrade worker` reports it like the CLI does.
    await expect(runWorker({ connection: resolveConnection({ ...mtls(), tlsCaPath: pki.otherCaCert }, {}) })).rejects.toThrow(
      /^cannot reach the Temporal server at .*server name temporal\.test \(TLS handshake failed: (unable to get local issuer certificate|unable to verify the first certificate|self-signed certificate in certificate chain)\)$/,
    );
  });
});

describe('API key', () => {
  test('reaches the server as "authorization: Bearer <key>" over TLS, from the client and the worker', async () => {
    const env = { TEMPORAL_ADDRESS: recorder.address, TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert, TEMPORAL_TLS_SERVER_NAME: SERVER_NAME };
    const target = resolveConnection({}, env);
    expect(target.tls).toBeDefined();

    const clientErr = await Connection.connect({ ...connectionOptions(target), connectTimeout: '5s' })
      .then(async (c) => {
        try {
          await c.workflowService.getSystemInfo({});
        } finally {
          await c.close();
        }
      })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    // The recorder refuses every call: connecting fails, after the header was sent.
    expect(clientErr).toBeInstanceOf(Error);
    expect(recorder.authorizations).toContain(`Bearer ${API_KEY}`);

    const seenBefore = recorder.authorizations.length;
    await NativeConnection.connect(connectionOptions(target)).then(
      (c) => c.close(),
      () => undefined,
    );
    expect(recorder.authorizations.slice(seenBefore)).toContain(`Bearer ${API_KEY}`);
    // Every call carried it.
    expect(recorder.authorizations.every((a) => a === `Bearer ${API_KEY}`)).toBe(true);
  });

  test("the CLI's client sends it too, and its error message does not contain it", async () => {
    setConnectionFlags({ address: recorder.address, apiKey: API_KEY, tlsCaPath: pki.caCert, tlsServerName: SERVER_NAME });
    const seenBefore = recorder.authorizations.length;
    const err = await connectClient().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^cannot reach the Temporal server at .*, TLS, own CA, server name temporal\.test, API key \(/);
    expect(err?.message).not.toContain(API_KEY);
    expect(recorder.authorizations.slice(seenBefore)).toContain(`Bearer ${API_KEY}`);
  });
});
