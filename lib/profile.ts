// The host profile: everything the runbook needs to know about one host, validated with zod.
// It holds references to secrets (key paths, password files, an agent socket), never secrets,
// because the profile travels inside workflow inputs and Temporal stores histories in clear.
import { z } from 'zod';
import { parseDurationMs } from './duration.js';

/** A block device named the way fstab and blkid name it, or a /dev path. */
export const deviceRefSchema = z
  .string()
  .regex(
    /^(?:(?:PART)?UUID=[0-9A-Fa-f-]{4,64}|(?:PART)?LABEL=[A-Za-z0-9._@+-]{1,64}|\/dev\/[A-Za-z0-9/_.:+-]+)$/,
    'must be PARTUUID=…, UUID=…, LABEL=…, PARTLABEL=… or a /dev/… path',
  );
export type DeviceRef = z.infer<typeof deviceRefSchema>;

const absPath = z
  .string()
  .regex(/^\/[^\0\n]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

/** A human duration ("90s", "5m", seconds as a number) → milliseconds, with a default. */
export const duration = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDurationMs(v);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 90s, 5m, 1h30m)` });
        return z.NEVER;
      }
      return ms;
    });

/** SHA256:<base64> (as ssh-keygen -lf prints) or an OpenSSH public key line (known_hosts style). */
export const hostKeySchema = z
  .string()
  .trim()
  .refine(
    (k) =>
      /^SHA256:[A-Za-z0-9+/]{43}=?$/.test(k) ||
      /^(?:\S+\s+)?(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-\S+)\s+[A-Za-z0-9+/]+={0,2}(?:\s.*)?$/.test(k),
    'must be "SHA256:…" (ssh-keygen -lf) or a known_hosts/public key line "ssh-ed25519 AAAA…"',
  );

const hostnameOrIp = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:_-]+$/, 'must be a hostname or an IP address');

const debootstrapRelease = z.object({
  source: z.literal('debootstrap'),
  suite: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a Debian suite name such as trixie'),
  mirror: z.string().url().default('http://deb.debian.org/debian'),
  components: z.array(z.string().regex(/^[a-z0-9-]+$/)).default(['main']),
  /** Extra packages beyond the kernel, GRUB, systemd and openssh-server that every slot needs. */
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'must be a Debian package name')).default([]),
});

const imageRelease = z
  .object({
    source: z.literal('image'),
    /** A path on the controller, or an http(s) URL the controller downloads from. */
    url: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    format: z.enum(['tar.zst', 'tar.gz', 'tar']).optional(),
  })
  .transform((r) => ({ ...r, format: r.format ?? inferImageFormat(r.url) }));

function inferImageFormat(url: string): 'tar.zst' | 'tar.gz' | 'tar' {
  if (/\.tar\.zst$|\.tzst$/.test(url)) return 'tar.zst';
  if (/\.tar\.gz$|\.tgz$/.test(url)) return 'tar.gz';
  return 'tar';
}

const powerSchema = z.discriminatedUnion('driver', [
  z.object({ driver: z.literal('none') }),
  z.object({ driver: z.literal('qmp'), socket: absPath }),
  z.object({
    driver: z.literal('ipmi'),
    address: hostnameOrIp,
    user: z.string().min(1),
    passwordFile: absPath,
    interface: z.enum(['lanplus', 'lan']).default('lanplus'),
  }),
  z.object({
    driver: z.literal('redfish'),
    url: z.string().url(),
    user: z.string().min(1),
    passwordFile: absPath,
    systemId: z.string().min(1).default('1'),
    insecureTls: z.boolean().default(false),
  }),
]);

const healthCommand = z.object({
  name: z.string().min(1).optional(),
  /** Runs with `sh -c` on the host; it is the operator's own check, so shell syntax is allowed. */
  run: z.string().min(1),
  timeout: duration('60s'),
});

export const profileSchema = z
  .object({
    /** The host's name in workflow ids and the CLI; defaults to `host`. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be letters, digits, ".", "_" or "-"').optional(),
    host: hostnameOrIp,
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/, 'must be a POSIX user name').default('root'),
    auth: z
      .object({
        identityFile: absPath.optional(),
        /** true: use $SSH_AUTH_SOCK; a path: that agent socket. */
        agent: z.union([z.boolean(), absPath]).optional(),
      })
      .refine((a) => a.identityFile !== undefined || (a.agent !== undefined && a.agent !== false), {
        message: 'give identityFile or agent',
      }),
    hostKey: hostKeySchema,
    become: z.enum(['root', 'sudo']).optional(),
    slots: z.union([
      z.literal('auto'),
      z.object({ a: deviceRefSchema, b: deviceRefSchema }).refine((s) => s.a !== s.b, {
        message: 'slot a and slot b must be different devices',
        path: ['b'],
      }),
    ]),
    data: z.object({ device: deviceRefSchema, mountPoint: absPath.refine((p) => p !== '/', 'must not be /') }),
    // discriminatedUnion, not union: zod's union reports a failed pipe (imageRelease has a
    // transform) only as "release: Invalid input", hiding which field (e.g. sha256) is wrong.
    release: z.discriminatedUnion('source', [debootstrapRelease, imageRelease]),
    carry: z
      .object({
        /** Carry the Debian defaults (identity, network, SSH host keys, ...) as well as `files`. */
        defaults: z.boolean().default(true),
        files: z.array(absPath).default([]),
        exclude: z.array(absPath).default([]),
      })
      .prefault({}),
    health: z
      .object({
        commands: z.array(healthCommand).default([]),
        units: z.array(z.string().regex(/^[A-Za-z0-9:_.@-]+$/, 'must be a systemd unit name')).default([]),
        tcpPorts: z.array(z.number().int().min(1).max(65535)).default([]),
      })
      .prefault({}),
    timings: z
      .object({
        approvalTimeout: duration('24h'),
        comebackDeadline: duration('5m'),
        pollInterval: duration('5s'),
        healthTimeout: duration('2m'),
      })
      .prefault({}),
    reboot: z.enum(['firmware', 'kexec']).default('firmware'),
    power: powerSchema.default({ driver: 'none' }),
    /** Extra kernel command line for the new slot (e.g. console=ttyS0). */
    kernelArgs: z.string().regex(/^[^\n'"`$;&|<>\\]*$/, 'must be plain kernel parameters').default(''),
  })
  .strict()
  .transform((p) => ({ ...p, name: p.name ?? p.host, become: p.become ?? (p.user === 'root' ? 'root' : 'sudo') }));

export type ProfileInput = z.input<typeof profileSchema>;
export type Profile = z.output<typeof profileSchema>;
export type PowerConfig = Profile['power'];
export type ReleaseConfig = Profile['release'];

/**
 * A parsed profile as profile-file content (what `ab-upgrade lab` writes for the operator):
 * durations, milliseconds once parsed, are written back with their unit, since a bare number
 * in a profile file means seconds. parseProfile(profileFileContent(p)) gives p again.
 */
export function profileFileContent(p: Profile): ProfileInput {
  const ms = (v: number) => `${v}ms`;
  const t = p.timings;
  return {
    ...p,
    health: { ...p.health, commands: p.health.commands.map((c) => ({ ...c, timeout: ms(c.timeout) })) },
    timings: { approvalTimeout: ms(t.approvalTimeout), comebackDeadline: ms(t.comebackDeadline), pollInterval: ms(t.pollInterval), healthTimeout: ms(t.healthTimeout) },
  };
}

/** A failed validation, worded for operators: one line per problem, each naming the field. */
export class ProfileError extends Error {
  constructor(public readonly problems: string[]) {
    super(`invalid host profile:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProfileError';
  }
}

export function formatZodIssues(error: z.ZodError, root = '(profile)'): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : root}: ${i.message}`);
}

export function parseProfile(input: unknown): Profile {
  const result = profileSchema.safeParse(input);
  if (!result.success) throw new ProfileError(formatZodIssues(result.error));
  return result.data;
}

/** Workflow id shared by upgrades and rollbacks: at most one of either runs per host. */
export function hostWorkflowId(name: string): string {
  return `ab-upgrade/${name}`;
}
