// A free TCP port on 127.0.0.1 (bind to 0, read it, close), for the test sshd, the test
// Temporal server and the lab VM's SSH forward. The one lib module with I/O; never imported by
// workflows.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
