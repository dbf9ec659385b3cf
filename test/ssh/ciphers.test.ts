// Cipher preference (SshTarget.ciphers) against a real sshd that allows one cipher only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectForBulk } from '../../activities/receive-image.js';
import { SshHost } from '../../activities/ssh.js';
import { sshdProfile, startSshd, type Sshd } from '../helpers/sshd.js';

const T = 60_000;
let chachaOnly: Sshd;
beforeAll(async () => {
  chachaOnly = await startSshd({ extraConfig: ['Ciphers chacha20-poly1305@openssh.com'] });
}, T);
afterAll(async () => {
  await chachaOnly?.stop();
}, T);

describe('cipher preference', () => {
  it('offers only the listed ciphers', { timeout: T }, async () => {
    await expect(SshHost.connect(chachaOnly.target({ ciphers: ['aes128-gcm@openssh.com'] }))).rejects.toThrow();
    const h = await SshHost.connect(chachaOnly.target({ ciphers: ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'] }));
    try {
      expect((await h.exec(['echo', 'ok'])).stdout).toBe('ok\n');
    } finally {
      h.close();
    }
  });

  it('opens the bulk connection with a cipher the host accepts, whatever its CPU', { timeout: T }, async () => {
    const h = await SshHost.connect(chachaOnly.target());
    const profile = sshdProfile(chachaOnly);
    const bulk = await connectForBulk(h, profile);
    try {
      expect((await bulk.exec(['sh', '-c', 'head -c 1000000 | wc -c'], { stdin: Buffer.alloc(1_000_000, 7) })).stdout.trim()).toBe('1000000');
    } finally {
      bulk.close();
      h.close();
    }
  });
});
