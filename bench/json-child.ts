// A benchmark part run in its own process (so its RSS and CPU are its own): a TypeScript script
// started through bin/run-ts.js whose last line on stdout is its figures as JSON; its progress
// goes to our stderr.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs `script` (absolute path) with `args`; resolves with its last stdout line parsed, rejects naming `what`. */
export function runJsonChild<T>(script: string, args: string[], what: string): Promise<T> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/run-ts.js'), script, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', rej);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1);
      if (code !== 0 || !line) return rej(new Error(`${what} exited ${code}`));
      res(JSON.parse(line) as T);
    });
  });
}
