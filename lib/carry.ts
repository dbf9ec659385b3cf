// What a new root needs to be the same host. Paths are carried when they exist on the old slot;
// fstab, the account files and /etc/default/grub are regenerated instead (see activities/carry.ts).
export const DEBIAN_CARRY_DEFAULTS: readonly string[] = [
  '/etc/hostname',
  '/etc/hosts',
  '/etc/machine-id',
  '/var/lib/dbus/machine-id',
  '/etc/ssh/ssh_host_ed25519_key',
  '/etc/ssh/ssh_host_ed25519_key.pub',
  '/etc/ssh/ssh_host_ecdsa_key',
  '/etc/ssh/ssh_host_ecdsa_key.pub',
  '/etc/ssh/ssh_host_rsa_key',
  '/etc/ssh/ssh_host_rsa_key.pub',
  '/etc/ssh/sshd_config.d',
  '/etc/network/interfaces',
  '/etc/network/interfaces.d',
  '/etc/systemd/network',
  '/etc/netplan',
  '/etc/NetworkManager/system-connections',
  '/etc/resolv.conf',
  '/etc/timezone',
  '/etc/localtime',
  '/etc/default/locale',
  '/etc/sudoers.d',
  '/root/.ssh',
  '/etc/default/grub',
];

/** Files we write ourselves on the new slot; never copied verbatim. */
export const REGENERATED = ['/etc/fstab', '/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'] as const;

export function carryList(profile: { carry: { defaults: boolean; files: string[]; exclude: string[] } }): string[] {
  const wanted = [...(profile.carry.defaults ? DEBIAN_CARRY_DEFAULTS : []), ...profile.carry.files];
  // "/etc/nginx/" excludes /etc/nginx itself too, not only what lies below it.
  const excluded = (p: string) =>
    profile.carry.exclude.some((e) => {
      const dir = e.replace(/\/+$/, '');
      return p === dir || p.startsWith(`${dir}/`);
    });
  const regenerated = new Set<string>(REGENERATED);
  return [...new Set(wanted)].filter((p) => !excluded(p) && !regenerated.has(p));
}
