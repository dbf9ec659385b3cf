// The CLI's --codec-key: any command reads the key files (before contacting the server), and
// codec-server needs them.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { main } from '../../client/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ab-cli-codec-'));
const saved = { key: process.env.AB_UPGRADE_CODEC_KEY, address: process.env.TEMPORAL_ADDRESS };
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const [k, v] of [['AB_UPGRADE_CODEC_KEY', saved.key], ['TEMPORAL_ADDRESS', saved.address]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

async function run(...args: string[]): Promise<{ code: number | undefined; stderr: string }> {
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  err.mockClear();
  await main(['node', 'ab-upgrade', ...args]);
  return { code: process.exitCode as number | undefined, stderr: err.mock.calls.map((c) => c.join(' ')).join('\n') };
}

describe('--codec-key', () => {
  test('a key file others may read stops any command before it contacts the server, naming the file', async () => {
    const file = join(dir, 'open.key');
    writeFileSync(file, randomBytes(32).toString('base64'));
    chmodSync(file, 0o644);
    // Nothing listens there: had the command tried to connect, the error would say so.
    process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
    for (const args of [['list', '--codec-key', file], ['--codec-key', file, 'status', 'web-1']]) {
      const r = await run(...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`ab-upgrade: codec key file ${file} is accessible by group or others (mode 0644); it must be readable by its owner only: chmod 600 ${file}`);
    }
    process.env.AB_UPGRADE_CODEC_KEY = file;
    expect((await run('list')).stderr).toMatch(/accessible by group or others/);
  });

  test('codec-server without a key says how to give one', async () => {
    delete process.env.AB_UPGRADE_CODEC_KEY;
    const r = await run('codec-server');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('ab-upgrade: codec-server needs the key files: --codec-key FILE or AB_UPGRADE_CODEC_KEY');
  });
});
