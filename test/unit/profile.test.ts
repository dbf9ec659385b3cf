import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseProfileText } from '../../client/profile-file.js';
import { renderMenuEntry, slotCmdline } from '../../lib/grub.js';
import {
  hostWorkflowId,
  parseProfile,
  ProfileError,
  profileFields,
  profileFileContent,
  profileSchemas,
  revalidateProfile,
  type Profile,
  type ProfileInput,
} from '../../lib/profile.js';

const ED25519_LINE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';

/** A full profile, the way a YAML file would deliver it (plain object, strings for durations). */
function goodProfile(): Record<string, unknown> {
  return {
    name: 'db1',
    host: 'db1.example.net',
    port: 2222,
    user: 'deploy',
    auth: { identityFile: '/home/op/.ssh/id_ed25519', agent: true },
    hostKey: ED25519_LINE,
    slots: { a: 'PARTUUID=6f4c9d2e-01', b: 'PARTUUID=6f4c9d2e-02' },
    data: { device: 'UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', mountPoint: '/srv/data' },
    release: {
      source: 'debootstrap',
      suite: 'trixie',
      mirror: 'http://deb.debian.org/debian',
      components: ['main', 'contrib'],
      packages: ['postgresql-17', 'nginx'],
    },
    carry: { files: ['/etc/nginx', '/etc/postgresql'], exclude: ['/etc/nginx/sites-enabled'] },
    health: {
      commands: [{ name: 'pg', run: 'pg_isready -q', timeout: '30s' }],
      units: ['nginx.service', 'postgresql@17-main.service'],
      tcpPorts: [5432, 443],
    },
    timings: { approvalTimeout: '8h', comebackDeadline: '10m', pollInterval: 2, healthTimeout: '1m30s' },
    reboot: 'kexec',
    power: { driver: 'ipmi', address: '10.0.0.21', user: 'ADMIN', passwordFile: '/etc/ab-upgrade/ipmi-db1.pw' },
    kernelArgs: 'console=ttyS0,115200n8 net.ifnames=0',
    install: { nice: 15, io: 'idle', maxRate: '40MB/s' },
  };
}

/** The smallest profile that validates. */
function minimalProfile(): Record<string, unknown> {
  return {
    host: 'web3.example.net',
    auth: { identityFile: '/home/op/.ssh/id_ed25519' },
    hostKey: FINGERPRINT,
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie' },
  };
}

/** Runs parseProfile and returns the ProfileError's problems (fails the test if it parses). */
function problemsOf(input: unknown): string[] {
  try {
    parseProfile(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ProfileError);
    return (e as ProfileError).problems;
  }
  throw new Error('expected the profile to be rejected');
}

function withField(path: string[], value: unknown): Record<string, unknown> {
  const p = goodProfile();
  let o = p as Record<string, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[path.at(-1)!] = value;
  return p;
}

describe('parseProfile: good profiles', () => {
  it('parses a full profile and converts every duration to milliseconds', () => {
    const p = parseProfile(goodProfile());
    expect(p.name).toBe('db1');
    expect(p.host).toBe('db1.example.net');
    expect(p.port).toBe(2222);
    expect(p.user).toBe('deploy');
    expect(p.become).toBe('sudo');
    expect(p.auth).toEqual({ identityFile: '/home/op/.ssh/id_ed25519', agent: true });
    expect(p.hostKey).toBe(ED25519_LINE);
    expect(p.slots).toEqual({ a: 'PARTUUID=6f4c9d2e-01', b: 'PARTUUID=6f4c9d2e-02' });
    expect(p.data).toEqual({ device: 'UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', mountPoint: '/srv/data' });
    expect(p.release).toEqual({
      source: 'debootstrap',
      suite: 'trixie',
      mirror: 'http://deb.debian.org/debian',
      components: ['main', 'contrib'],
      packages: ['postgresql-17', 'nginx'],
    });
    expect(p.carry).toEqual({ defaults: true, files: ['/etc/nginx', '/etc/postgresql'], exclude: ['/etc/nginx/sites-enabled'] });
    expect(p.health.commands).toEqual([{ name: 'pg', run: 'pg_isready -q', timeout: 30_000 }]);
    expect(p.health.units).toEqual(['nginx.service', 'postgresql@17-main.service']);
    expect(p.health.tcpPorts).toEqual([5432, 443]);
    expect(p.timings).toEqual({ approvalTimeout: 8 * 3_600_000, comebackDeadline: 600_000, pollInterval: 2000, healthTimeout: 90_000 });
    expect(p.reboot).toBe('kexec');
    expect(p.power).toEqual({
      driver: 'ipmi',
      address: '10.0.0.21',
      user: 'ADMIN',
      passwordFile: '/etc/ab-upgrade/ipmi-db1.pw',
      interface: 'lanplus',
    });
    expect(p.kernelArgs).toBe('console=ttyS0,115200n8 net.ifnames=0');
    expect(p.install).toEqual({ nice: 15, io: 'idle', maxRate: 40_000_000 });
  });

  it('fills every default in a minimal profile', () => {
    const p = parseProfile(minimalProfile());
    expect(p.name).toBe('web3.example.net');
    expect(p.port).toBe(22);
    expect(p.user).toBe('root');
    expect(p.become).toBe('root');
    expect(p.timings).toEqual({
      approvalTimeout: 24 * 3_600_000,
      comebackDeadline: 300_000,
      pollInterval: 5000,
      healthTimeout: 120_000,
    });
    expect(p.timings.comebackDeadline).toBe(300_000);
    expect(p.carry).toEqual({ defaults: true, files: [], exclude: [] });
    expect(p.health).toEqual({ commands: [], units: [], tcpPorts: [] });
    expect(p.reboot).toBe('firmware');
    expect(p.power).toEqual({ driver: 'none' });
    expect(p.kernelArgs).toBe('');
    expect(p.install).toEqual({ nice: 10, io: 'low' });
    expect(p.release).toEqual({
      source: 'debootstrap',
      suite: 'trixie',
      mirror: 'http://deb.debian.org/debian',
      components: ['main'],
      packages: [],
    });
  });

  it('derives become from user unless it is given', () => {
    expect(parseProfile({ ...minimalProfile(), user: 'root' }).become).toBe('root');
    expect(parseProfile({ ...minimalProfile(), user: 'ops' }).become).toBe('sudo');
    expect(parseProfile({ ...minimalProfile(), user: 'ops', become: 'root' }).become).toBe('root');
  });

  it.each([
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    [45, 45_000],
    ['45', 45_000],
    ['250ms', 250],
  ])('accepts the duration %j for timings.comebackDeadline (%d ms)', (value, ms) => {
    const p = parseProfile({ ...minimalProfile(), timings: { comebackDeadline: value } });
    expect(p.timings.comebackDeadline).toBe(ms);
    // the other timings keep their defaults
    expect(p.timings.approvalTimeout).toBe(86_400_000);
  });

  it('takes install.maxRate in bytes or bits per second, or as a number of bytes per second', () => {
    const maxRate = (v: unknown) => parseProfile({ ...minimalProfile(), install: { maxRate: v } }).install.maxRate;
    expect(maxRate('50MB/s')).toBe(50_000_000);
    expect(maxRate('200 Mbit/s')).toBe(25_000_000);
    expect(maxRate('1.5GiB/s')).toBe(1_610_612_736);
    expect(maxRate(125_000)).toBe(125_000);
    expect(parseProfile({ ...minimalProfile(), install: { nice: 0, io: 'idle' } }).install).toEqual({ nice: 0, io: 'idle' });
  });

  it('defaults a health command timeout to 60 s', () => {
    const p = parseProfile({ ...minimalProfile(), health: { commands: [{ run: 'true' }] } });
    expect(p.health.commands).toEqual([{ run: 'true', timeout: 60_000 }]);
  });

  it('accepts an image release and infers its format from the URL', () => {
    const sha = 'ab'.repeat(32);
    const rel = (url: string, format?: string) =>
      parseProfile({ ...minimalProfile(), release: { source: 'image', url, sha256: sha, allowUnsigned: true, ...(format ? { format } : {}) } }).release;
    expect(rel('https://images.example.net/trixie.tar.zst')).toEqual({
      source: 'image',
      url: 'https://images.example.net/trixie.tar.zst',
      sha256: sha,
      format: 'tar.zst',
      allowUnsigned: true,
    });
    expect(rel('/srv/images/trixie.tgz')).toMatchObject({ format: 'tar.gz' });
    expect(rel('/srv/images/trixie.tar.gz')).toMatchObject({ format: 'tar.gz' });
    expect(rel('/srv/images/trixie.tzst')).toMatchObject({ format: 'tar.zst' });
    expect(rel('/srv/images/trixie.tar')).toMatchObject({ format: 'tar' });
    expect(rel('/srv/images/trixie.img', 'tar.zst')).toMatchObject({ format: 'tar.zst' });
  });

  it('accepts release.pull in each form and fills its defaults', () => {
    const pull = (pull: object) => {
      const r = parseProfile({ ...minimalProfile(), release: { source: 'image', url: '/srv/t.tar.zst', sha256: 'ab'.repeat(32), allowUnsigned: true, pull } }).release;
      return r.source === 'image' ? r.pull : undefined;
    };
    expect(pull({ listenAddress: '192.0.2.10' })).toEqual({ listenAddress: '192.0.2.10', listenPort: 0 });
    expect(pull({ listenAddress: '::', connectAddress: 'controller.example.net' })).toEqual({ listenAddress: '::', listenPort: 0, connectAddress: 'controller.example.net' });
    expect(pull({ listenAddress: '0.0.0.0', listenPort: 7070, connectAddress: '203.0.113.5', connectPort: 17070 })).toMatchObject({ listenPort: 7070, connectPort: 17070 });
    expect(pull({ listenAddress: 'fe80::1', listenPort: 65535 })).toMatchObject({ listenAddress: 'fe80::1' });
  });

  it('accepts every device reference form for slots and data', () => {
    for (const ref of [
      'UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10',
      'PARTUUID=6f4c9d2e-01',
      'LABEL=ab-slot-a',
      'PARTLABEL=root_b',
      '/dev/vda2',
      '/dev/disk/by-id/nvme-eui.0025388b91b2c3d4-part2',
      '/dev/mapper/vg0-data',
    ])
      expect(profileSchemas().deviceRefSchema.safeParse(ref).success, ref).toBe(true);
    for (const ref of ['vda2', 'UUID=', 'LABEL=has space', 'TYPE=ext4', '/dev/vda2;reboot', 'UUID=$(id)'])
      expect(profileSchemas().deviceRefSchema.safeParse(ref).success, ref).toBe(false);
  });

  it('lists its top-level fields in the schema\'s order, and builds the schemas once outside a workflow', () => {
    const schemas = profileSchemas();
    expect(profileFields).toEqual(Object.keys(schemas.profileObject.shape));
    expect(profileSchemas()).toBe(schemas);
  });

  it('accepts the agent alone (true or a socket path) as auth', () => {
    expect(parseProfile({ ...minimalProfile(), auth: { agent: true } }).auth).toEqual({ agent: true });
    expect(parseProfile({ ...minimalProfile(), auth: { agent: '/run/user/1000/ssh-agent.sock' } }).auth).toEqual({
      agent: '/run/user/1000/ssh-agent.sock',
    });
  });

  it('accepts a fingerprint, a bare public key and a known_hosts line as hostKey', () => {
    for (const hostKey of [FINGERPRINT, ED25519_LINE, `db1.example.net ${ED25519_LINE}`, `  ${FINGERPRINT}  `])
      expect(parseProfile({ ...minimalProfile(), hostKey }).hostKey).toBe(hostKey.trim());
  });

  it('fills power driver defaults for redfish and qmp', () => {
    const redfish = parseProfile({
      ...minimalProfile(),
      power: { driver: 'redfish', url: 'https://bmc.example.net', user: 'admin', passwordFile: '/etc/ab-upgrade/bmc.pw' },
    }).power;
    expect(redfish).toEqual({
      driver: 'redfish',
      url: 'https://bmc.example.net',
      user: 'admin',
      passwordFile: '/etc/ab-upgrade/bmc.pw',
      systemId: '1',
      insecureTls: false,
      allowHttp: false,
    });
    expect(parseProfile({ ...minimalProfile(), power: { driver: 'qmp', socket: '/run/lab/vm1.qmp' } }).power).toEqual({
      driver: 'qmp',
      socket: '/run/lab/vm1.qmp',
    });
  });

  it('does not mutate its input', () => {
    const input = minimalProfile();
    const copy = structuredClone(input);
    parseProfile(input);
    expect(input).toEqual(copy);
  });
});

describe('parseProfile: bad profiles name the field', () => {
  const cases: [string, string[], unknown, RegExp][] = [
    ['a short sha256', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'abc123', allowUnsigned: true }, /^release\.sha256: .*64 lowercase hex/],
    ['an uppercase sha256', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'AB'.repeat(32), allowUnsigned: true }, /^release\.sha256: /],
    ['a pull listen address that is a name', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'ab'.repeat(32), allowUnsigned: true, pull: { listenAddress: 'controller' } }, /^release\.pull\.listenAddress: must be an IP address of the controller/],
    ['pull on every address without a connect address', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'ab'.repeat(32), allowUnsigned: true, pull: { listenAddress: '0.0.0.0' } }, /^release\.pull\.connectAddress: required with listenAddress 0\.0\.0\.0/],
    ['a pull connect port with a free listen port', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'ab'.repeat(32), allowUnsigned: true, pull: { listenAddress: '10.0.0.1', connectPort: 7000 } }, /^release\.pull\.connectPort: needs a fixed listenPort/],
    ['a pull listen port out of range', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'ab'.repeat(32), allowUnsigned: true, pull: { listenAddress: '10.0.0.1', listenPort: 70000 } }, /^release\.pull\.listenPort: /],
    ['an unknown pull field', ['release'], { source: 'image', url: '/srv/x.tar', sha256: 'ab'.repeat(32), allowUnsigned: true, pull: { listenAddress: '10.0.0.1', tls: true } }, /^release\.pull: .*"tls"/],
    ['pull for a debootstrap release', ['release'], { source: 'debootstrap', suite: 'trixie', pull: { listenAddress: '10.0.0.1' } }, /^release\.pull: only for image releases/],
    ['an unknown release source', ['release'], { source: 'ftp', url: 'x' }, /^release\.source: /],
    ['a bad suite', ['release'], { source: 'debootstrap', suite: 'Trixie!' }, /^release\.suite: .*suite name/],
    ['a bad package name', ['release'], { source: 'debootstrap', suite: 'trixie', packages: ['ok', 'Bad Name'] }, /^release\.packages\.1: .*package name/],
    ['a bad mirror', ['release'], { source: 'debootstrap', suite: 'trixie', mirror: 'not a url' }, /^release\.mirror: /],
    ['a bad slot b reference', ['slots'], { a: '/dev/vda1', b: 'vda2' }, /^slots\.b: must be PARTUUID=/],
    ['the same device for both slots', ['slots'], { a: '/dev/vda1', b: '/dev/vda1' }, /^slots\.b: slot a and slot b must be different/],
    ['a missing ipmi password file', ['power'], { driver: 'ipmi', address: 'bmc1', user: 'ADMIN' }, /^power\.passwordFile: /],
    ['a relative ipmi password file', ['power'], { driver: 'ipmi', address: 'bmc1', user: 'ADMIN', passwordFile: 'ipmi.pw' }, /^power\.passwordFile: must be an absolute path/],
    ['an unknown power driver', ['power'], { driver: 'wol' }, /^power\.driver: /],
    ['a bad comeback deadline', ['timings', 'comebackDeadline'], '5 minutes', /^timings\.comebackDeadline: "5 minutes" is not a duration/],
    ['a negative approval timeout', ['timings', 'approvalTimeout'], -5, /^timings\.approvalTimeout: "-5" is not a duration/],
    ['a bad health command timeout', ['health'], { commands: [{ run: 'true', timeout: 'soon' }] }, /^health\.commands\.0\.timeout: /],
    ['a bad unit name', ['health'], { units: ['nginx service'] }, /^health\.units\.0: .*systemd unit/],
    ['a bad TCP port', ['health'], { tcpPorts: [70000] }, /^health\.tcpPorts\.0: /],
    ['a garbage host key', ['hostKey'], 'not-a-key', /^hostKey: must be "SHA256:/],
    ['a short fingerprint', ['hostKey'], 'SHA256:abc', /^hostKey: /],
    ['auth without identity file or agent', ['auth'], {}, /^auth: give identityFile or agent/],
    ['auth with the agent disabled', ['auth'], { agent: false }, /^auth: give identityFile or agent/],
    ['a relative identity file', ['auth'], { identityFile: '.ssh/id_ed25519' }, /^auth\.identityFile: must be an absolute path/],
    ['data mounted at /', ['data', 'mountPoint'], '/', /^data\.mountPoint: must not be \//],
    ['a relative data mount point', ['data', 'mountPoint'], 'srv/data', /^data\.mountPoint: must be an absolute path/],
    ['a data mount point with ..', ['data', 'mountPoint'], '/srv/../etc', /^data\.mountPoint: must not contain "\.\."/],
    ['a bad data device', ['data', 'device'], 'sdb1', /^data\.device: /],
    ['a carried file with ..', ['carry', 'files'], ['/etc/nginx', '/etc/../root/.ssh'], /^carry\.files\.1: must not contain "\.\."/],
    ['an excluded path with ..', ['carry', 'exclude'], ['/etc/ssh/..'], /^carry\.exclude\.0: must not contain "\.\."/],
    ['kernelArgs with ;', ['kernelArgs'], 'console=ttyS0; reboot', /^kernelArgs: must be plain kernel parameters/],
    ['kernelArgs with $(', ['kernelArgs'], 'quiet x=$(id)', /^kernelArgs: must be plain kernel parameters/],
    ['kernelArgs with a backtick', ['kernelArgs'], 'quiet `id`', /^kernelArgs: /],
    ['kernelArgs with a newline', ['kernelArgs'], 'quiet\ninit=/bin/sh', /^kernelArgs: /],
    ['kernelArgs with a quote', ['kernelArgs'], "quiet'", /^kernelArgs: /],
    ['port 0', ['port'], 0, /^port: /],
    ['port 65536', ['port'], 65536, /^port: /],
    ['a port given as a string', ['port'], '22', /^port: /],
    ['a bad user name', ['user'], 'Root Admin', /^user: must be a POSIX user name/],
    ['a bad name', ['name'], 'db 1', /^name: /],
    ['a bad host', ['host'], 'db1;reboot', /^host: must be a hostname or an IP address/],
    ['an unknown become', ['become'], 'doas', /^become: /],
    ['an unknown reboot mode', ['reboot'], 'reset', /^reboot: /],
    ['a nice value above 19', ['install', 'nice'], 20, /^install\.nice: /],
    ['a negative nice value', ['install', 'nice'], -5, /^install\.nice: /],
    ['a fractional nice value', ['install', 'nice'], 2.5, /^install\.nice: /],
    ['an unknown I/O class', ['install', 'io'], 'realtime', /^install\.io: /],
    ['a rate without a unit per second', ['install', 'maxRate'], '50MB', /^install\.maxRate: "50MB" is not a rate \(use e\.g\. 50MB\/s/],
    ['a rate in an unknown unit', ['install', 'maxRate'], '5 furlongs/s', /^install\.maxRate: "5 furlongs\/s" is not a rate/],
    ['a rate of zero', ['install', 'maxRate'], 0, /^install\.maxRate: "0" is not a rate/],
    ['a rate below 64 kB/s', ['install', 'maxRate'], '10kB/s', /^install\.maxRate: "10kB\/s" must be at least 64kB\/s/],
    ['an unknown install field', ['install'], { cpus: 1 }, /^install: .*"cpus"/],
  ];

  it.each(cases)('rejects %s', (_label, path, value, message) => {
    const problems = problemsOf(withField(path, value));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('rejects an unknown top-level key (strict) and names it', () => {
    const problems = problemsOf({ ...goodProfile(), sudo: true });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('"sudo"');
    expect(problems[0]).toMatch(/^\(profile\): /);
  });

  it('names a missing required field', () => {
    const p = minimalProfile();
    delete p.hostKey;
    delete p.data;
    const problems = problemsOf(p);
    expect(problems.some((l) => l.startsWith('hostKey: '))).toBe(true);
    expect(problems.some((l) => l.startsWith('data: '))).toBe(true);
  });

  it('names slots when it is neither "auto" nor an {a, b} object', () => {
    const problems = problemsOf({ ...minimalProfile(), slots: 'manual' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^slots: /);
  });

  it('rejects a non-object profile', () => {
    expect(problemsOf(null)[0]).toMatch(/^\(profile\): /);
    expect(problemsOf('host: x')[0]).toMatch(/^\(profile\): /);
  });

  it('lists several problems at once, one line per field, in the error message', () => {
    const input = {
      ...goodProfile(),
      port: 0,
      hostKey: 'x',
      data: { device: 'LABEL=data', mountPoint: '/' },
      kernelArgs: 'a;b',
      timings: { comebackDeadline: 'soon' },
    };
    let error: unknown;
    try {
      parseProfile(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProfileError);
    const pe = error as ProfileError;
    expect(pe.name).toBe('ProfileError');
    expect(pe.problems.map((p) => p.split(':')[0]).sort()).toEqual(
      ['data.mountPoint', 'hostKey', 'kernelArgs', 'port', 'timings.comebackDeadline'].sort(),
    );
    expect(pe.message.split('\n')[0]).toBe('invalid host profile:');
    for (const p of pe.problems) expect(pe.message).toContain(`  - ${p}`);
    expect(pe.message.split('\n')).toHaveLength(1 + pe.problems.length);
  });
});

describe('hostWorkflowId', () => {
  it('is one id per host, shared by upgrades and rollbacks', () => {
    expect(hostWorkflowId('db1')).toBe('ab-upgrade/db1');
    expect(hostWorkflowId('web3.example.net')).toBe('ab-upgrade/web3.example.net');
    expect(hostWorkflowId('a')).not.toBe(hostWorkflowId('b'));
  });

  it('uses the profile name, which defaults to the host', () => {
    expect(hostWorkflowId(parseProfile(minimalProfile()).name)).toBe('ab-upgrade/web3.example.net');
    expect(hostWorkflowId(parseProfile(goodProfile()).name)).toBe('ab-upgrade/db1');
  });
});

describe('parseProfileText (client/profile-file.ts)', () => {
  const YAML = `# db1: the primary database
name: db1
host: db1.example.net
user: deploy
auth:
  identityFile: /home/op/.ssh/id_ed25519
hostKey: ${ED25519_LINE}
slots:
  a: PARTUUID=6f4c9d2e-01
  b: PARTUUID=6f4c9d2e-02
data:
  device: UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10
  mountPoint: /srv/data
release:
  source: image
  url: https://images.example.net/trixie.tar.zst
  sha256: ${'0123456789abcdef'.repeat(4)}
  signature: https://images.example.net/trixie.tar.zst.minisig
  publicKey: /etc/ab-upgrade/release.pub
timings:
  comebackDeadline: 90s
  pollInterval: 3
carry:
  files:
    - /etc/nginx
health:
  tcpPorts: [5432]
`;

  it('parses a YAML profile into a validated Profile', () => {
    const p = parseProfileText(YAML, 'hosts/db1.yaml');
    expect(p.name).toBe('db1');
    expect(p.become).toBe('sudo');
    expect(p.port).toBe(22);
    expect(p.slots).toEqual({ a: 'PARTUUID=6f4c9d2e-01', b: 'PARTUUID=6f4c9d2e-02' });
    expect(p.release).toMatchObject({ source: 'image', format: 'tar.zst' });
    expect(p.timings.comebackDeadline).toBe(90_000);
    expect(p.timings.pollInterval).toBe(3000);
    expect(p.timings.approvalTimeout).toBe(86_400_000);
    expect(p.carry.files).toEqual(['/etc/nginx']);
    expect(p.health.tcpPorts).toEqual([5432]);
  });

  it('reports a YAML syntax error with the source name and the line', () => {
    let error: unknown;
    try {
      parseProfileText('host: db1\nslots: [a, b\nport: 22\n', 'hosts/db1.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProfileError);
    const problems = (error as ProfileError).problems;
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^hosts\/db1\.yaml: YAML /);
    expect(problems.join('\n')).toMatch(/line \d+/);
    expect((error as Error).message).toContain('hosts/db1.yaml');
  });

  it('reports duplicate keys and an unterminated quote as YAML errors', () => {
    expect(() => parseProfileText('host: a\nhost: b\n', 'dup.yaml')).toThrow(/dup\.yaml: YAML .*unique/);
    expect(() => parseProfileText('host: "db1\n', 'q.yaml')).toThrow(/q\.yaml: YAML /);
  });

  it('uses "profile" as the default source name', () => {
    expect(() => parseProfileText('a: [1,\n')).toThrow(/profile: YAML /);
  });

  it('reports a schema error by field path, not as a YAML error', () => {
    const bad = YAML.replace(/sha256: .*/, 'sha256: deadbeef').replace('mountPoint: /srv/data', 'mountPoint: /');
    let error: unknown;
    try {
      parseProfileText(bad, 'hosts/db1.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProfileError);
    const problems = (error as ProfileError).problems;
    expect(problems.some((p) => p.startsWith('release.sha256: '))).toBe(true);
    expect(problems.some((p) => p.startsWith('data.mountPoint: must not be /'))).toBe(true);
    expect(problems.every((p) => !p.includes('YAML'))).toBe(true);
  });

  it('rejects an empty file as a profile, not as YAML', () => {
    expect(() => parseProfileText('', 'empty.yaml')).toThrow(ProfileError);
    expect(() => parseProfileText('', 'empty.yaml')).toThrow(/\(profile\): /);
  });
});

// Type-level: the input type accepts what YAML gives (strings or numbers for durations).
const _typed: ProfileInput = {
  host: 'h',
  auth: { agent: true },
  hostKey: FINGERPRINT,
  slots: 'auto',
  data: { device: 'LABEL=data', mountPoint: '/srv' },
  release: { source: 'debootstrap', suite: 'trixie' },
  timings: { comebackDeadline: 45, approvalTimeout: '1h' },
};
void _typed;

describe('profileFileContent', () => {
  it('writes durations with their unit, so the file parses back to the same profile', () => {
    const p = parseProfile({ ...goodProfile(), timings: { approvalTimeout: '30m', comebackDeadline: '5m', pollInterval: '2s', healthTimeout: 90 } });
    const text = stringify(profileFileContent(p));
    expect(text).toMatch(/pollInterval: 2000ms/);
    expect(parseProfileText(text)).toEqual(p);
    expect(parseProfileText(text).timings.pollInterval).toBe(2000);
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile and careless profiles (issue 7, section 2)

/** goodProfile with `patch` merged into its sections (one level deep; a new driver or source replaces the section). */
function patched(patch: Record<string, unknown>): Record<string, unknown> {
  const p = goodProfile();
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  for (const [k, v] of Object.entries(patch)) {
    const cur = p[k];
    p[k] = isObject(cur) && isObject(v) && !('driver' in v) && !('source' in v) ? { ...cur, ...v } : v;
  }
  return p;
}

describe('every object in the profile is strict: a typo is an error naming the section and the key', () => {
  it.each([
    ['health.unit', { health: { unit: ['nginx.service'] } }, 'health: unrecognized key "unit"'],
    ['timings.comebackDeadLine', { timings: { comebackDeadLine: '10m' } }, 'timings: unrecognized key "comebackDeadLine"'],
    ['power.adress', { power: { adress: '10.0.0.22' } }, 'power: unrecognized key "adress"'],
    ['redfish power.insecureTLS', { power: { driver: 'redfish', url: 'https://bmc', user: 'u', passwordFile: '/etc/pw', insecureTLS: true } }, 'power: unrecognized key "insecureTLS"'],
    ['qmp power.sockets', { power: { driver: 'qmp', socket: '/run/q', sockets: '/run/q2' } }, 'power: unrecognized key "sockets"'],
    ['none power.address', { power: { driver: 'none', address: 'bmc' } }, 'power: unrecognized key "address"'],
    ['carry.file', { carry: { file: ['/etc/x'] } }, 'carry: unrecognized key "file"'],
    ['auth.identityfile', { auth: { agent: true, identityfile: '/k' } }, 'auth: unrecognized key "identityfile"'],
    ['release.suit', { release: { suit: 'trixie' } }, 'release: unrecognized key "suit"'],
    ['image release.sha', { release: { source: 'image', url: '/srv/i.tar', sha256: 'ab'.repeat(32), allowUnsigned: true, sha: 'x' } }, 'release: unrecognized key "sha"'],
    ['data.mountpoint', { data: { mountpoint: '/srv' } }, 'data: unrecognized key "mountpoint"'],
    ['slots.c', { slots: { a: '/dev/vda1', b: '/dev/vda2', c: '/dev/vda3' } }, 'slots: unrecognized key "c"'],
    ['health.commands.0.timout', { health: { commands: [{ run: 'true', timout: '5s' }] } }, 'health.commands.0: unrecognized key "timout"'],
  ])('%s', (_label, patch, problem) => {
    expect(problemsOf(patched(patch))).toEqual([problem]);
  });

  it('names several unknown keys at once, and never shows a "key" that is a line of some other file', () => {
    expect(problemsOf(patched({ health: { unit: [], port: 1 } }))).toEqual(['health: unrecognized keys "unit", "port"']);
    const shadowLine = 'root:$6$rounds=5000$saltsalt$hashhashhash:19000:0:99999:7::';
    const problems = problemsOf({ ...goodProfile(), [shadowLine]: null, sudo: true });
    expect(problems).toEqual(['(profile): unrecognized key "sudo"; 1 unrecognized key not shown (not field names)']);
  });
});

describe('durations are bounded: at least 100 ms, at most Node\'s 2^31-1 ms timer', () => {
  it.each([
    ['timings.pollInterval', { timings: { pollInterval: 0 } }, /^timings\.pollInterval: "0" must be at least 100ms$/],
    ['timings.pollInterval', { timings: { pollInterval: '0s' } }, /^timings\.pollInterval: "0s" must be at least 100ms$/],
    ['timings.pollInterval', { timings: { pollInterval: '50ms' } }, /^timings\.pollInterval: "50ms" must be at least 100ms$/],
    ['timings.healthTimeout', { timings: { healthTimeout: 0.01 } }, /^timings\.healthTimeout: "0\.01" must be at least 100ms$/],
    ['timings.comebackDeadline', { timings: { comebackDeadline: -1 } }, /^timings\.comebackDeadline: "-1" is not a duration/],
    ['timings.comebackDeadline', { timings: { comebackDeadline: '-5m' } }, /^timings\.comebackDeadline: "-5m" is not a duration/],
    ['timings.approvalTimeout', { timings: { approvalTimeout: 1e300 } }, /^timings\.approvalTimeout: "1e\+300" must be at most 24d20h31m23s \(2\^31-1 ms/],
    ['timings.approvalTimeout', { timings: { approvalTimeout: '25d' } }, /^timings\.approvalTimeout: "25d" must be at most /],
    ['timings.approvalTimeout', { timings: { approvalTimeout: '2147483648ms' } }, /^timings\.approvalTimeout: "2147483648ms" must be at most /],
    ['timings.approvalTimeout', { timings: { approvalTimeout: `${'9'.repeat(400)}d` } }, /^timings\.approvalTimeout: "9+d" must be at most /],
    ['health.commands.0.timeout', { health: { commands: [{ run: 'true', timeout: 0 }] } }, /^health\.commands\.0\.timeout: "0" must be at least 100ms$/],
    ['health.commands.0.timeout', { health: { commands: [{ run: 'true', timeout: '30d' }] } }, /^health\.commands\.0\.timeout: "30d" must be at most /],
  ])('%s: %j', (_field, patch, message) => {
    const problems = problemsOf(patched(patch));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('accepts both bounds', () => {
    const p = parseProfile(patched({ timings: { pollInterval: '100ms', approvalTimeout: '2147483647ms', comebackDeadline: '24d' } }));
    expect(p.timings).toMatchObject({ pollInterval: 100, approvalTimeout: 2 ** 31 - 1, comebackDeadline: 24 * 86_400_000 });
  });
});

describe('URLs carry no credentials; Redfish is https unless allowHttp', () => {
  const SECRET = 'hunter2-url-secret';
  it.each([
    ['release.mirror', { release: { mirror: `http://apt:${SECRET}@deb.example.net/debian` } }, /^release\.mirror: must not contain a user name or password .*auth\.conf/],
    ['release.url', { release: { source: 'image', url: `https://img:${SECRET}@images.example.net/t.tar.zst`, sha256: 'ab'.repeat(32), allowUnsigned: true } }, /^release\.url: must not contain a user name or password .*give its path/],
    ['power.url', { power: { driver: 'redfish', url: `https://root:${SECRET}@bmc.example.net`, user: 'root', passwordFile: '/etc/pw' } }, /^power\.url: must not contain a user name or password .*passwordFile/],
    ['power.url (user only)', { power: { driver: 'redfish', url: 'https://root@bmc.example.net', user: 'root', passwordFile: '/etc/pw' } }, /^power\.url: must not contain a user name or password/],
  ])('%s with user:password@ is refused, without echoing the password', (_label, patch, message) => {
    const problems = problemsOf(patched(patch));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).not.toContain(SECRET);
  });

  const redfish = (extra: Record<string, unknown>) => ({ power: { driver: 'redfish', user: 'root', passwordFile: '/etc/ab-upgrade/bmc.pw', ...extra } });

  it('refuses an http:// Redfish URL unless allowHttp: true', () => {
    expect(problemsOf(patched(redfish({ url: 'http://bmc.example.net' })))).toEqual([
      'power.url: must be https:// (http sends the BMC password in clear; set allowHttp: true to allow it)',
    ]);
    expect(problemsOf(patched(redfish({ url: 'ftp://bmc.example.net', allowHttp: true })))).toEqual(['power.url: must be an https:// URL']);
    expect(parseProfile(patched(redfish({ url: 'http://bmc.example.net', allowHttp: true }))).power).toMatchObject({ url: 'http://bmc.example.net', allowHttp: true });
    expect(parseProfile(patched(redfish({ url: 'https://bmc.example.net' }))).power).toMatchObject({ allowHttp: false });
  });
});

describe('kernelArgs: the schema applies the check GRUB rendering applies', () => {
  it.each(['acpi_osi=!Windows', 'quiet x=a#b', 'systemd.unit=*', 'a=[1]', 'x=~y'])('%j: rejected by both', (args) => {
    // The check before this fix (plain kernel parameters, no shell metacharacters) let it through...
    expect(/^[^\n'"`$;&|<>\\]*$/.test(args)).toBe(true);
    // ...and addBootEntry then failed rendering it; now the profile is refused up front.
    const render = () => renderMenuEntry({ slot: 'b', title: 'x', uuid: 'abcd-1234', kernel: '/boot/vmlinuz', initrd: null, cmdline: slotCmdline('', 'b', args) });
    expect(render).toThrow(/unsafe in a GRUB script/);
    const problems = problemsOf(withField(['kernelArgs'], args));
    expect(problems).toEqual(['kernelArgs: must be plain kernel parameters (letters, digits, spaces and . _ : , = / @ + ( ) -)']);
  });

  it('what the schema accepts renders', () => {
    const args = parseProfile(withField(['kernelArgs'], 'console=ttyS0,115200n8 net.ifnames=0 rd.luks.uuid=1234-ab systemd.unit=multi-user.target')).kernelArgs;
    expect(() => renderMenuEntry({ slot: 'b', title: 'x', uuid: 'abcd-1234', kernel: '/boot/vmlinuz', initrd: null, cmdline: slotCmdline('', 'b', args) })).not.toThrow();
  });
});

describe('carried paths and the data mount point are confined', () => {
  it.each([
    ['/', /^carry\.files\.1: must not be \/ /],
    ['/proc/self/environ', /^carry\.files\.1: must not be \/proc or under it/],
    ['/sys', /^carry\.files\.1: must not be \/sys or under it/],
    ['/dev/sda', /^carry\.files\.1: must not be \/dev or under it/],
    ['/run/sshd', /^carry\.files\.1: must not be \/run or under it/],
    ['/boot', /^carry\.files\.1: must not be \/boot or under it/],
    ['/boot/efi', /^carry\.files\.1: must not be \/boot or under it/],
    ['//boot/./grub/', /^carry\.files\.1: must not be \/boot or under it/],
    ['/tmp/x', /^carry\.files\.1: must not be \/tmp or under it/],
    ['/var/run/x.pid', /^carry\.files\.1: must not be \/var\/run or under it/],
    ['/srv/data', /^carry\.files\.1: must not be the data mount point \/srv\/data or under it/],
    ['/srv/data/app.conf', /^carry\.files\.1: must not be the data mount point \/srv\/data or under it/],
    ['/srv', /^carry\.files\.1: must not contain the data mount point \/srv\/data/],
  ])('carry.files entry %j', (path, message) => {
    const problems = problemsOf(withField(['carry', 'files'], ['/etc/nginx', path]));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('accepts configuration paths that merely look alike, and any exclusion', () => {
    const p = parseProfile(patched({ carry: { files: ['/etc/boot.d', '/bootstrap.conf', '/srv/database', '/var/lib/app'], exclude: ['/proc', '/boot'] } }));
    expect(p.carry.files).toEqual(['/etc/boot.d', '/bootstrap.conf', '/srv/database', '/var/lib/app']);
  });

  it.each([
    ['/srv/my data', /must not contain whitespace, "\\" or "#" \(fstab cannot hold them\)/],
    ['/srv/tab\there', /must not contain whitespace/],
    ['/srv/back\\slash', /must not contain whitespace, "\\"/],
    ['/srv/#data', /must not contain whitespace, "\\" or "#"/],
    ['/proc/data', /must not be \/proc or under it/],
    ['/sys', /must not be \/sys or under it/],
    ['/dev/shm', /must not be \/dev or under it/],
    ['/run/data', /must not be \/run or under it/],
    ['/boot', /must not be \/boot or under it/],
    ['/boot/efi', /must not be \/boot or under it/],
  ])('data.mountPoint %j', (mountPoint, message) => {
    const problems = problemsOf(patched({ data: { mountPoint }, carry: { files: [] } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^data\.mountPoint: /);
    expect(problems[0]).toMatch(message);
  });
});

describe('revalidateProfile: a parsed profile (workflow or activity input) through the same schema', () => {
  const parsed = (): Profile => parseProfile(goodProfile());

  it('gives a valid parsed profile back unchanged', () => {
    const p = parsed();
    expect(revalidateProfile(structuredClone(p))).toEqual(p);
    const minimal = parseProfile(minimalProfile());
    expect(revalidateProfile(structuredClone(minimal))).toEqual(minimal);
  });

  it('refuses what the CLI would refuse, naming each field', () => {
    const hostile = {
      ...parsed(),
      kernelArgs: "quiet' init=/bin/sh",
      health: { ...parsed().health, unit: ['x'] },
      power: { driver: 'redfish', url: 'http://attacker.example', user: 'root', passwordFile: 'id_ed25519', systemId: '1', insecureTls: false, allowHttp: false },
    };
    const problems = (() => {
      try {
        revalidateProfile(hostile);
      } catch (e) {
        return (e as ProfileError).problems;
      }
      return [];
    })();
    expect(problems.map((l) => l.split(':')[0]).sort()).toEqual(['health', 'kernelArgs', 'power.passwordFile', 'power.url'].sort());
  });

  it.each([
    ['a duration given as text', { timings: { pollInterval: '5m' } }, 'timings.pollInterval: must be a number of milliseconds (the profile is parsed already)'],
    ['a zero duration', { timings: { pollInterval: 0 } }, 'timings.pollInterval: 0 ms must be at least 100ms'],
    ['a negative duration', { timings: { comebackDeadline: -1000 } }, 'timings.comebackDeadline: -1000 ms must be at least 100ms'],
    ['a duration past the timer limit', { timings: { approvalTimeout: 1e300 } }, 'timings.approvalTimeout: 1e+300 ms must be at most 24d20h31m23s (2^31-1 ms, the longest timer Node.js can run)'],
    ['a health command timeout of 0', { health: { commands: [{ run: 'true', timeout: 0 }] } }, 'health.commands.0.timeout: 0 ms must be at least 100ms'],
  ])('%s', (_label, patch, problem) => {
    const p = parsed() as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(patch)) p[k] = { ...(p[k] as object), ...v };
    expect(() => revalidateProfile(p)).toThrow(ProfileError);
    try {
      revalidateProfile(p);
    } catch (e) {
      expect((e as ProfileError).problems).toEqual([problem]);
    }
  });

  it('refuses a non-object', () => {
    for (const v of [null, undefined, 'host: x', [], 42]) expect(() => revalidateProfile(v)).toThrow(/\(profile\): must be an object/);
  });
});

describe('YAML errors quote nothing of the file', () => {
  const SECRET = 'hunter2-in-the-file';
  it.each([
    ['a flow sequence left open', `password: [${SECRET}\nport: 22\n`],
    ['a bad indent', `password: ${SECRET}\n  bad: indent\n`],
    ['an unterminated quote', `password: "${SECRET}\n`],
    ['an alias without its anchor', `password: *${SECRET}\n`],
  ])('%s', (_label, text) => {
    let error: unknown;
    try {
      parseProfileText(text, 'secret.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProfileError);
    const message = (error as Error).message;
    expect(message).toMatch(/secret\.yaml: YAML /);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain('password');
  });
});

describe('parseProfile: a bad duration stays on one line', () => {
  it('escapes the Unicode line separators JSON leaves as they are', () => {
    const p = goodProfile();
    p.timings = { approvalTimeout: 'x\u2028y\u2029z' };
    expect(problemsOf(p)).toEqual(['timings.approvalTimeout: "x\\u2028y\\u2029z" is not a duration (use e.g. 90s, 5m, 1h30m)']);
  });
});
