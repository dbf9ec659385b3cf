// A fault between controller and host: an sshd that runs every command through a wrapper which,
// for the install's receiving script only (the one whose text holds `tee -p`), flips one byte of its
// stdin at a given offset. Whatever unpacks or writes the stream takes it without complaint; only
// the host's digest of what arrived can tell.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type Sshd } from './sshd-process.js';

export function startCorruptingSshd(identityFile: string, tmp: string, offset: number): Promise<Sshd> {
  const flip = join(tmp, 'flip.cjs');
  writeFileSync(
    flip,
    `let at = 0; const AT = ${offset};
process.stdin.on('data', (c) => { if (at <= AT && AT < at + c.length) c[AT - at] ^= 0xff; at += c.length;
  if (!process.stdout.write(c)) { process.stdin.pause(); process.stdout.once('drain', () => process.stdin.resume()); } });
process.stdin.on('end', () => process.stdout.end());\n`,
  );
  const wrapper = join(tmp, 'corrupt-stream.sh');
  writeFileSync(wrapper, `#!/bin/sh\ncase $SSH_ORIGINAL_COMMAND in\n  *'tee -p'*) ${process.execPath} ${flip} | sh -c "$SSH_ORIGINAL_COMMAND" ;;\n  *) exec sh -c "$SSH_ORIGINAL_COMMAND" ;;\nesac\n`);
  chmodSync(wrapper, 0o755);
  return startSshd({ identityFile, extraConfig: [`ForceCommand ${wrapper}`] });
}
