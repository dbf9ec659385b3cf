// `ab-upgrade rollback <host-or-profile>` validates its profile like `upgrade` does (exit 2),
// before contacting the server, and validates again a profile taken from a host's last workflow.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { main, rollbackProfile } from '../../client/cli.js';
import { freePort } from '../../lib/free-port.js';
import { parseProfile, ProfileError, profileFileContent, type Profile } from '../../lib/profile.js';

const dir = mkdtempSync(join(tmpdir(), 'ab-cli-rollback-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = (): Profile =>
  parseProfile({
    name: 'web-1',
    host: '192.0.2.10',
    auth: { identityFile: '/nonexistent/id_ed25519' },
    hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie' },
  });

function writeProfile(name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(content));
  return file;
}

async function problemsOf(p: Promise<unknown>): Promise<string[]> {
  const e = await p.catch((err: unknown) => err);
  expect(e).toBeInstanceOf(ProfileError);
  return (e as ProfileError).problems;
}

describe('rollbackProfile', () => {
  const never = vi.fn(async () => good());
  afterEach(() => never.mockClear());

  it('reads and validates a profile file without asking for a last profile', async () => {
    const file = writeProfile('ok.yaml', profileFileContent(good()));
    expect(await rollbackProfile(file, never)).toEqual(good());
    const bad = writeProfile('bad.yaml', { ...profileFileContent(good()), kernelArgs: "quiet'", health: { unit: ['x'] } });
    expect((await problemsOf(rollbackProfile(bad, never))).map((l) => l.split(':')[0]).sort()).toEqual(['health', 'kernelArgs']);
    expect(never).not.toHaveBeenCalled();
  });

  it('a path with a "/" that does not exist is a file that cannot be read, not a host name', async () => {
    expect(await problemsOf(rollbackProfile(join(dir, 'typo.yaml'), never))).toEqual([`cannot read ${join(dir, 'typo.yaml')}: ENOENT`]);
    expect(never).not.toHaveBeenCalled();
  });

  it('validates the profile of a host\'s last workflow again, saying where it came from', async () => {
    expect(await rollbackProfile('web-1', async () => good())).toEqual(good());
    const hostile = { ...good(), power: { driver: 'redfish', url: 'http://bmc.example.net', user: 'root', passwordFile: '/root/.ssh/id_ed25519', systemId: '1', insecureTls: false, allowHttp: false } };
    expect(await problemsOf(rollbackProfile('web-1', async () => hostile))).toEqual([
      'power.url: must be https:// (http sends the BMC password in clear; set allowHttp: true to allow it)',
      "(the profile of web-1's last upgrade; give a profile file instead)",
    ]);
  });

  it('an unknown host is still "neither a profile file nor a host"', async () => {
    await expect(rollbackProfile('ghost', async () => null)).rejects.toThrow(/^ghost is neither a profile file nor a host that ab-upgrade has upgraded$/);
  });
});

describe('ab-upgrade rollback <invalid profile>', () => {
  it('exits 2 with the field named, without needing the Temporal server', async () => {
    const file = writeProfile('invalid.yaml', { ...profileFileContent(good()), timings: { pollInterval: 0 } });
    const saved = { address: process.env.TEMPORAL_ADDRESS, exitCode: process.exitCode };
    process.env.TEMPORAL_ADDRESS = `127.0.0.1:${await freePort()}`; // nothing listens there
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.join(' ')));
    try {
      await main(['node', 'ab-upgrade', 'rollback', file]);
      expect(process.exitCode).toBe(2);
      expect(errors.join('\n')).toMatch(/^invalid host profile:\n {2}- timings\.pollInterval: "0" must be at least 100ms$/);
    } finally {
      spy.mockRestore();
      process.exitCode = saved.exitCode;
      if (saved.address === undefined) delete process.env.TEMPORAL_ADDRESS;
      else process.env.TEMPORAL_ADDRESS = saved.address;
    }
  });
});
