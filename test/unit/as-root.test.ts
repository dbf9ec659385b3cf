// scripts/lib/as-root.sh, which the README's two commands source: as root the script goes on;
// as another user with no sudo it stops before doing anything, saying it needs root.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';

const AS_ROOT = path.resolve('scripts/lib/as-root.sh');
const dir = mkdtempSync(path.join(tmpdir(), 'ab-as-root-'));
chmodSync(dir, 0o755);
const script = path.join(dir, 'needs-root.sh');
writeFileSync(script, `#!/bin/bash\nset -euo pipefail\nsource ${AS_ROOT}\necho "went on as $(id -u) with $*"\n`, { mode: 0o755 });
// A PATH with what the script uses but no sudo, whether or not this machine has one.
const bin = path.join(dir, 'bin');
mkdirSync(bin);
for (const tool of ['id', 'basename']) symlinkSync(spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), path.join(bin, tool));
const env = { PATH: bin };

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;

describe('scripts/lib/as-root.sh', () => {
  test.runIf(isRoot)('as root: the script goes on with its arguments', () => {
    const r = spawnSync(script, ['a', 'b c'], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('went on as 0 with a b c\n');
    expect(r.status).toBe(0);
  });

  test.runIf(isRoot)('as another user without sudo: stops before the script does anything, saying why', () => {
    const setpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim();
    const r = spawnSync(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', script, 'a'], { encoding: 'utf8', env });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^needs-root\.sh: needs root .* sudo is not installed; run it as root\n$/);
    expect(r.status).toBe(1);
  });
});
