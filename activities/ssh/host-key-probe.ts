import ssh2 from 'ssh2';
import { fingerprintOfKeyBlob } from '../../lib/hostkey.js';
import type { SshTarget } from './target.js';

const { Client } = ssh2;

/** The fingerprint of the host key a server presents (connects, never authenticates); null if unreachable. */
export function presentedHostKey(target: SshTarget, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const c = new Client();
    let fp: string | null = null;
    const done = () => {
      clearTimeout(t);
      try {
        c.end();
      } catch {
        /* gone */
      }
      resolve(fp);
    };
    const t = setTimeout(done, timeoutMs);
    c.on('error', done);
    c.on('close', done);
    try {
      c.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        readyTimeout: timeoutMs,
        hostVerifier: (key: Buffer): boolean => {
          fp = fingerprintOfKeyBlob(key);
          return false;
        },
      });
    } catch {
      done();
    }
  });
}
