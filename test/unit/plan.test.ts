import { describe, expect, it } from 'vitest';
import { DEBIAN_CARRY_DEFAULTS } from '../../lib/carry.js';
import type { HostFacts, PreflightReport } from '../../lib/contract.js';
import type { LayoutAssessment } from '../../lib/layout.js';
import { renderPlan } from '../../lib/plan.js';
import { parseProfile, type Profile } from '../../lib/profile.js';
import type { ReleaseCheck } from '../../lib/signature.js';

const MiB = 1024 ** 2;
const UUID_A = '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b';
const UUID_B = '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a';
const UUID_DATA = '3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10';

function profile(over: Record<string, unknown> = {}): Profile {
  return parseProfile({
    name: 'db1',
    host: 'db1.example.net',
    user: 'deploy',
    auth: { agent: true },
    hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie', packages: ['postgresql-17'] },
    carry: { files: ['/etc/postgresql'], exclude: ['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub'] },
    health: { units: ['postgresql@17-main.service'], tcpPorts: [5432], commands: [{ name: 'pg ready', run: 'pg_isready -q' }, { run: 'curl -fs localhost/health' }] },
    kernelArgs: 'net.ifnames=0',
    ...over,
  });
}

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    hostname: 'db1',
    bootId: '0d9c4c3e-6f2a-4b7e-9a51-3c8f1e2d7b60',
    kernel: '6.1.0-40-amd64',
    cmdline: `BOOT_IMAGE=/boot/vmlinuz-6.1.0-40-amd64 root=UUID=${UUID_A} ro console=ttyS0,115200n8 quiet`,
    distro: { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    active: { name: 'a', device: '/dev/vda1', partuuid: '6f4c9d2e-01', uuid: UUID_A, label: 'ab-slot-a', fstype: 'ext4', sizeBytes: 10240 * MiB, usedBytes: 2300 * MiB },
    spare: { name: 'b', device: '/dev/vda2', partuuid: '6f4c9d2e-02', uuid: UUID_B, label: 'ab-slot-b', fstype: 'ext4', sizeBytes: 10240 * MiB, usedBytes: null },
    disk: '/dev/vda',
    data: { device: '/dev/vda3', uuid: UUID_DATA, fstype: 'ext4', mountPoint: '/srv/data' },
    bootMode: 'bios',
    esp: null,
    grub: {
      version: 'grub-editenv (GRUB) 2.06-13+deb12u1',
      grubenvPath: '/boot/grub/grubenv',
      grubenvDevice: '/dev/vda1',
      grubenvDeviceType: 'part',
      defaultIsSaved: false,
      savedEntry: null,
    },
    bootOwner: 'a',
    inspectedAt: '2025-11-25T21:00:00.000Z',
    ...over,
  };
}

const ok = (f: HostFacts = facts(), warnings: string[] = []): LayoutAssessment => ({ ok: true, facts: f, warnings });

const PRESENT = new Set(['/etc/hostname', '/etc/hosts', '/etc/machine-id', '/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_ed25519_key.pub', '/etc/postgresql']);

describe('renderPlan: refused', () => {
  const refused: LayoutAssessment = {
    ok: false,
    refusals: ['the spare slot b (/dev/vda2) is mounted at /mnt/b; unmount it first', 'GRUB 2 (grub-editenv) is not installed on the host'],
    warnings: ['grubenv already has a one-time next_entry=x'],
  };
  const out = renderPlan(profile(), refused, PRESENT);
  const lines = out.split('\n');

  it('says nothing was written and lists every refusal', () => {
    expect(lines[0]).toBe('plan for db1 (deploy@db1.example.net:22) — nothing has been written');
    expect(out).toContain('REFUSED — the upgrade would stop before writing anything:');
    expect(lines).toContain('  - the spare slot b (/dev/vda2) is mounted at /mnt/b; unmount it first');
    expect(lines).toContain('  - GRUB 2 (grub-editenv) is not installed on the host');
  });

  it('prints the warnings before the refusals', () => {
    expect(lines[1]).toBe('warning: grubenv already has a one-time next_entry=x');
    expect(lines.indexOf('warning: grubenv already has a one-time next_entry=x')).toBeLessThan(lines.findIndex((l) => l.startsWith('REFUSED')));
  });

  it('lists no steps', () => {
    expect(out).not.toContain('steps:');
    expect(out).not.toContain('mkfs');
    expect(out).not.toContain('grub-reboot');
    expect(lines).toHaveLength(5);
  });
});

describe('renderPlan: ok', () => {
  const out = renderPlan(profile(), ok(facts(), ['the spare slot is smaller than the active one (1 < 2 bytes)']), PRESENT);
  const lines = out.split('\n');

  it('describes the host and both slots', () => {
    expect(lines[0]).toBe('plan for db1 (deploy@db1.example.net:22) — nothing has been written');
    expect(lines).toContain('warning: the spare slot is smaller than the active one (1 < 2 bytes)');
    expect(lines).toContain('host: db1, Debian GNU/Linux 12 (bookworm), kernel 6.1.0-40-amd64, BIOS boot, GRUB grub-editenv (GRUB) 2.06-13+deb12u1');
    expect(lines).toContain('active slot a: /dev/vda1 (ext4, 10240 MiB, 2300 MiB used)');
    expect(lines).toContain('spare slot b: /dev/vda2 (10240 MiB)');
    expect(lines).toContain(`data: /dev/vda3 at /srv/data (UUID ${UUID_DATA}) — kept, mounted by UUID on the new slot`);
  });

  it('formats the spare with its slot label', () => {
    expect(lines).toContain(`  1. format /dev/vda2: mkfs.ext4 -L ab-slot-b -U ${UUID_B} (erases slot b)`);
  });

  it('omits -U when the spare has no filesystem UUID yet', () => {
    const f = facts();
    const o = renderPlan(profile(), ok({ ...f, spare: { ...f.spare, uuid: null } }), PRESENT);
    expect(o.split('\n')).toContain('  1. format /dev/vda2: mkfs.ext4 -L ab-slot-b (erases slot b)');
  });

  it('describes a debootstrap install with its extra packages', () => {
    expect(lines).toContain('  2. install Debian trixie from http://deb.debian.org/debian with debootstrap on the host (+ postgresql-17)');
  });

  it('describes an image install with format and a short sha256', () => {
    const sha = '0123456789abcdef'.repeat(4);
    const o = renderPlan(profile({ release: { source: 'image', url: 'https://images.example.net/trixie.tar.zst', sha256: sha, allowUnsigned: true } }), ok(), PRESENT);
    expect(o.split('\n')).toContain('  2. stream https://images.example.net/trixie.tar.zst (tar.zst, sha256 0123456789ab…) over SSH and unpack onto slot b, the host checking the digest of what it received');
  });

  it('a pulled image: where the host connects, not "over SSH"', () => {
    const release = { source: 'image', format: 'ext4-image', url: '/srv/images/trixie.ext4.zst', manifest: '/srv/images/trixie.ext4.zst.manifest', allowUnsigned: true, sha256: '0123456789abcdef'.repeat(4) };
    const o = renderPlan(profile({ release: { ...release, pull: { listenAddress: '192.0.2.1', listenPort: 17070 } } }), ok(), PRESENT);
    expect(o.split('\n')).toContain(
      '  2. stream /srv/images/trixie.ext4.zst (ext4-image, sha256 0123456789ab…) pulled by the host from 192.0.2.1 port 17070 and write it to /dev/vda2 with dd, the host checking the digest of what it received; then e2fsck, UUID and label of slot b, resize2fs to the slot',
    );
  });

  describe('shows how the release is authenticated, and whether it was', () => {
    const sha = 'fedcba9876543210'.repeat(4);
    const signed = profile({
      release: { source: 'image', url: '/srv/images/trixie.tar.zst', signature: '/srv/images/trixie.tar.zst.minisig', publicKey: '/etc/ab-upgrade/release.pub' },
    });
    const step2 = (p: Profile, release?: ReleaseCheck) => {
      const l = renderPlan(p, ok(), PRESENT, release ? { release } : {}).split('\n');
      return l.slice(l.findIndex((x) => x.startsWith('  2. ')), l.findIndex((x) => x.startsWith('  3. ')));
    };

    it('a verified signature: key id, trusted comment (control characters as spaces) and the digest', () => {
      expect(step2(signed, { source: 'image', signed: true, keyId: 'B9FC5AA62FD91C02', verified: true, sha256: sha, bytes: 10, trustedComment: 'timestamp:1796197790\tfile:trixie.tar.zst\thashed' })).toEqual([
        '  2. stream /srv/images/trixie.tar.zst (tar.zst) over SSH and unpack onto slot b, the host checking the digest of what it received',
        `     signature: verified with minisign, key B9FC5AA62FD91C02 (trusted comment: timestamp:1796197790 file:trixie.tar.zst hashed); sha256 ${sha}`,
        '     steps 1 and 2 on the host at nice 10, I/O best-effort at its lowest level, the image uncapped',
      ]);
    });

    it('a signature that does not verify: NOT VERIFIED and why', () => {
      expect(step2(signed, { source: 'image', signed: true, keyId: 'B9FC5AA62FD91C02', verified: false, problem: 'release.signature: /srv/images/trixie.tar.zst.minisig cannot be read (no such file)' })[1]).toBe(
        '     signature: NOT VERIFIED (key B9FC5AA62FD91C02): release.signature: /srv/images/trixie.tar.zst.minisig cannot be read (no such file)',
      );
    });

    it('an image allowed unsigned, and a debootstrap release', () => {
      const unsigned = profile({ release: { source: 'image', url: '/srv/images/trixie.tar.zst', sha256: sha, allowUnsigned: true } });
      expect(step2(unsigned, { source: 'image', signed: false, keyId: null, verified: true, sha256: sha, bytes: 10, trustedComment: null })[1]).toBe(
        `     signature: none (allowUnsigned: true); sha256 ${sha} checked`,
      );
      expect(step2(profile(), { source: 'debootstrap' })[1]).toBe(
        '     authenticity: checked by debootstrap on the host against the Debian archive keyring (--force-check-gpg)',
      );
    });

    it('the install\'s priority on the host, and the image\'s cap (a debootstrap release has no image to cap)', () => {
      const capped = profile({ release: { source: 'image', url: '/srv/images/trixie.tar.zst', sha256: sha, allowUnsigned: true }, install: { nice: 19, io: 'idle', maxRate: '200Mbit/s' } });
      expect(step2(capped).at(-1)).toBe('     steps 1 and 2 on the host at nice 19, I/O only when the disk is idle, the image at most 25 MB/s');
      expect(step2(profile({ install: { io: 'normal' } })).at(-1)).toBe('     steps 1 and 2 on the host at nice 10, I/O priority unchanged');
    });
  });

  it('lists the carry list with copy for present paths and skip for absent ones', () => {
    expect(lines).toContain('       copy  /etc/hostname');
    expect(lines).toContain('       copy  /etc/ssh/ssh_host_ed25519_key');
    expect(lines).toContain('       copy  /etc/postgresql');
    expect(lines).toContain('       skip  /etc/netplan (absent)');
    expect(lines).toContain('       skip  /root/.ssh (absent)');
    const carryLines = lines.filter((l) => /^ {7}(copy|skip) /.test(l));
    // the defaults minus the two excluded RSA key files, plus /etc/postgresql
    expect(carryLines).toHaveLength(DEBIAN_CARRY_DEFAULTS.length - 2 + 1);
    expect(carryLines.filter((l) => l.startsWith('       copy '))).toHaveLength(PRESENT.size);
  });

  it('does not list excluded paths', () => {
    expect(out).not.toContain('ssh_host_rsa_key');
  });

  it('lists the regenerated files', () => {
    for (const p of ['/etc/fstab', '/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'])
      expect(lines).toContain(`       write ${p} (regenerated)`);
  });

  it('names the GRUB entry id and the new slot command line', () => {
    expect(lines).toContain(
      '     add menu entry ab-upgrade-slot-b to /boot/grub/custom.cfg (cmdline: console=ttyS0,115200n8 quiet net.ifnames=0 panic=10 ab.slot=b)',
    );
    expect(lines).toContain('  4. GRUB on slot a: back up /boot/grub/{custom.cfg,grubenv,grub.cfg} and /etc/default/grub,');
  });

  it('says GRUB_DEFAULT=saved will be set only when it is not already', () => {
    expect(out).toContain('set GRUB_DEFAULT=saved in /etc/default/grub and run update-grub (restored on rollback)');
    const f = facts();
    const saved = renderPlan(profile(), ok({ ...f, grub: { ...f.grub, defaultIsSaved: true } }), PRESENT);
    expect(saved).not.toContain('set GRUB_DEFAULT=saved');
  });

  it('uses grub-reboot for a firmware reboot', () => {
    expect(lines).toContain('  6. grub-reboot ab-upgrade-slot-b (one time) and reboot');
    expect(out).not.toContain('kexec');
  });

  it('uses kexec when the profile asks for it, keeping the GRUB default on the old slot', () => {
    const o = renderPlan(profile({ reboot: 'kexec' }), ok(), PRESENT);
    expect(o.split('\n')).toContain("  6. kexec into slot b's kernel (GRUB default stays on slot a)");
    expect(o).not.toContain('grub-reboot');
  });

  it('shows the approval timeout and comeback deadline from the profile', () => {
    expect(lines).toContain('  5. wait for approval (timeout 24h00m), then re-carry changed files');
    expect(lines).toContain('  7. wait up to 5m00s for a new boot on slot b, then health checks:');
    const o = renderPlan(profile({ timings: { approvalTimeout: '2h', comebackDeadline: '90s' } }), ok(), PRESENT);
    expect(o).toContain('(timeout 2h00m)');
    expect(o).toContain('wait up to 1m30s for a new boot');
  });

  it('lists every health check', () => {
    expect(lines).toContain('       systemd finished booting');
    expect(lines).toContain('       unit postgresql@17-main.service active');
    expect(lines).toContain('       tcp port 5432 listening');
    expect(lines).toContain('       pg ready');
    expect(lines).toContain('       curl -fs localhost/health');
  });

  it('commits with grub-install to the disk on BIOS and to the ESP on UEFI', () => {
    expect(lines).toContain('  8. commit: slot b takes over GRUB (custom.cfg, update-grub, grub-set-default, grub-install to /dev/vda)');
    const o = renderPlan(profile(), ok(facts({ bootMode: 'uefi', esp: { device: '/dev/vda15', uuid: 'A1B2-C3D4', mountPoint: '/boot/efi' } })), PRESENT);
    expect(o).toContain('grub-install to the ESP)');
    expect(o).toContain('UEFI boot');
  });

  it('describes the way back with and without a power driver', () => {
    expect(lines.at(-1)).toBe('  on failure: back to slot a over SSH, or by an operator reset (no power driver)');
    const o = renderPlan(
      profile({ power: { driver: 'ipmi', address: '10.0.0.21', user: 'ADMIN', passwordFile: '/etc/ab-upgrade/ipmi.pw' } }),
      ok(),
      PRESENT,
    );
    expect(o.split('\n').at(-1)).toBe('  on failure: back to slot a over SSH or by a ipmi reset');
  });

  it('plans the other direction for a host running slot b', () => {
    const f = facts();
    const onB = facts({
      active: { ...f.spare, name: 'b', usedBytes: 2300 * MiB },
      spare: { ...f.active, name: 'a', usedBytes: null },
      bootOwner: 'b',
    });
    const o = renderPlan(profile(), ok(onB), PRESENT).split('\n');
    expect(o).toContain(`  1. format /dev/vda1: mkfs.ext4 -L ab-slot-a -U ${UUID_A} (erases slot a)`);
    expect(o).toContain('  6. grub-reboot ab-upgrade-slot-a (one time) and reboot');
    expect(o.some((l) => l.includes('add menu entry ab-upgrade-slot-a') && l.includes('ab.slot=a'))).toBe(true);
    expect(o.at(-1)).toContain('back to slot b');
  });
});

describe('renderPlan: pre-flight report and local units', () => {
  const report: PreflightReport = {
    inhibitors: 1,
    warnings: 1,
    findings: [
      { severity: 'warning', what: 'fstab line "/dev/sdb1 none swap sw 0 0" names /dev/sdb1 by its kernel name, which is not stable across boots', fix: 'name it by UUID= or LABEL= (blkid /dev/sdb1)' },
      { severity: 'inhibitor', what: 'health unit redis-server.service does not exist on this host', fix: 'install or write it, or remove it from health.units' },
    ],
    fstab: [{ line: '/dev/sdb1 none swap sw 0 0', carried: 'kept: swap' }],
  };

  it('prints the report after the steps: counts, inhibitors, warnings, fstab', () => {
    const lines = renderPlan(profile(), ok(), PRESENT, { preflight: report }).split('\n');
    const at = lines.indexOf('pre-flight: 1 inhibitors, 1 warnings');
    expect(at).toBeGreaterThan(lines.findIndex((l) => l.startsWith('  on failure:')));
    expect(lines.slice(at + 1, at + 3)).toEqual([
      'INHIBITOR health unit redis-server.service does not exist on this host — fix: install or write it, or remove it from health.units',
      'WARNING fstab line "/dev/sdb1 none swap sw 0 0" names /dev/sdb1 by its kernel name, which is not stable across boots — fix: name it by UUID= or LABEL= (blkid /dev/sdb1)',
    ]);
    expect(lines).toContain('  /dev/sdb1 none swap sw 0 0  → kept: swap');
  });

  it('prints the report under a refusal too', () => {
    const refused: LayoutAssessment = { ok: false, refusals: ['GRUB 2 (grub-editenv) is not installed on the host'], warnings: [] };
    expect(renderPlan(profile(), refused, PRESENT, { preflight: report }).split('\n')).toContain('pre-flight: 1 inhibitors, 1 warnings');
  });

  it('lists the local units it will carry, minus excluded ones', () => {
    const p = profile({ carry: { files: ['/etc/postgresql'], exclude: ['/etc/systemd/system/old.timer'] } });
    const lines = renderPlan(p, ok(), PRESENT, { localUnits: ['/etc/systemd/system/myapp.service', '/etc/systemd/system/old.timer'] }).split('\n');
    expect(lines).toContain('       copy  /etc/systemd/system/myapp.service (local unit)');
    expect(lines.some((l) => l.includes('old.timer'))).toBe(false);
    expect(lines.indexOf('       copy  /etc/systemd/system/myapp.service (local unit)')).toBeLessThan(lines.indexOf('       write /etc/fstab (regenerated)'));
  });
});
