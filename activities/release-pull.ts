// The image delivered by the host pulling it (release.pull): the controller listens for one
// plain TCP connection per attempt and sends the verified image to the first client that
// presents the attempt's one-time token; the host opens that connection itself with bash's
// /dev/tcp. Nothing encrypts the bytes, so neither end spends CPU on a cipher; the host's digest
// of what arrived, against the verified digest it got over SSH, guards them on the wire.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { shQuote } from '../lib/quote.js';
import type { ImageRelease } from '../lib/profile.js';
import type { ExecResult, SshHost } from './ssh.js';

/** The receiving script's exit status when the host cannot connect to the controller's listener. */
export const PULL_CONNECT_EXIT = 87;
/** … and when the host has no bash (whose /dev/tcp opens the connection). */
export const PULL_NO_BASH_EXIT = 88;

/** The host never connected (or never presented the token) before the listener closed. */
export class PullNotConnectedError extends Error {
  override name = 'PullNotConnectedError';
}

/** The host could not open its connection to the controller (address, port, a firewall). */
export class PullConnectError extends Error {
  override name = 'PullConnectError';
}

export interface PullListener {
  /** The port the controller listens on. */
  port: number;
  /** What the host must send first, then a newline: given to it over SSH, never logged or returned. */
  token: string;
  /** Settles once the image was sent to the client with the token; rejects if sending failed or the listener closed first. */
  sent: Promise<void>;
  /** Stops listening, and ends a transfer still running. */
  close(): void;
}

export type PullConfig = NonNullable<ImageRelease['pull']>;

/**
 * Listens on the profile's address and port for the host's one connection. A client that does
 * not send the token within `tokenTimeoutMs`, or sends anything else, is dropped and the
 * listener keeps waiting; the first that sends it gets `source()` and the listener closes.
 */
export async function listenForPull(pull: Pick<PullConfig, 'listenAddress' | 'listenPort'>, source: () => Readable, opts: { tokenTimeoutMs?: number } = {}): Promise<PullListener> {
  const token = randomBytes(24).toString('base64url');
  const want = Buffer.from(`${token}\n`);
  let served: Socket | null = null;
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const sent = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  // The caller awaits it; this keeps an early rejection (closed before a connection) from counting as unhandled.
  sent.catch(() => {});

  const server = createServer((sock) => {
    sock.on('error', () => {});
    if (served) return void sock.destroy();
    sock.setTimeout(opts.tokenTimeoutMs ?? 30_000, () => sock.destroy());
    let got = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length < want.length) return;
      sock.off('data', onData);
      if (served || got.length !== want.length || !timingSafeEqual(got, want)) return void sock.destroy();
      served = sock;
      sock.setTimeout(0);
      server.close();
      send(sock, source(), settle);
    };
    sock.on('data', onData);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(pull.listenPort, pull.listenAddress, () => (server.off('error', reject), resolve()));
  }).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`release.pull: cannot listen on ${pull.listenAddress} port ${pull.listenPort} on the controller: ${e.code ?? e.message}`);
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    token,
    sent,
    close() {
      server.close();
      // A transfer whose every byte was handed over ends by itself (the host closes its end).
      if (served) {
        if (!served.writableEnded) served.destroy();
      } else settle.reject(new PullNotConnectedError(`release.pull: the host did not connect to the controller's port ${port}`));
    },
  };
}

/** Sends `src` to the host: settled when all of it was handed to the kernel, or when either side failed. */
function send(sock: Socket, src: Readable, settle: { resolve: () => void; reject: (e: Error) => void }) {
  src.on('error', (e) => {
    sock.destroy();
    settle.reject(e);
  });
  sock.on('error', (e) => settle.reject(e));
  sock.on('finish', settle.resolve);
  sock.on('close', () => {
    src.destroy();
    settle.reject(new Error('release.pull: the connection to the host closed before the whole image was sent'));
  });
  // The host sends nothing more; reading on lets its end of the connection close the socket.
  sock.resume();
  src.pipe(sock);
}

/** Where the host connects: the profile's connect address and port, else what the controller listens on. */
export function pullEndpoint(pull: PullConfig, listeningPort: number): { address: string; port: number } {
  return { address: pull.connectAddress ?? pull.listenAddress, port: pull.connectPort ?? listeningPort };
}

/** How both ends of one pull went, and where the host was told to connect. */
export interface PullOutcome {
  address: string;
  port: number;
  received: PromiseSettledResult<ExecResult>;
  sent: PromiseSettledResult<void>;
}

/**
 * Runs `body` on the host (over `h`, with `args`) reading `source()`, which the controller
 * serves for this one run; settles once both ends have.
 */
export async function runPulled(h: SshHost, pull: PullConfig, source: () => Readable, body: string, args: string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<PullOutcome> {
  const listener = await listenForPull(pull, source);
  const { address, port } = pullEndpoint(pull, listener.port);
  const host = h.script(pullScript(body), [...args, address, String(port)], { stdin: `${listener.token}\n`, ...opts }).finally(() => listener.close());
  const [received, sent] = await Promise.allSettled([host, listener.sent]);
  return { address, port, received, sent };
}

/**
 * `body` run by bash with the controller's stream as its stdin. Its own arguments come first;
 * the last two are the address and port to connect to. The token arrives on the script's stdin
 * (over SSH), so it never shows in the host's process list.
 */
export function pullScript(body: string): string {
  const inner = `set -eu
addr=\${@: -2:1}; port=\${@: -1}; set -- "\${@:1:$#-2}"
IFS= read -r token
exec 3<>"/dev/tcp/$addr/$port" || exit ${PULL_CONNECT_EXIT}
printf '%s\\n' "$token" >&3
exec 0<&3 3<&-
${body}`;
  return `command -v bash >/dev/null || { echo "the host has no bash, whose /dev/tcp release.pull needs" >&2; exit ${PULL_NO_BASH_EXIT}; }
exec bash -c ${shQuote(inner)} ab-upgrade "$@"`;
}
