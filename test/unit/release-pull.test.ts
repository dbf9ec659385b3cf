// The controller's listener for a host that pulls the image (release.pull), on loopback: only a
// client with the attempt's token gets the bytes, others are dropped without ending the wait,
// and every way it ends settles `sent`.
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { listenForPull, PullNotConnectedError, pullEndpoint } from '../../activities/release-pull.js';

const LOOPBACK = { listenAddress: '127.0.0.1', listenPort: 0 };

/** Connects, sends `first`, and collects what comes back until the server ends or drops the connection. */
function client(port: number, first: string): Promise<{ data: Buffer; reset: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let reset = false;
    const s: Socket = createConnection({ host: '127.0.0.1', port }, () => s.write(first));
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => (reset = true));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), reset }));
    s.on('end', () => s.end());
  });
}

describe('listenForPull', () => {
  it('drops a client with a wrong token, then serves the one with the token and stops listening', async () => {
    const image = randomBytes(3 << 20);
    const l = await listenForPull(LOOPBACK, () => Readable.from([image]));
    try {
      const wrong = await client(l.port, `${'x'.repeat(l.token.length)}\n`);
      expect(wrong.data.length).toBe(0);
      const right = await client(l.port, `${l.token}\n`);
      expect(right.data.equals(image)).toBe(true);
      await expect(l.sent).resolves.toBeUndefined();
      const late = await client(l.port, `${l.token}\n`).catch(() => null);
      expect(late === null || late.data.length === 0).toBe(true);
    } finally {
      l.close();
    }
  });

  it('a token with anything after it is refused too', async () => {
    const l = await listenForPull(LOOPBACK, () => Readable.from([Buffer.from('image')]));
    try {
      expect((await client(l.port, `${l.token}\nmore`)).data.length).toBe(0);
      expect((await client(l.port, `${l.token}\n`)).data.toString()).toBe('image');
    } finally {
      l.close();
    }
  });

  it('a client that says nothing is dropped after the token timeout', async () => {
    const l = await listenForPull(LOOPBACK, () => Readable.from([Buffer.from('image')]), { tokenTimeoutMs: 300 });
    try {
      const t = Date.now();
      const silent = await client(l.port, '');
      expect(silent.data.length).toBe(0);
      expect(Date.now() - t).toBeLessThan(10_000);
    } finally {
      l.close();
    }
  });

  it('closed before the host connected: sent rejects with PullNotConnectedError naming the port', async () => {
    const l = await listenForPull(LOOPBACK, () => Readable.from([Buffer.from('image')]));
    l.close();
    const e = await l.sent.then(() => null, (x: Error) => x);
    expect(e).toBeInstanceOf(PullNotConnectedError);
    expect(e!.message).toBe(`release.pull: the host did not connect to the controller's port ${l.port}`);
  });

  it('a failure reading the image on the controller ends the connection and rejects sent with it', async () => {
    async function* failing() {
      yield Buffer.from('first part');
      throw new Error('the image changed after it was verified');
    }
    const l = await listenForPull(LOOPBACK, () => Readable.from(failing()));
    try {
      const got = await client(l.port, `${l.token}\n`);
      expect(got.data.toString()).toBe('first part');
      await expect(l.sent).rejects.toThrow('the image changed after it was verified');
    } finally {
      l.close();
    }
  });

  it('a port already taken: a clear error naming release.pull, the address and the port', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(listenForPull({ listenAddress: '127.0.0.1', listenPort: port }, () => Readable.from([]))).rejects.toThrow(
        `release.pull: cannot listen on 127.0.0.1 port ${port} on the controller: EADDRINUSE`,
      );
    } finally {
      taken.close();
    }
  });
});

describe('pullEndpoint', () => {
  it('the listening address and port unless the profile says how the host reaches them', () => {
    expect(pullEndpoint({ listenAddress: '10.0.0.1', listenPort: 0 }, 41234)).toEqual({ address: '10.0.0.1', port: 41234 });
    expect(pullEndpoint({ listenAddress: '0.0.0.0', listenPort: 7070, connectAddress: 'ctl.example.net', connectPort: 17070 }, 7070)).toEqual({ address: 'ctl.example.net', port: 17070 });
  });
});
