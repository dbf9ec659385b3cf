// The codec server over HTTP: Temporal's codec server protocol, CORS for the Web UI, errors.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { payloadToJson, startCodecServer, type RunningCodecServer } from '../../client/codec-server.js';
import { AesGcmCodec } from '../../lib/codec.js';

const UI = 'http://127.0.0.1:8233';
const dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-codec-server-'));
let server: RunningCodecServer;
let codec: AesGcmCodec;

beforeAll(async () => {
  const keyFile = join(dir, 'codec.key');
  writeFileSync(keyFile, randomBytes(32).toString('base64'));
  chmodSync(keyFile, 0o600);
  codec = AesGcmCodec.fromFiles([keyFile]);
  server = await startCodecServer({ codec, port: 0, corsOrigins: [UI] });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(server.url + path, { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers } });

describe('codec server', () => {
  const plain = { payloads: [{ metadata: { encoding: b64('json/plain') }, data: b64('{"host":"marker-77.example.org"}') }] };

  test('encode then decode gives the payloads back; the encoded ones hold no plaintext; any prefix before /encode works', async () => {
    const enc = await post('/default/encode', JSON.stringify(plain), { Origin: UI });
    expect(enc.status).toBe(200);
    expect(enc.headers.get('access-control-allow-origin')).toBe(UI);
    expect(enc.headers.get('content-type')).toBe('application/json');
    const encoded = (await enc.json()) as typeof plain;
    expect(encoded.payloads).toHaveLength(1);
    expect(Buffer.from(encoded.payloads[0]!.metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
    expect(Buffer.from(encoded.payloads[0]!.data, 'base64').toString()).not.toContain('marker-77');

    const dec = await post('/decode', JSON.stringify(encoded));
    expect(dec.status).toBe(200);
    expect(await dec.json()).toEqual(plain);
    // What the worker's codec wrote decodes here too (the same codec, reached over HTTP).
    const [fromWorker] = await codec.encode([{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"x"') }]);
    const viaHttp = await post('/decode', JSON.stringify({ payloads: [payloadToJson(fromWorker!)] }));
    expect(((await viaHttp.json()) as typeof plain).payloads[0]!.data).toBe(b64('"x"'));
  });

  test('CORS preflight from the UI origin: 204 with the methods and headers the UI sends', async () => {
    const res = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
  });

  test('another origin is refused (403, no CORS headers)', async () => {
    const res = await post('/decode', JSON.stringify(plain), { Origin: 'https://evil.example' });
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } });
    expect(pre.status).toBe(403);
  });

  test('400 on a body that is not JSON or not Payloads, or a payload it cannot decrypt', async () => {
    for (const [body, message] of [
      ['{"payloads": [', /not JSON/],
      ['{"payloads": {}}', /payloads must be an array/],
      ['{"payloads": [{"metadata": {"encoding": "***"}}]}', /payloads\[0\]\.metadata\.encoding must be a base64 string/],
      ['{"payloads": [{"data": 5}]}', /payloads\[0\]\.data must be a base64 string/],
    ] as const) {
      const res = await post('/decode', body);
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    }
    const forged = { payloads: [{ metadata: { encoding: b64('binary/encrypted'), 'encryption-cipher': b64('AES-256-GCM'), 'encryption-key-id': b64('0000000000000000') }, data: b64('x'.repeat(40)) }] };
    const res = await post('/decode', JSON.stringify(forged));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^cannot decode: payload encrypted with codec key "0000000000000000", which is not among the configured keys/);
  });

  test('404 for other paths, 405 for other methods', async () => {
    expect((await post('/other', '{}')).status).toBe(404);
    const get = await fetch(`${server.url}/decode`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
  });

  test('an empty list and an empty body give an empty list', async () => {
    for (const body of ['{"payloads": []}', '{}']) {
      const res = await post('/encode', body);
      expect(await res.json()).toEqual({ payloads: [] });
    }
  });
});
