// TLS in front of the run's plaintext Temporal dev server, for the connection tests:
//   makePki         a CA, a server certificate for SERVER_NAME, a client certificate, and a
//                   second CA that signed neither (files made with `openssl` in a directory);
//   startTlsProxy   terminates TLS (client certificate required, ALPN h2) and pipes the bytes to
//                   the dev server, so the worker's and the client's gRPC reach it through mTLS;
//   startAuthRecorder  a TLS HTTP/2 endpoint that records each call's `authorization` header
//                   and answers every call UNAUTHENTICATED (it serves nothing).
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createSecureServer, type ServerHttp2Session } from 'node:http2';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The name in the server certificate; clients reach 127.0.0.1 and override the name to this. */
export const SERVER_NAME = 'temporal.test';

export interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed none of the certificates above. */
  otherCaCert: string;
}

const openssl = (args: string[]) => execFileP('openssl', args, { timeout: 30_000 });

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', key, '-out', cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

async function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }, ext: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', csr]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', extFile, '-out', cert]);
  return { cert, key };
}

/** Certificates for one test file, in `dir`. */
export async function makePki(dir: string): Promise<Pki> {
  const [ca, other] = await Promise.all([makeCa(dir, 'test-ca'), makeCa(dir, 'other-ca')]);
  const [server, client] = await Promise.all([
    makeLeaf(dir, 'server', ca, `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`),
    makeLeaf(dir, 'client', ca, 'extendedKeyUsage=clientAuth'),
  ]);
  return { dir, caCert: ca.cert, serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key, otherCaCert: other.cert };
}

export interface TlsProxy {
  address: string;
  /** Connections that completed the handshake with a client certificate of the CA. */
  authorized: number;
  /** Handshakes the proxy refused, with the reason. */
  refused: string[];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (a free port) and pipes every mTLS connection to `upstream` (host:port). */
export async function startTlsProxy(pki: Pki, upstream: string): Promise<TlsProxy> {
  const [host, port] = [upstream.slice(0, upstream.lastIndexOf(':')), Number(upstream.slice(upstream.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const server = createServer(
    {
      key: readFileSync(pki.serverKey),
      cert: readFileSync(pki.serverCert),
      ca: readFileSync(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (tlsSocket: TLSSocket) => {
      proxy.authorized += tlsSocket.authorized ? 1 : 0;
      const up = connect(port, host);
      track(up);
      tlsSocket.pipe(up).pipe(tlsSocket);
      tlsSocket.on('error', () => up.destroy());
      up.on('error', () => tlsSocket.destroy());
      tlsSocket.on('close', () => up.destroy());
      up.on('close', () => tlsSocket.destroy());
    },
  );
  server.on('connection', track);
  server.on('tlsClientError', (e) => proxy.refused.push(e.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: TlsProxy = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    authorized: 0,
    refused: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}

export interface AuthRecorder {
  address: string;
  /** The `authorization` header of each call received (undefined: the call had none). */
  authorizations: (string | undefined)[];
  close(): Promise<void>;
}

/** A TLS HTTP/2 endpoint (server certificate of `pki`, no client certificate asked) that refuses every gRPC call. */
export async function startAuthRecorder(pki: Pki): Promise<AuthRecorder> {
  const server = createSecureServer({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ALPNProtocols: ['h2'] });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  const recorder: AuthRecorder = {
    address: '',
    authorizations: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('stream', (stream, headers) => {
    const auth = headers.authorization;
    recorder.authorizations.push(Array.isArray(auth) ? auth.join(',') : auth);
    // A trailers-only gRPC response: status 16 (UNAUTHENTICATED).
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'recorded' }, { endStream: true });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  recorder.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return recorder;
}
