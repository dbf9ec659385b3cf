// Every string of a host profile that reaches the host, with hostile values (quotes, $(…),
// backticks, ";", glob characters, a leading dash, spaces, unicode), against a real sshd: either
// the profile parser refuses the value, naming the field, or the value arrives in the argv of
// the command that consumes it on the host verbatim, as one argument, and no shell ran it.
//
// How argv is observed: this sshd sets PATH (sshd_config SetEnv) to a directory of small shims
// in front of the system's. Each shim writes its own argv, NUL-separated, to a file of its own,
// then runs the real command (sh, cp, realpath) or answers like it (systemctl, which needs no
// running systemd then).
//
// Fields that never reach the host are not sent anywhere here: name, host, port, hostKey, auth.*
// (used by the controller's SSH client), carry.exclude and health.commands[].name (used on the
// controller only), power.* (the controller's power driver), release.url/signature/publicKey (read
// on the controller).
//
// Two fields need a spare slot to reach the host, so they run only as root, on a loop device
// mounted where the runbook mounts the spare: release.mirror (installRelease hands it to
// debootstrap) and kernelArgs on the kexec path (trialBoot hands the kernel command line to the
// spare's kexec through chroot). There the shims also stand in for debootstrap, chroot (neither
// installs nor loads anything), systemd-run (so no reboot is ever scheduled), logger, and cat for
// /sys/kernel/kexec_loaded alone (it answers "loaded").
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trialBoot } from '../../activities/boot.js';
import { copyPaths } from '../../activities/carry.js';
import { checkHealth, measureHostDowntime } from '../../activities/health.js';
import { gatherRawFacts } from '../../activities/inspect.js';
import { gatherPreflight } from '../../activities/preflight.js';
import { SPARE_MNT } from '../../activities/host-io.js';
import { installRelease } from '../../activities/release.js';
import { closeAllHosts, SshHost } from '../../activities/ssh.js';
import { carryList } from '../../lib/carry.js';
import type { BootEntry, HostFacts } from '../../lib/contract.js';
import { slotCmdline, slotEntryId } from '../../lib/grub.js';
import { profileDeviceRefs } from '../../lib/layout.js';
import { parseProfile, ProfileError, type Profile } from '../../lib/profile.js';
import { sshdProfile, startSshd, type Sshd } from '../helpers/sshd.js';

const T = 60_000;
const PWNED = join(tmpdir(), `ab-upgrade-hostile-pwned-${process.pid}`);

/** The payloads: each one, if a shell ever interpreted it, would show (PWNED) or change the argv. */
const HOSTILE = [
  `it's "quoted"`,
  `$(touch ${PWNED})`,
  `\`touch ${PWNED}\``,
  `x; touch ${PWNED}`,
  `a && touch ${PWNED} || b`,
  // The same without blanks, for fields that refuse them.
  `$(touch\${IFS}${PWNED})`,
  `\`touch\${IFS}${PWNED}\``,
  `;touch\${IFS}${PWNED};`,
  '*',
  '?x[ab]',
  '{a,b}',
  '-n',
  '--help',
  ' spaced  out ',
  'tab\there',
  'ünïcødé ✓ 日本語 🙂',
  '$HOME ${PATH} ~',
  "'\\''",
  '#not-a-comment',
  'new\nline',
  '|&><!',
];

/** The kernel the stand-in debootstrap leaves in the spare's /boot. */
const KV = '6.12.48+deb13-amd64';
/** What a root needs for installRelease's checks and the kexec load: a kernel, an initrd, os-release, proc/sys/dev. */
const POPULATE = `r=$1; mkdir -p "$r/boot" "$r/etc" "$r/proc" "$r/sys" "$r/dev"
: > "$r/boot/vmlinuz-${KV}"; : > "$r/boot/initrd.img-${KV}"
printf '%s\\n' 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"' > "$r/etc/os-release"`;

let sshd: Sshd;
let dir: string;
let shims: string;
let calls: string;
let h: SshHost;

/** Every shimmed command run on the host so far: [name, ...argv]. */
function observed(): string[][] {
  return readdirSync(calls).map((f) => readFileSync(join(calls, f), 'utf8').split('\0').slice(0, -1));
}
const argvOf = (name: string) => observed().filter(([n]) => n === name).map(([, ...argv]) => argv);

function shim(name: string, body: string): void {
  const file = join(shims, name);
  writeFileSync(file, `#!/bin/sh\nf=$(mktemp "${calls}/call.XXXXXXXX")\nprintf '%s\\0' ${name} "$@" > "$f"\n${body}\n`);
  chmodSync(file, 0o755);
}

beforeAll(async () => {
  rmSync(PWNED, { force: true });
  // Not under /tmp: a profile never carries anything from there.
  dir = mkdtempSync('/var/tmp/ab-hostile-');
  shims = join(dir, 'shims');
  calls = join(dir, 'calls');
  mkdirSync(shims);
  mkdirSync(calls);
  shim('sh', 'exec /bin/sh "$@"');
  shim('cp', 'exec /bin/cp "$@"');
  shim('realpath', 'exec /usr/bin/realpath "$@"');
  // debootstrap's target is its second-to-last argument: given what installRelease then reads.
  shim('debootstrap', `root=; prev=\nfor a in "$@"; do root=$prev; prev=$a; done\nset -- "$root"\n${POPULATE}`);
  shim('chroot', 'exit 0');
  shim('systemd-run', 'exit 0');
  shim('logger', 'exit 0');
  shim('cat', '[ "$*" = /sys/kernel/kexec_loaded ] && { echo 1; exit 0; }\nexec /bin/cat "$@"');
  shim(
    'systemctl',
    `case "$*" in
  *is-system-running*) echo running ;;
  *is-active*) echo active ;;
  *ActiveEnterTimestampMonotonic*) echo 0 ;;
esac
exit 0`,
  );
  sshd = await startSshd({ extraConfig: [`SetEnv PATH=${shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`] });
  h = await SshHost.connect(sshd.target());
  // Only with the shims in front does this test observe anything.
  expect((await h.exec(['sh', '-c', 'command -v systemctl'])).stdout.trim()).toBe(join(shims, 'systemctl'));
}, T);

afterAll(async () => {
  h?.close();
  closeAllHosts();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  rmSync(PWNED, { force: true });
}, T);

/** The profile with `override`, or the parser's refusal (its message). */
function tryProfile(override: Record<string, unknown>): { profile: Profile } | { refused: string } {
  try {
    return { profile: sshdProfile(sshd, override) };
  } catch (e) {
    if (!(e instanceof ProfileError)) throw e;
    return { refused: e.message };
  }
}

/** Splits HOSTILE (made into `field`'s values by `value`) into accepted values and checks each refusal names `field`. */
function accepted(field: string, value: (s: string) => string, override: (v: string) => Record<string, unknown>): string[] {
  const ok: string[] = [];
  for (const s of HOSTILE) {
    const v = value(s);
    const r = tryProfile(override(v));
    if ('profile' in r) ok.push(v);
    else expect(r.refused, `${field} = ${JSON.stringify(v)}`).toContain(`${field}`);
  }
  return ok;
}

describe('profile strings with hostile values', () => {
  it('refuses them where the field has a grammar, naming the field', () => {
    const refusedAll: [string, (v: string) => Record<string, unknown>][] = [
      ['user', (v) => ({ user: v })],
      ['name', (v) => ({ name: v })],
      ['slots.a', (v) => ({ slots: { a: `/dev/${v}`, b: '/dev/vdb3' } })],
      ['data.device', (v) => ({ data: { device: `/dev/${v}`, mountPoint: '/srv' } })],
      ['release.suite', (v) => ({ release: { source: 'debootstrap', suite: v } })],
      ['release.components.0', (v) => ({ release: { source: 'debootstrap', suite: 'trixie', components: [v] } })],
      ['release.packages.0', (v) => ({ release: { source: 'debootstrap', suite: 'trixie', packages: [v] } })],
      ['kernelArgs', (v) => ({ kernelArgs: v })],
    ];
    for (const [field, override] of [...refusedAll, ['health.units.0', (v: string) => ({ health: { units: [v] } })] as const]) {
      let refusals = 0;
      for (const s of HOSTILE) {
        const r = tryProfile(override(s));
        if ('refused' in r) {
          refusals++;
          expect(r.refused, `${field} = ${JSON.stringify(s)}`).toMatch(new RegExp(`^  - ${field.replace(/\./g, '\\.')}: `, 'm'));
        } else {
          // What a grammar lets through holds nothing a shell would act on but blanks (which quoting keeps).
          expect(s, field).toMatch(/^[A-Za-z0-9 ._:,=/@+()-]*$/);
        }
      }
      expect(refusals, field).toBeGreaterThanOrEqual(HOSTILE.length - 3);
    }
  });

  it('carry.files and data.mountPoint: carried verbatim (cp gets each path as one argument), nothing run', { timeout: T }, async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    // Each payload as a file name ("/" cannot be in one; absolute paths only).
    const files = accepted('carry.files.0', (s) => join(src, s.replace(/\//g, '_')), (v) => ({ carry: { defaults: false, files: [v] } }));
    const refused = HOSTILE.filter((s) => !files.includes(join(src, s.replace(/\//g, '_'))));
    expect(refused).toEqual(['new\nline']); // a newline cannot be carried; everything else can
    for (const f of files) writeFileSync(f, `content of ${f}`);
    writeFileSync(join(src, 'x'), 'must not be carried: only a glob would pick it');
    // The data mount point, hostile too (fstab forbids blanks, "\" and "#" in it).
    const mounts = accepted('data.mountPoint', (s) => `/srv/${s}`, (v) => ({ data: { device: '/dev/vdb4', mountPoint: v } }));
    expect(mounts.length).toBeGreaterThanOrEqual(8);
    const mountPoint = mounts.find((m) => m.includes('$('))!;
    const profile = sshdProfile(sshd, { carry: { defaults: false, files }, data: { device: '/dev/vdb4', mountPoint } });

    const root = join(dir, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin/sh'), '');
    chmodSync(join(root, 'bin/sh'), 0o755);
    const paths = carryList(profile);
    expect(paths).toEqual(files);
    const onData = `${mountPoint}/inside`;
    const r = await copyPaths(h, root, false, profile.data.mountPoint, [...paths, onData], join(dir, 'digest.key'));

    expect(r.carried).toEqual(files);
    expect(r.skipped).toEqual([{ path: onData, reason: 'on the data partition, which the new slot mounts as it is' }]);
    for (const f of files) expect(readFileSync(join(root, f), 'utf8')).toBe(`content of ${f}`);
    expect(existsSync(join(root, src, 'x'))).toBe(false);
    // The script's argv: every path, and the mount point as $4, verbatim.
    const copy = argvOf('sh').find((a) => a.includes(onData))!;
    expect(copy.slice(-(files.length + 1))).toEqual([...files, onData]);
    expect(copy[copy.indexOf('ab-upgrade') + 4]).toBe(mountPoint);
    // cp got each path as one argument, after "--".
    const cps = argvOf('cp');
    for (const f of files) expect(cps, f).toContainEqual(['-a', '--', f, join(root, f)]);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('health.units and health.commands: systemctl and sh -c get them verbatim', { timeout: 2 * T }, async () => {
    // Unit names within the grammar that still look like options or odd names.
    const units = accepted('health.units.0', (s) => s, (v) => ({ health: { units: [v] } }));
    expect(units).toEqual(['-n', '--help']);
    units.push('-Hroot@192.0.2.1', '-.mount', 'getty@tty1.service', 'a:b.socket');
    // A check command is shell by design: it must reach `sh -c` as exactly that one string.
    const dq = (x: string) => JSON.stringify(x).replace(/\$/g, '\\$').replace(/`/g, '\\`');
    const runs = [
      `printf '%s\\n' ${HOSTILE.map(dq).join(' ')} >/dev/null`,
      `x=$(printf '%s' "it's"); [ "$x" = "it's" ] && echo \`echo tick\` ';' '*' {a,b} >/dev/null # a comment`,
      "-n 2>/dev/null || true",
    ];
    const profile = sshdProfile(sshd, {
      health: { units, commands: runs.map((run, i) => ({ name: `check ${i}`, run, timeout: '20s' })) },
      timings: { healthTimeout: '30s' }, // bounds each round's wait too: generous for a loaded machine
    });

    const report = await checkHealth(profile);
    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)).toEqual([]);
    const systemctl = argvOf('systemctl');
    for (const u of units) expect(systemctl, u).toContainEqual(['is-active', '--', u]);
    const sh = argvOf('sh');
    for (const run of runs) expect(sh, run).toContainEqual(['-c', '--', run]);

    await measureHostDowntime(profile, { mode: 'firmware', issuedAt: Date.now(), bootIdBefore: 'x', hostIssuedAtS: Date.now() / 1000 });
    for (const u of units) expect(argvOf('systemctl'), u).toContainEqual(['show', '-P', 'ActiveEnterTimestampMonotonic', '--', u]);

    await gatherPreflight(h, profile, join(dir, 'no-units'));
    for (const u of units) expect(argvOf('systemctl'), u).toContainEqual(['show', '--value', '-p', 'FragmentPath', '--', u]);
    expect(existsSync(PWNED)).toBe(false);
  });

  it('slots and data.device (/dev/… paths): realpath gets them verbatim after "--"', { timeout: T }, async () => {
    const refs = { a: '/dev/disk/by-id/-n:x+y_1.2', b: '/dev/disk/by-path/--help', data: '/dev/disk/by-id/a.b:c+d' };
    const profile = sshdProfile(sshd, { slots: { a: refs.a, b: refs.b }, data: { device: refs.data, mountPoint: '/srv' } });
    await gatherRawFacts(h, profileDeviceRefs(profile));
    const realpaths = argvOf('realpath');
    for (const ref of Object.values(refs)) expect(realpaths, ref).toContainEqual(['-e', '--', ref]);
  });
});

describe.skipIf(process.getuid?.() !== 0)('profile strings that reach the host through the spare slot (root: a loop device)', () => {
  const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  let loop: string;
  let facts: HostFacts;

  beforeAll(() => {
    const img = join(dir, 'spare.img');
    run('truncate', '-s', '64M', img);
    loop = run('losetup', '-f', '--show', img);
    run('mkfs.ext4', '-q', '-F', '-L', 'ab-slot-b', loop);
    const m = join(dir, 'populate');
    mkdirSync(m);
    run('mount', loop, m);
    try {
      run('sh', '-c', POPULATE, 'populate', m);
    } finally {
      run('umount', m);
    }
    facts = {
      bootMode: 'bios',
      cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-9-amd64 root=UUID=11111111-2222-3333-4444-555555555555 ro quiet console=tty0',
      spare: { name: 'b', device: loop, partuuid: null, uuid: null, label: 'ab-slot-b', fstype: 'ext4', sizeBytes: 64 << 20, usedBytes: null },
    } as HostFacts;
  }, T);

  afterAll(() => {
    try {
      // -R: also whatever the kexec load bound below it, had it stopped half way.
      if (run('sh', '-c', 'findmnt -n -o SOURCE --mountpoint "$1" || true', 'sh', SPARE_MNT) === loop) run('umount', '-R', SPARE_MNT);
    } finally {
      if (loop) run('losetup', '-d', loop);
    }
  }, T);

  it('release.mirror: debootstrap gets it verbatim as its one mirror argument, nothing run', { timeout: 4 * T }, async () => {
    const debootstrapRelease = (mirror: string) => ({ release: { source: 'debootstrap', suite: 'trixie', mirror } });
    // The schema wants a URL: in its path every payload is accepted; as its host, what a URL
    // cannot hold there (blanks, quotes, "|&<>", "#", "?") is refused, naming release.mirror, but
    // the blank-free command substitutions and ";" pass.
    const inPath = accepted('release.mirror', (s) => `http://deb.example/${s}`, debootstrapRelease);
    expect(inPath).toHaveLength(HOSTILE.length);
    const asHost = accepted('release.mirror', (s) => `http://${s}/debian`, debootstrapRelease);
    expect(HOSTILE.length - asHost.length).toBeGreaterThanOrEqual(8);
    expect(asHost).toEqual(
      expect.arrayContaining([`http://$(touch\${IFS}${PWNED})/debian`, `http://\`touch\${IFS}${PWNED}\`/debian`, `http://;touch\${IFS}${PWNED};/debian`, 'http://-n/debian']),
    );

    const mirrors = [...inPath, ...asHost].map((given) => ({ given, parsed: (sshdProfile(sshd, debootstrapRelease(given)).release as { mirror: string }).mirror }));
    // The URL check trims the value and drops tabs and newlines (as a URL parser does); every
    // other byte, shell syntax included, is kept as given.
    for (const { given, parsed } of mirrors) if (!/^\s|\s$|[\t\n]/.test(given)) expect(parsed, given).toBe(given);
    expect(mirrors.filter(({ parsed }) => parsed.includes(`$(touch ${PWNED})`) || parsed.includes(`\`touch ${PWNED}\``)).length).toBeGreaterThanOrEqual(2);

    const include = 'linux-image-amd64,systemd-sysv,udev,dbus,openssh-server,ifupdown,isc-dhcp-client,initramfs-tools,kexec-tools,sudo,procps,iproute2,e2fsprogs,zstd,grub2-common,grub-pc-bin';
    for (const { parsed: mirror } of mirrors) {
      const r = await installRelease(h, sshdProfile(sshd, debootstrapRelease(mirror)), facts);
      expect(r.kernel, mirror).toBe(KV);
      // One debootstrap run with this mirror: its argv exactly, the mirror last and whole.
      const runs = argvOf('debootstrap').filter((a) => a.at(-1) === mirror);
      expect(runs, mirror).toEqual([['--force-check-gpg', '--variant=minbase', '--components=main', `--include=${include}`, 'trixie', SPARE_MNT, mirror]]);
      // The install script got it as $3.
      const script = argvOf('sh').filter((a) => a[0] === '-c' && a[1]!.includes('"$db" --force-check-gpg') && a[5] === mirror);
      expect(script.map((a) => a.slice(2)), mirror).toEqual([['ab-upgrade', SPARE_MNT, 'trixie', mirror, include, 'main', '/run/ab-upgrade/install.lock']]);
    }
    expect(existsSync(PWNED)).toBe(false);
  });

  it('kernelArgs on the kexec path: kexec gets the command line verbatim as one argument', { timeout: 2 * T }, async () => {
    // The GRUB grammar refuses every payload but these, naming the field.
    expect(accepted('kernelArgs', (s) => s, (v) => ({ kernelArgs: v }))).toEqual(['-n', '--help', ' spaced  out ']);
    // The most hostile kernelArgs it accepts: options, "=" and "," nests, parentheses, "@", "+".
    const kernelArgs = '-n --help console=ttyS0,115200n8 dyndbg=file:a.c,+p x=(a)b@c/d:e,f=g (touch) ==,, +- /a/b.c_d:e@f';
    const profile = sshdProfile(sshd, { reboot: 'kexec', kernelArgs });
    expect(profile.kernelArgs).toBe(kernelArgs);
    // The entry as addBootEntry makes it (not run here: it would rewrite this machine's /boot/grub).
    const cmdline = slotCmdline(facts.cmdline, 'b', profile.kernelArgs);
    expect(cmdline).toBe(`quiet console=tty0 ${kernelArgs} panic=10 ab.slot=b`);
    const entry: BootEntry = {
      entryId: slotEntryId('b'),
      targetSlot: 'b',
      title: 'ab-upgrade: slot b - Debian GNU/Linux 13 (trixie)',
      kernel: `/boot/vmlinuz-${KV}`,
      initrd: `/boot/initrd.img-${KV}`,
      cmdline,
      previousDefault: null,
      changedGrubDefault: false,
      backupDir: '/boot/grub/ab-upgrade-backup-x',
    };
    // trialBoot ends by scheduling "systemctl kexec": only ever with the stand-ins in front.
    for (const c of ['systemd-run', 'systemctl', 'chroot', 'logger']) {
      expect((await h.exec(['sh', '-c', `command -v ${c}`])).stdout.trim()).toBe(join(shims, c));
    }

    const r = await trialBoot(h, profile, facts, entry);
    expect(r.mode).toBe('kexec');
    const uuid = run('blkid', '-s', 'UUID', '-o', 'value', loop);
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const loads = argvOf('chroot').filter((a) => a[1] === 'kexec');
    expect(loads).toEqual([[SPARE_MNT, 'kexec', '-s', '-l', `/boot/vmlinuz-${KV}`, `--command-line=root=UUID=${uuid} ro ${cmdline}`, `--initrd=/boot/initrd.img-${KV}`]]);
    expect(argvOf('systemd-run')).toEqual([['--quiet', '--on-active=1', '--timer-property=AccuracySec=100ms', 'systemctl', 'kexec']]);
    // The bind mounts for the chroot were undone.
    for (const d of ['proc', 'sys', 'dev']) expect(run('sh', '-c', 'mountpoint -q "$1" && echo yes || echo no', 'sh', join(SPARE_MNT, d))).toBe('no');
    expect(existsSync(PWNED)).toBe(false);
  });
});
