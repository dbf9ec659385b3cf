import { describe, expect, it } from 'vitest';
import {
  BEGIN_MARK,
  compareKernelVersions,
  END_MARK,
  newestKernel,
  renderMenuEntry,
  slotCmdline,
  slotEntryId,
  withManagedBlock,
  withoutManagedBlock,
  withSavedDefault,
  type SlotBootSpec,
} from '../../lib/grub.js';

const UUID_B = '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a';
const UUID_A = '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b';

const specB = (over: Partial<SlotBootSpec> = {}): SlotBootSpec => ({
  slot: 'b',
  title: 'Debian GNU/Linux 13 (trixie) - ab-upgrade slot b',
  uuid: UUID_B,
  kernel: '/boot/vmlinuz-6.12.48+deb13-amd64',
  initrd: '/boot/initrd.img-6.12.48+deb13-amd64',
  cmdline: 'console=ttyS0,115200n8 quiet panic=10 ab.slot=b',
  ...over,
});

const specA = (): SlotBootSpec => ({
  slot: 'a',
  title: 'Debian GNU/Linux 12 (bookworm) - ab-upgrade slot a',
  uuid: UUID_A,
  kernel: '/boot/vmlinuz-6.1.0-40-amd64',
  initrd: '/boot/initrd.img-6.1.0-40-amd64',
  cmdline: 'console=ttyS0,115200n8 quiet panic=10 ab.slot=a',
});

describe('slotEntryId', () => {
  it('names the GRUB entry after the slot', () => {
    expect(slotEntryId('a')).toBe('ab-upgrade-slot-a');
    expect(slotEntryId('b')).toBe('ab-upgrade-slot-b');
  });
});

describe('renderMenuEntry', () => {
  it('renders a menuentry that finds the slot by filesystem UUID', () => {
    expect(renderMenuEntry(specB()).split('\n')).toEqual([
      "menuentry 'Debian GNU/Linux 13 (trixie) - ab-upgrade slot b' --id ab-upgrade-slot-b {",
      '\tinsmod part_gpt',
      '\tinsmod part_msdos',
      '\tinsmod ext2',
      `\tsearch --no-floppy --fs-uuid --set=root ${UUID_B}`,
      `\tlinux /boot/vmlinuz-6.12.48+deb13-amd64 root=UUID=${UUID_B} ro console=ttyS0,115200n8 quiet panic=10 ab.slot=b`,
      '\tinitrd /boot/initrd.img-6.12.48+deb13-amd64',
      '}',
    ]);
  });

  it('omits the initrd line when there is none, and trims an empty cmdline', () => {
    const lines = renderMenuEntry(specB({ initrd: null, cmdline: '' })).split('\n');
    expect(lines.some((l) => l.includes('initrd'))).toBe(false);
    expect(lines).toContain(`\tlinux /boot/vmlinuz-6.12.48+deb13-amd64 root=UUID=${UUID_B} ro`);
    expect(lines.at(-1)).toBe('}');
  });

  it.each([
    ['a single quote', "Debian's slot"],
    ['a double quote', 'Debian "trixie"'],
    ['a dollar', 'slot $root'],
    ['a semicolon', 'slot b; reboot'],
    ['a newline', 'slot b\n}\nmenuentry x {'],
    ['a backtick', 'slot `b`'],
    ['a brace', 'slot {b}'],
    ['a hash', 'slot #b'],
  ])('refuses a title with %s', (_what, title) => {
    expect(() => renderMenuEntry(specB({ title }))).toThrow(/^title contains characters unsafe in a GRUB script/);
  });

  it.each([["'"], ['$'], [';'], ['\n'], ['`'], ['"'], ['|'], ['&'], ['\\']])('refuses %j in the kernel path and the command line', (ch) => {
    expect(() => renderMenuEntry(specB({ kernel: `/boot/vmlinuz${ch}x` }))).toThrow(/^kernel path contains characters unsafe/);
    expect(() => renderMenuEntry(specB({ initrd: `/boot/initrd${ch}x` }))).toThrow(/^initrd path contains characters unsafe/);
    expect(() => renderMenuEntry(specB({ cmdline: `quiet x=${ch}` }))).toThrow(/^kernel command line contains characters unsafe/);
  });

  it('refuses a UUID that is not hex digits and dashes', () => {
    expect(() => renderMenuEntry(specB({ uuid: `${UUID_B} --set=x` }))).toThrow(/bad filesystem UUID/);
    expect(() => renderMenuEntry(specB({ uuid: 'zzzz' }))).toThrow(/bad filesystem UUID/);
  });

  it('accepts the usual kernel parameters', () => {
    const cmdline = 'console=tty0 console=ttyS0,115200n8 net.ifnames=0 systemd.unit=multi-user.target rd.lvm.vg=vg0 ipv6.disable=1 panic=10 ab.slot=b';
    expect(renderMenuEntry(specB({ cmdline }))).toContain(`ro ${cmdline}`);
  });
});

describe('withManagedBlock / withoutManagedBlock', () => {
  const FOREIGN = `# custom entries of the operator
menuentry 'Memtest86+' {
\tlinux16 /boot/memtest86+x64.bin
}
`;

  it('creates the file with only our block when there was none', () => {
    const out = withManagedBlock('', [specB()]);
    expect(out).toBe(`${BEGIN_MARK}\n${renderMenuEntry(specB())}\n${END_MARK}\n`);
  });

  it('keeps foreign custom.cfg content and appends the block', () => {
    const out = withManagedBlock(FOREIGN, [specA(), specB()]);
    expect(out.startsWith(FOREIGN)).toBe(true);
    expect(out).toBe(`${FOREIGN}${BEGIN_MARK}\n${renderMenuEntry(specA())}\n${renderMenuEntry(specB())}\n${END_MARK}\n`);
    expect(out.match(/--id ab-upgrade-slot-/g)).toHaveLength(2);
  });

  it('is idempotent: applying twice gives the same text', () => {
    const once = withManagedBlock(FOREIGN, [specB()]);
    expect(withManagedBlock(once, [specB()])).toBe(once);
    const fresh = withManagedBlock('', [specA(), specB()]);
    expect(withManagedBlock(fresh, [specA(), specB()])).toBe(fresh);
  });

  it('replaces an existing block instead of adding a second one', () => {
    const old = withManagedBlock(FOREIGN, [specB({ kernel: '/boot/vmlinuz-6.12.41+deb13-amd64' })]);
    const out = withManagedBlock(old, [specB()]);
    expect(out.split(BEGIN_MARK)).toHaveLength(2);
    expect(out.split(END_MARK)).toHaveLength(2);
    expect(out).not.toContain('6.12.41');
    expect(out).toContain('/boot/vmlinuz-6.12.48+deb13-amd64');
    expect(out).toContain("menuentry 'Memtest86+' {");
  });

  it('keeps foreign content that follows the block', () => {
    const withTail = `${withManagedBlock(FOREIGN, [specB()])}menuentry 'Rescue' {\n\tlinux /boot/rescue\n}\n`;
    const out = withManagedBlock(withTail, [specA()]);
    expect(out).toContain("menuentry 'Memtest86+' {");
    expect(out).toContain("menuentry 'Rescue' {");
    expect(out).toContain('--id ab-upgrade-slot-a');
    expect(out).not.toContain('--id ab-upgrade-slot-b');
    expect(withManagedBlock(out, [specA()])).toBe(out);
  });

  it('withoutManagedBlock removes exactly our block', () => {
    expect(withoutManagedBlock(withManagedBlock(FOREIGN, [specB()]))).toBe(FOREIGN);
    expect(withoutManagedBlock(withManagedBlock('', [specB()]))).toBe('');
    const sandwich = `head\n${BEGIN_MARK}\nmenuentry 'x' {\n}\n${END_MARK}\ntail\n`;
    expect(withoutManagedBlock(sandwich)).toBe('head\ntail\n');
  });

  it('withoutManagedBlock leaves a file without our block untouched', () => {
    expect(withoutManagedBlock(FOREIGN)).toBe(FOREIGN);
    expect(withoutManagedBlock('')).toBe('');
  });

  it('withManagedBlock with no entries writes just the markers', () => {
    expect(withManagedBlock(FOREIGN, [])).toBe(`${FOREIGN}${BEGIN_MARK}\n${END_MARK}\n`);
  });

  it('refuses unsafe entries instead of writing a broken custom.cfg', () => {
    expect(() => withManagedBlock(FOREIGN, [specB({ title: "it's" })])).toThrow(/unsafe/);
  });
});

describe('slotCmdline', () => {
  const RUNNING = `BOOT_IMAGE=/boot/vmlinuz-6.1.0-40-amd64 root=UUID=${UUID_A} ro console=tty0 console=ttyS0,115200n8 quiet`;

  it('drops what names a root or boot image, keeps console=, adds panic=10 and ab.slot', () => {
    expect(slotCmdline(RUNNING, 'b', '')).toBe('console=tty0 console=ttyS0,115200n8 quiet panic=10 ab.slot=b');
  });

  it('drops an earlier ab.slot, rw, rootflags, rootfstype and init', () => {
    const out = slotCmdline(`${RUNNING} rw rootflags=data=ordered rootfstype=ext4 init=/bin/sh ab.slot=a`, 'b', '');
    expect(out.split(' ')).toEqual(['console=tty0', 'console=ttyS0,115200n8', 'quiet', 'panic=10', 'ab.slot=b']);
  });

  it('adds panic=10 once, even if the running cmdline has one', () => {
    const out = slotCmdline(`${RUNNING} panic=10 ab.slot=a`, 'a', '');
    expect(out.match(/panic=/g)).toHaveLength(1);
    expect(out.endsWith('panic=10 ab.slot=a')).toBe(true);
    expect(out.match(/ab\.slot=/g)).toHaveLength(1);
  });

  it("keeps the operator's own panic= instead of adding panic=10", () => {
    const out = slotCmdline(RUNNING, 'b', 'panic=30');
    expect(out).toContain('panic=30');
    expect(out).not.toContain('panic=10');
  });

  it('appends extra kernel args without duplicating ones already present', () => {
    const out = slotCmdline(RUNNING, 'b', '  console=ttyS0,115200n8   net.ifnames=0 ');
    expect(out).toBe('console=tty0 console=ttyS0,115200n8 quiet net.ifnames=0 panic=10 ab.slot=b');
  });

  it('does not drop parameters that merely start like a dropped one', () => {
    const out = slotCmdline('root=/dev/vda1 rootwait rootdelay=5 roottest ro', 'a', '');
    expect(out).toBe('rootwait rootdelay=5 roottest panic=10 ab.slot=a');
  });

  it('copes with an empty running cmdline', () => {
    expect(slotCmdline('', 'a', '')).toBe('panic=10 ab.slot=a');
    expect(slotCmdline('  \n', 'b', 'quiet')).toBe('quiet panic=10 ab.slot=b');
  });
});

describe('newestKernel / compareKernelVersions', () => {
  it('picks 6.12.48+deb13-amd64 over 6.1.0-40-amd64, with its initrd', () => {
    const files = [
      'config-6.1.0-40-amd64',
      'initrd.img-6.1.0-40-amd64',
      'System.map-6.1.0-40-amd64',
      'vmlinuz-6.1.0-40-amd64',
      'config-6.12.48+deb13-amd64',
      'initrd.img-6.12.48+deb13-amd64',
      'System.map-6.12.48+deb13-amd64',
      'vmlinuz-6.12.48+deb13-amd64',
      'grub',
    ];
    expect(newestKernel(files)).toEqual({
      kernel: '/boot/vmlinuz-6.12.48+deb13-amd64',
      initrd: '/boot/initrd.img-6.12.48+deb13-amd64',
      version: '6.12.48+deb13-amd64',
    });
    expect(newestKernel([...files].reverse())?.version).toBe('6.12.48+deb13-amd64');
  });

  it('compares 6.1.0-9 and 6.1.0-10 numerically', () => {
    expect(newestKernel(['vmlinuz-6.1.0-10-amd64', 'vmlinuz-6.1.0-9-amd64'])?.version).toBe('6.1.0-10-amd64');
    expect(newestKernel(['vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.1.0-10-amd64'])?.version).toBe('6.1.0-10-amd64');
    expect(compareKernelVersions('6.1.0-9-amd64', '6.1.0-10-amd64')).toBeLessThan(0);
    expect(compareKernelVersions('6.1.0-10-amd64', '6.1.0-9-amd64')).toBeGreaterThan(0);
  });

  it('compares the upstream patch level of +debN kernels numerically', () => {
    expect(compareKernelVersions('6.12.9+deb13-amd64', '6.12.10+deb13-amd64')).toBeLessThan(0);
    expect(newestKernel(['vmlinuz-6.12.10+deb13-amd64', 'vmlinuz-6.12.9+deb13-amd64'])?.version).toBe('6.12.10+deb13-amd64');
    expect(newestKernel(['vmlinuz-6.12.9+deb13-amd64', 'vmlinuz-6.12.10+deb13-amd64'])?.version).toBe('6.12.10+deb13-amd64');
  });

  it('orders a list of Debian kernels', () => {
    const sorted = ['6.12.48+deb13-amd64', '5.10.0-35-amd64', '6.1.0-40-amd64', '6.1.0-9-amd64', '6.12.41+deb13-amd64'].sort(compareKernelVersions);
    expect(sorted).toEqual(['5.10.0-35-amd64', '6.1.0-9-amd64', '6.1.0-40-amd64', '6.12.41+deb13-amd64', '6.12.48+deb13-amd64']);
    expect(compareKernelVersions('6.1.0-40-amd64', '6.1.0-40-amd64')).toBe(0);
  });

  it('gives a null initrd when the newest kernel has none', () => {
    expect(newestKernel(['vmlinuz-6.1.0-40-amd64', 'initrd.img-6.1.0-39-amd64'])).toEqual({
      kernel: '/boot/vmlinuz-6.1.0-40-amd64',
      initrd: null,
      version: '6.1.0-40-amd64',
    });
  });

  it('returns null without any vmlinuz-*', () => {
    expect(newestKernel([])).toBeNull();
    expect(newestKernel(['vmlinuz', 'initrd.img-6.1.0-40-amd64', 'grub', 'vmlinuz-'])).toBeNull();
  });
});

describe('withSavedDefault', () => {
  it('replaces GRUB_DEFAULT=0 with saved and keeps the rest', () => {
    const before = '# comment\nGRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n';
    expect(withSavedDefault(before)).toBe('# comment\nGRUB_DEFAULT=saved\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n');
  });

  it('replaces every assignment, including indented and quoted ones', () => {
    expect(withSavedDefault('GRUB_DEFAULT="1>2"\n  GRUB_DEFAULT=3\n')).toBe('GRUB_DEFAULT=saved\nGRUB_DEFAULT=saved\n');
  });

  it('leaves a commented-out GRUB_DEFAULT alone and appends one', () => {
    expect(withSavedDefault('#GRUB_DEFAULT=0\nGRUB_TIMEOUT=5')).toBe('#GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DEFAULT=saved\n');
  });

  it('appends to an empty file or one without a trailing newline', () => {
    expect(withSavedDefault('')).toMatch(/^\n?GRUB_DEFAULT=saved\n$/);
    expect(withSavedDefault('GRUB_TIMEOUT=5\n\n\n')).toBe('GRUB_TIMEOUT=5\nGRUB_DEFAULT=saved\n');
  });

  it('is idempotent', () => {
    const once = withSavedDefault('GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n');
    expect(withSavedDefault(once)).toBe(once);
    const appended = withSavedDefault('GRUB_TIMEOUT=5\n');
    expect(withSavedDefault(appended)).toBe(appended);
  });
});
