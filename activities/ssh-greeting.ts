// Is sshd itself answering? A port forward or a NAT in front of a booting host accepts TCP
// connections long before sshd runs and then says nothing, so a TCP connect proves nothing.
// sshd's first words are its identification line ("SSH-2.0-…"), sent as soon as it accepts:
// once they arrive the host is up, even if it is still too busy booting to finish a key
// exchange quickly.
import { connect, type Socket } from 'node:net';

export class NoGreetingError extends Error {
  override name = 'NoGreetingError';
}

/**
 * Connects and waits up to `timeoutMs` for the server's first bytes. Resolves with the socket,
 * those bytes put back unread (an SSH client takes it over with `sock`); rejects, with the
 * socket destroyed, on a timeout, an error, a close or an abort.
 */
export function awaitSshGreeting(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    const fail = (why: string) => {
      cleanup();
      sock.destroy();
      reject(new NoGreetingError(`${host}:${port}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no SSH greeting within ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => fail('aborted');
    const onError = (e: Error) => fail(e.message);
    const onClose = () => fail('connection closed before the SSH greeting');
    const onData = (chunk: Buffer) => {
      cleanup();
      // Until the SSH client attaches its own handlers, an error must not go unhandled.
      sock.on('error', () => {});
      sock.pause();
      sock.unshift(chunk);
      resolve(sock);
    };
    function cleanup() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.off('error', onError).off('close', onClose).off('data', onData);
    }
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', onError).on('close', onClose).on('data', onData);
  });
}
