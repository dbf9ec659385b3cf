// A TCP forwarder on 127.0.0.1 standing for the network between host and controller: it counts
// the bytes it carried from the target back to the client, and can change one of them (a fault
// on the wire that only the host's digest can catch).
import { createConnection, createServer } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Bytes carried from the target to clients so far. */
  bytes(): number;
  connections(): number;
  stop(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, opts: { flipAt?: number } = {}): Promise<TcpProxy> {
  let carried = 0;
  let connections = 0;
  const open = new Set<{ destroy(): void }>();
  const server = createServer((client) => {
    connections++;
    open.add(client);
    client.on('close', () => open.delete(client));
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const fail = () => (client.destroy(), upstream.destroy());
    client.on('error', fail);
    upstream.on('error', fail);
    upstream.on('data', (c: Buffer) => {
      const at = opts.flipAt;
      if (at !== undefined && carried <= at && at < carried + c.length) c[at - carried]! ^= 0xff;
      carried += c.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    bytes: () => carried,
    connections: () => connections,
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const c of open) c.destroy();
      }),
  };
}
