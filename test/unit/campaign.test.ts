import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCampaign } from '../../client/campaign-file.js';
import { CampaignError, parseCampaignFile } from '../../lib/campaign.js';
import { formatCampaignStatus } from '../../lib/format-campaign.js';
import { ProfileError } from '../../lib/profile.js';

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CampaignError);
    return (e as CampaignError).problems;
  }
  throw new Error('expected the campaign to be rejected');
}

describe('parseCampaignFile', () => {
  it('fills the defaults: a canary then the rest, no failures tolerated, no window, 7 days to retry', () => {
    const c = parseCampaignFile({ name: 'web', hosts: ['web-1.yaml'] });
    expect(c).toEqual({ name: 'web', hosts: ['web-1.yaml'], waves: [1, '100%'], failureBudget: 0, approveEachWave: false, retryWithin: 7 * 86_400_000 });
  });

  it('a full file', () => {
    const c = parseCampaignFile({
      name: 'db-2026',
      hosts: ['a.yaml', 'sub/b.yaml'],
      waves: [1, 5, '20%'],
      failureBudget: '10%',
      window: { days: ['sat', 'sun'], start: '22:00', end: '04:00', timezone: 'Europe/Berlin' },
      approveEachWave: true,
      retryWithin: '2d',
    });
    expect(c.waves).toEqual([1, 5, '20%']);
    expect(c.failureBudget).toBe('10%');
    expect(c.window).toEqual({ days: ['sat', 'sun'], start: '22:00', end: '04:00', timezone: 'Europe/Berlin' });
    expect(c.retryWithin).toBe(2 * 86_400_000);
    // days default to every day
    expect(parseCampaignFile({ name: 'x', hosts: ['a'], window: { start: '01:00', end: '02:00', timezone: 'UTC' } }).window?.days).toHaveLength(7);
  });

  it('every error names its field', () => {
    const problems = problemsOf(() =>
      parseCampaignFile({
        name: 'bad name',
        hosts: [],
        waves: [0, '150%', 'ten'],
        failureBudget: -1,
        window: { days: ['funday'], start: '25:00', end: '04:00', timezone: 'Mars/Olympus_Mons' },
        approveEachWave: 'yes',
        retryWithin: 'soon',
        extra: 1,
      }),
    );
    const fields = problems.map((p) => p.split(':')[0]);
    for (const f of ['name', 'hosts', 'waves.0', 'waves.1', 'waves.2', 'failureBudget', 'window.days.0', 'window.start', 'window.timezone', 'approveEachWave', 'retryWithin', '(campaign)']) {
      expect(fields, `a problem naming ${f} in:\n${problems.join('\n')}`).toContain(f);
    }
    expect(problems.find((p) => p.startsWith('window.timezone'))).toMatch(/IANA time zone/);
    expect(problems.find((p) => p.startsWith('(campaign)'))).toMatch(/extra/);
  });

  it('is strict at every level: a typo names the section and the key', () => {
    expect(problemsOf(() => parseCampaignFile({ name: 'x', hosts: ['a'], wave: [1] }))).toEqual(['(campaign): unrecognized key "wave"']);
    expect(problemsOf(() => parseCampaignFile({ name: 'x', hosts: ['a'], window: { start: '01:00', end: '02:00', timezone: 'UTC', timeZone: 'UTC' } }))).toEqual([
      'window: unrecognized key "timeZone"',
    ]);
  });

  it('retryWithin is bounded like every duration', () => {
    expect(problemsOf(() => parseCampaignFile({ name: 'x', hosts: ['a'], retryWithin: 0 }))).toEqual(['retryWithin: "0" must be at least 100ms']);
    expect(problemsOf(() => parseCampaignFile({ name: 'x', hosts: ['a'], retryWithin: '30d' }))[0]).toMatch(/^retryWithin: "30d" must be at most 24d20h31m23s/);
  });

  it('a window must not open and close at the same time', () => {
    expect(problemsOf(() => parseCampaignFile({ name: 'x', hosts: ['a'], window: { start: '03:00', end: '03:00', timezone: 'UTC' } }))).toEqual([
      'window.end: must differ from start (all day: 00:00 to 24:00)',
    ]);
  });
});

describe('loadCampaign (files)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ab-campaign-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const example = readFileSync(new URL('../../examples/host.example.yaml', import.meta.url), 'utf8');
  const host = (file: string, name: string, port = 22) => {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), example.replace(/^name: web-1$/m, `name: ${name}`).replace(/^port: 22$/m, `port: ${port}`));
  };

  it('resolves host files relative to the campaign file and parses each with the profile parser', async () => {
    host('hosts/web-1.yaml', 'web-1');
    host('hosts/web-2.yaml', 'web-2');
    writeFileSync(join(dir, 'ok.yaml'), 'name: web\nhosts: [hosts/web-1.yaml, hosts/web-2.yaml]\nwaves: [1, "50%"]\n');
    const spec = await loadCampaign(join(dir, 'ok.yaml'));
    expect(spec.profiles.map((p) => p.name)).toEqual(['web-1', 'web-2']);
    expect(spec.profiles[0]!.timings.comebackDeadline).toBe(300_000);
    expect(spec.retryWithinMs).toBe(7 * 86_400_000);
    expect(spec).not.toHaveProperty('hosts');
  });

  it('examples/campaign.example.yaml loads', async () => {
    const spec = await loadCampaign(new URL('../../examples/campaign.example.yaml', import.meta.url).pathname);
    expect(spec).toMatchObject({ name: 'web-trixie', waves: [1, 5, '20%'], failureBudget: '10%', approveEachWave: true });
    expect(spec.window).toEqual({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '22:00', end: '04:00', timezone: 'Europe/Berlin' });
    expect(spec.profiles.map((p) => p.name)).toEqual(['web-1']);
  });

  it('host errors name the entry, the file and the field; a missing file is named', async () => {
    host('bad.yaml', 'bad', 70000);
    writeFileSync(join(dir, 'bad-hosts.yaml'), 'name: web\nhosts: [hosts/web-1.yaml, bad.yaml, missing.yaml]\n');
    const err = await loadCampaign(join(dir, 'bad-hosts.yaml')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CampaignError);
    expect(err).toBeInstanceOf(ProfileError); // the CLI exits 2 for both
    const problems = (err as CampaignError).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^hosts\.1 \(bad\.yaml\): port: /);
    expect(problems[1]).toMatch(/^hosts\.2 \(missing\.yaml\): cannot read .*missing\.yaml: ENOENT$/);
    expect((err as Error).message).toMatch(/^invalid campaign:/);
  });

  it('two files naming the same host are refused', async () => {
    host('dup.yaml', 'web-1');
    writeFileSync(join(dir, 'dup-campaign.yaml'), 'name: web\nhosts: [hosts/web-1.yaml, dup.yaml]\n');
    const err = (await loadCampaign(join(dir, 'dup-campaign.yaml')).catch((e: unknown) => e)) as CampaignError;
    expect(err.problems).toEqual(['hosts.1 (dup.yaml): host name "web-1" is also hosts.0 (hosts/web-1.yaml)']);
  });

  it('a host entry naming a file that is not a profile gets one line naming it, and none of its content', async () => {
    const SHADOW = [
      'root:$6$rounds=5000$NaClNaCl$c2VjcmV0aGFzaHNlY3JldGhhc2hzZWNyZXRoYXNo:19700:0:99999:7:::',
      'deploy:$y$j9T$abcdefghijklmnop$qrstuvwxyzABCDEFGHIJKLMNOPQRSTUV:19700:0:99999:7:::',
    ];
    writeFileSync(join(dir, 'shadow'), SHADOW.join('\n') + '\n'); // YAML reads each line as a key
    writeFileSync(join(dir, 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n');
    writeFileSync(join(dir, 'app.env.yaml'), 'db_password: "hunter2-unterminated\n');
    writeFileSync(join(dir, 'alias.yaml'), 'token: *hunter2-alias\n');
    writeFileSync(join(dir, 'secrets.yaml'), 'api_token: hunter2-token\nhost: db1\n'); // one profile field: judged as a profile
    writeFileSync(join(dir, 'foreign-hosts.yaml'), 'name: web\nhosts: [shadow, id_ed25519, app.env.yaml, alias.yaml, secrets.yaml]\n');
    const err = await loadCampaign(join(dir, 'foreign-hosts.yaml')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CampaignError);
    const problems = (err as CampaignError).problems;
    expect(problems.slice(0, 4)).toEqual([
      `hosts.0 (shadow): ${join(dir, 'shadow')} is not a valid profile: no profile field in it`,
      `hosts.1 (id_ed25519): ${join(dir, 'id_ed25519')} is not a valid profile: no profile field in it`,
      `hosts.2 (app.env.yaml): ${join(dir, 'app.env.yaml')} is not a valid profile: not YAML (MISSING_CHAR at line 2, column 1)`,
      `hosts.3 (alias.yaml): ${join(dir, 'alias.yaml')} is not a valid profile: not YAML (UNRESOLVED_ALIAS)`,
    ]);
    expect(problems.filter((p) => p.startsWith('hosts.4 (secrets.yaml): '))).toContain('hosts.4 (secrets.yaml): (profile): unrecognized key "api_token"');
    const message = (err as Error).message;
    for (const secret of [...SHADOW, '$6$', 'NaClNaCl', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ', 'PRIVATE KEY', 'hunter2']) expect(message).not.toContain(secret);
  });

  it('YAML syntax errors in the campaign file are campaign errors', async () => {
    writeFileSync(join(dir, 'syntax.yaml'), 'name: [web\n');
    const err = await loadCampaign(join(dir, 'syntax.yaml')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CampaignError);
    expect((err as CampaignError).problems[0]).toMatch(/syntax\.yaml: YAML/);
  });
});

describe('loadCampaign: inventories, overrides, skip', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ab-campaign-inv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const example = readFileSync(new URL('../../examples/host.example.yaml', import.meta.url), 'utf8');
  const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
  writeFileSync(join(dir, 'web-0.yaml'), example.replace(/^name: web-1$/m, 'name: web-0'));
  writeFileSync(join(dir, 'template.yaml'), 'auth: { agent: true }\nslots: auto\ndata: { device: LABEL=data, mountPoint: /srv/data }\nrelease: { source: debootstrap, suite: trixie }\n');
  writeFileSync(join(dir, 'hosts.ini'), `[web]\nweb[1:3] ab_upgrade_hostKey=${FINGERPRINT}\n[db]\ndb1 ab_upgrade_hostKey=${FINGERPRINT}\n[web:vars]\nansible_user=deploy\n`);
  const campaign = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it('inventory hosts join the host files; overrides per entry and per inventory host; skipped hosts are left out', async () => {
    const file = campaign(
      'c.yaml',
      'name: web\nhosts:\n  - { file: web-0.yaml, overrides: { reboot: kexec } }\ninventory: hosts.ini\ntemplate: template.yaml\nlimit: web\n' +
        'overrides:\n  web2: { port: 2222, health: { tcpPorts: [80] } }\nskip: [web3]\n',
    );
    const spec = await loadCampaign(file);
    expect(spec.profiles.map((p) => [p.name, p.user, p.port, p.reboot, p.health.tcpPorts])).toEqual([
      ['web-0', 'root', 22, 'kexec', [22, 80]],
      ['web1', 'deploy', 22, 'firmware', []],
      ['web2', 'deploy', 2222, 'firmware', [80]],
    ]);
    expect(spec.skipped).toEqual(['web3']);
    expect(spec).not.toHaveProperty('inventory');
    expect(spec).not.toHaveProperty('overrides');
  });

  it('the command line inventory, template and limit take the place of the file\'s', async () => {
    const file = campaign('cli.yaml', 'name: web\n');
    const spec = await loadCampaign(file, { inventory: join(dir, 'hosts.ini'), template: join(dir, 'template.yaml'), limit: 'db' });
    expect(spec.profiles.map((p) => p.name)).toEqual(['db1']);
    const err = (await loadCampaign(file).catch((e: unknown) => e)) as CampaignError;
    expect(err.problems).toEqual(['hosts: must list at least one host profile file (or give an inventory)']);
  });

  it('overrides are validated by the profile schema; every problem names the entry or inventory host and the field', async () => {
    const file = campaign(
      'bad.yaml',
      'name: web\nhosts: [{ file: web-0.yaml, overrides: { port: 0 } }]\ninventory: hosts.ini\ntemplate: template.yaml\n' +
        'overrides: { web1: { reboot: warp }, nosuch: {} }\nskip: [web9]\n',
    );
    const err = (await loadCampaign(file).catch((e: unknown) => e)) as CampaignError;
    expect(err).toBeInstanceOf(CampaignError);
    expect(err.problems).toEqual([
      expect.stringMatching(/^hosts\.0 \(web-0\.yaml\): port: /),
      `inventory (${join(dir, 'hosts.ini')}): overrides.nosuch: no such host in the inventory`,
      expect.stringMatching(/^inventory host web1: reboot: /),
    ]);
    const skip = (await loadCampaign(campaign('skip.yaml', 'name: web\nhosts: [web-0.yaml]\nskip: [web9, web-0]\n')).catch((e: unknown) => e)) as CampaignError;
    expect(skip.problems).toEqual(['skip.0: no host named "web9" in the campaign']);
    const all = (await loadCampaign(campaign('skip-all.yaml', 'name: web\nhosts: [web-0.yaml]\nskip: [web-0]\n')).catch((e: unknown) => e)) as CampaignError;
    expect(all.problems).toEqual(['skip: skips every host of the campaign']);
    expect(problemsOf(() => parseCampaignFile({ name: 'x', inventory: 'hosts.ini' }))).toEqual(['template: required with inventory: the profile file its hosts share']);
    const noInv = (await loadCampaign(campaign('no-inv.yaml', 'name: web\nhosts: [web-0.yaml]\noverrides: { web-0: {} }\n')).catch((e: unknown) => e)) as CampaignError;
    expect(noInv.problems).toEqual(['overrides: only for inventory hosts (give a host file its overrides in its hosts entry)']);
  });

  it('two inventory and file entries naming one host are refused, naming both', async () => {
    writeFileSync(join(dir, 'web1.yaml'), example.replace(/^name: web-1$/m, 'name: web1'));
    const err = (await loadCampaign(campaign('dup.yaml', 'name: web\nhosts: [web1.yaml]\ninventory: hosts.ini\ntemplate: template.yaml\nlimit: web1\n')).catch((e: unknown) => e)) as CampaignError;
    expect(err.problems).toEqual(['inventory host web1: host name "web1" is also hosts.0 (web1.yaml)']);
  });
});

describe('formatCampaignStatus', () => {
  it('lists skipped hosts on their own line, not as failed', () => {
    const text = formatCampaignStatus({
      campaign: 'web',
      state: 'done',
      hosts: [
        { name: 'web-1', state: 'committed', workflowId: 'ab-upgrade/web-1', attempts: 1, wave: 1 },
        { name: 'web-9', state: 'skipped', workflowId: 'ab-upgrade/web-9', attempts: 0 },
      ],
      waves: [{ number: 1, round: 1, hosts: ['web-1'], state: 'done' }],
      failures: { count: 0, budget: 0, hosts: [] },
      pauseRequested: false,
      notices: [],
      startedAt: '2026-01-01T00:00:00.000Z',
      continuedAsNew: 0,
    });
    expect(text.split('\n')).toEqual(['campaign web: done; failed 0, budget 0', 'waves:', '    1  done     round 1: web-1 committed', 'skipped (never started): web-9']);
  });

  it('shows the waves with host states, failures against the budget and what it waits for', () => {
    const text = formatCampaignStatus({
      campaign: 'web',
      state: 'halted',
      currentWave: 2,
      hosts: [
        { name: 'web-1', state: 'committed', workflowId: 'ab-upgrade/web-1', attempts: 1, wave: 1 },
        { name: 'web-2', state: 'unreachable', workflowId: 'ab-upgrade/web-2', attempts: 1, wave: 2, reason: 'inspect failed: Cannot connect [SshConnectError]' },
        { name: 'web-3', state: 'pending', workflowId: 'ab-upgrade/web-3', attempts: 0 },
      ],
      waves: [
        { number: 1, round: 1, hosts: ['web-1'], state: 'done' },
        { number: 2, round: 1, hosts: ['web-2'], state: 'done', approvedBy: 'alice' },
        { number: 3, round: 1, hosts: ['web-3'], state: 'pending' },
      ],
      failures: { count: 1, budget: 0, hosts: ['web-2'] },
      pauseRequested: false,
      window: { open: false, opensAt: '2026-01-03T21:00:00.000Z', closesAt: '2026-01-04T03:00:00.000Z' },
      waitingFor: 'retry the failed hosts: ab-upgrade campaign retry-failed web',
      reason: 'failure budget exceeded after wave 2: 1 failed (budget 0): web-2 (unreachable)',
      notices: [],
      startedAt: '2026-01-01T00:00:00.000Z',
      continuedAsNew: 0,
    });
    expect(text.split('\n')).toEqual([
      'campaign web: halted, wave 2 of 3; failed 1, budget 0 (web-2)',
      'window: opens 2026-01-03T21:00:00.000Z, closes 2026-01-04T03:00:00.000Z',
      'waves:',
      '    1  done     round 1: web-1 committed',
      '    2  done     round 1, approved by alice: web-2 unreachable',
      '    3  pending  round 1: web-3',
      'failed hosts (details: ab-upgrade status <host>):',
      '  web-2 unreachable (attempt 1, wave 2): inspect failed: Cannot connect [SshConnectError]',
      'reason: failure budget exceeded after wave 2: 1 failed (budget 0): web-2 (unreachable)',
      'waiting for: retry the failed hosts: ab-upgrade campaign retry-failed web',
    ]);
  });
});
