// The codec server: lets the Temporal Web UI (and `temporal workflow show --codec-endpoint`)
// show histories whose payloads the codec encrypted. Temporal's codec server protocol:
//   POST …/encode and POST …/decode, body and answer {"payloads":[{"metadata":{"k":"<base64>"},"data":"<base64>"}]}
// (Payloads as protobuf JSON); only the last path segment counts, so the endpoints may be
// mounted under any prefix, e.g. /<namespace>/decode. The X-Namespace header the UI sends is
// accepted and not needed (one key set serves every namespace).
//
// The browser calls it from the page of the UI, so it answers CORS preflights for the allowed
// UI origins; a request from any other origin is refused (403). It listens on 127.0.0.1 only by
// default: whoever can reach /decode can read every history.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** The Web UI of `temporal server start-dev` (and ./temporal-dev.sh), under both names of the loopback host. */
export const DEFAULT_UI_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233'];
/** Larger request bodies are refused (413); Temporal limits a single payload to 2 MB. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Web UI origins allowed to call it (scheme://host[:port], no path). */
  corsOrigins?: string[];
}

class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The request handler (exported for servers that mount it themselves). */
export function codecRequestHandler(o: CodecServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const origins = new Set((o.corsOrigins ?? DEFAULT_UI_ORIGINS).map((u) => u.replace(/\/+$/, '')));
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin)) return reply(res, 403, { error: `origin ${origin} is not allowed (allowed: ${[...origins].join(', ')})` });
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    const action = new URL(req.url ?? '/', 'http://codec').pathname.split('/').filter(Boolean).pop();
    if (action !== 'encode' && action !== 'decode') return reply(res, 404, { error: 'not found: POST /encode or /decode' });
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      return reply(res, 405, { error: `${req.method} not allowed: POST /encode or /decode` });
    }
    readBody(req)
      .then(async (body) => {
        const payloads = parsePayloads(body);
        let out: Payload[];
        try {
          out = action === 'encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
        } catch (e) {
          throw new BadRequest(`cannot ${action}: ${(e as Error).message}`);
        }
        reply(res, 200, { payloads: out.map(payloadToJson) });
      })
      .catch((e: unknown) => reply(res, e instanceof BadRequest ? e.status : 500, { error: (e as Error).message }));
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit the answer goes out at once; the rest of the body is read and dropped.
      if (size > MAX_BODY_BYTES) reject(new BadRequest(`request body larger than ${MAX_BODY_BYTES} bytes`, 413));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function base64Field(v: unknown, where: string): Buffer {
  if (typeof v !== 'string' || !BASE64.test(v)) throw new BadRequest(`${where} must be a base64 string`);
  return Buffer.from(v, 'base64');
}

/** {"payloads":[...]} as protobuf JSON → Payloads; a BadRequest naming the first thing wrong. */
function parsePayloads(body: string): Payload[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new BadRequest('the body is not JSON: {"payloads":[{"metadata":{...},"data":"<base64>"}]}');
  }
  const list = (json as { payloads?: unknown } | null)?.payloads ?? [];
  if (!Array.isArray(list)) throw new BadRequest('payloads must be an array');
  return list.map((p: unknown, i): Payload => {
    if (!p || typeof p !== 'object') throw new BadRequest(`payloads[${i}] must be an object`);
    const { metadata = {}, data = '' } = p as { metadata?: unknown; data?: unknown };
    if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw new BadRequest(`payloads[${i}].metadata must be an object`);
    return {
      metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, base64Field(v, `payloads[${i}].metadata.${k}`)])),
      data: base64Field(data, `payloads[${i}].data`),
    };
  });
}

/** A Payload as protobuf JSON (bytes as base64). */
export function payloadToJson(p: Payload): { metadata: Record<string, string>; data: string } {
  const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');
  return { metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])), data: b64(p.data) };
}

export interface RunningCodecServer {
  server: Server;
  /** http://host:port of the listening server. */
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port (port 0: any free port) until close(). */
export async function startCodecServer(o: CodecServerOptions & { port: number; host?: string }): Promise<RunningCodecServer> {
  const server = createServer(codecRequestHandler(o));
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
