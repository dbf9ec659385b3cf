// The host profile's zod schemas, built by a function rather than at module load: the workflow
// sandbox evaluates every module once per workflow instance, and the schemas cost about 1.9 MB
// of V8 heap per copy (measured with 200 idle workflows), so lib/profile.ts builds them once
// outside workflows and per call inside one (see profileSchemas there).
import { z } from 'zod';
import { durationBoundsProblem, parseDurationMs } from './duration.js';
import { GRUB_SAFE_CHARS, isGrubSafe } from './grub.js';
import { parseRate, rateBoundsProblem } from './rate.js';
import { MINISIGN_PUBLIC_KEY } from './signature.js';

/** The top-level fields of a profile (to tell a profile with mistakes from some other file). */
export const PROFILE_FIELDS = ['name', 'host', 'port', 'user', 'auth', 'hostKey', 'become', 'slots', 'data', 'release', 'carry', 'health', 'timings', 'reboot', 'power', 'kernelArgs', 'install'] as const;
type ProfileField = (typeof PROFILE_FIELDS)[number];

/**
 * A quantity as operators write it, a string or a plain number, read by `parse` (null: not
 * one; `notOne` then says how to write it) and held to `bounds` (a problem, or null).
 */
const written = (parse: (v: string | number) => number | null, bounds: (n: number) => string | null, notOne: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    // Quoted as JSON, and the two line separators JSON leaves as they are escaped too: a value
    // with a line break stays on its problem's line.
    const quoted = JSON.stringify(String(v)).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
    const n = parse(v);
    const problem = n === null ? notOne : bounds(n);
    if (problem !== null) {
      ctx.addIssue({ code: 'custom', message: `${quoted} ${problem}` });
      return z.NEVER;
    }
    return n!;
  });

/** A human duration ("90s", "5m", seconds as a number) → milliseconds, with a default. */
export const duration = (fallback: string) => written(parseDurationMs, durationBoundsProblem, 'is not a duration (use e.g. 90s, 5m, 1h30m)').prefault(fallback);

/** A transfer rate ("50MB/s", "200Mbit/s", bytes per second as a number) → bytes per second. */
const rate = () => written(parseRate, rateBoundsProblem, 'is not a rate (use e.g. 50MB/s, 200Mbit/s, or bytes per second as a number)');

/**
 * Refuses credentials in a URL (https://user:pw@host/): the profile travels in workflow histories
 * in clear. The message never repeats the URL, so the password is not echoed either.
 */
const withoutUserinfo = (instead: string) => (url: string, ctx: z.RefinementCtx) => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return; // not a URL (an image path), or reported by .url()
  }
  if (parsed.username || parsed.password) {
    ctx.addIssue({ code: 'custom', message: `must not contain a user name or password (user:password@): profiles are stored in clear; ${instead}` });
  }
};

/** Path segments without empty and "." ones: "//boot/./efi/" → ["boot", "efi"]. */
const segments = (p: string) => p.split('/').filter((s) => s !== '' && s !== '.');
/** Whether `path` is `dir` or below it (by segments, so /bootx is not under /boot). */
const isWithin = (path: string, dir: string) => {
  const [a, b] = [segments(path), segments(dir)];
  return b.length <= a.length && b.every((s, i) => a[i] === s);
};

/** Kernel and runtime filesystems, and the boot files the upgrade manages itself. */
const SYSTEM_DIRS = ['/proc', '/sys', '/dev', '/run', '/boot'];
/** Also never carried: scratch space, and Debian's symlinks into /run (carried, they would replace /run's). */
const NOT_CARRIED = [...SYSTEM_DIRS, '/tmp', '/var/run', '/var/lock'];

/** A field of image releases, refused (with the reason) in a debootstrap release. */
const imageOnly = () =>
  z.never({ error: 'only for image releases: debootstrap checks the suite against the Debian archive keyring on the host' }).optional();

function inferImageFormat(url: string): 'tar.zst' | 'tar.gz' | 'tar' {
  if (/\.tar\.zst$|\.tzst$/.test(url)) return 'tar.zst';
  if (/\.tar\.gz$|\.tgz$/.test(url)) return 'tar.gz';
  return 'tar';
}

/** Why a carried path may not be carried, or null: only configuration of the running slot may be. */
function carryPathProblem(path: string, dataMountPoint: string): string | null {
  if (segments(path).length === 0) return 'must not be / (carry configuration files or directories, not the whole root)';
  const dir = NOT_CARRIED.find((d) => isWithin(path, d));
  if (dir) return `must not be ${dir} or under it (not configuration: the new slot has its own)`;
  if (segments(dataMountPoint).length === 0) return null; // data.mountPoint "/" is reported on its own
  if (isWithin(path, dataMountPoint)) return `must not be the data mount point ${dataMountPoint} or under it (both slots share the data partition)`;
  if (isWithin(dataMountPoint, path)) return `must not contain the data mount point ${dataMountPoint} (the whole data partition would be copied into the slot)`;
  return null;
}

/** What a device reference must look like, as the profile's errors say it. */
export const DEVICE_REF_FORMS = 'must be PARTUUID=…, UUID=…, LABEL=…, PARTLABEL=… or a /dev/… path';

/** Every schema of a profile, new objects on each call. */
export function buildProfileSchemas() {
  /** A block device named the way fstab and blkid name it, or a /dev path. */
  const deviceRefSchema = z
    .string()
    .regex(
      /^(?:(?:PART)?UUID=[0-9A-Fa-f-]{4,64}|(?:PART)?LABEL=[A-Za-z0-9._@+-]{1,64}|\/dev\/[A-Za-z0-9/_.:+-]+)$/,
      DEVICE_REF_FORMS,
    );

  const absPath = z
    .string()
    .regex(/^\/[^\0\n]*$/, 'must be an absolute path')
    .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

  const mountPoint = absPath
    .refine((p) => p !== '/', 'must not be /')
    // fstab separates fields by blanks and would need octal escapes for them; '#' starts a comment.
    .refine((p) => !/[\s\\#]/.test(p), 'must not contain whitespace, "\\" or "#" (fstab cannot hold them)')
    .superRefine((p, ctx) => {
      const dir = SYSTEM_DIRS.find((d) => isWithin(p, d));
      if (dir) ctx.addIssue({ code: 'custom', message: `must not be ${dir} or under it (a system directory)` });
    });

  /** SHA256:<base64> (as ssh-keygen -lf prints) or an OpenSSH public key line (known_hosts style). */
  const hostKeySchema = z
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

  const debootstrapRelease = z
    .object({
      source: z.literal('debootstrap'),
      suite: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a Debian suite name such as trixie'),
      mirror: z
        .string()
        .url()
        .superRefine(withoutUserinfo("give the mirror's credentials to apt on the host (/etc/apt/auth.conf.d)"))
        .default('http://deb.debian.org/debian'),
      components: z.array(z.string().regex(/^[a-z0-9-]+$/)).default(['main']),
      /** Extra packages beyond the kernel, GRUB, systemd and openssh-server that every slot needs. */
      packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'must be a Debian package name')).default([]),
      // debootstrap authenticates what it installs itself: the suite's Release file against the
      // Debian archive keyring on the host, every package by the digests that file signs.
      signature: imageOnly(),
      publicKey: imageOnly(),
      allowUnsigned: imageOnly(),
      sha256: imageOnly(),
      pull: z.never({ error: 'only for image releases: debootstrap downloads on the host from its mirror' }).optional(),
    })
    .strict();

  // The host opens a plain TCP connection to the controller and reads the verified image from
  // it: nothing encrypts or decrypts the bytes on either end. The image is the public release
  // (the configuration is carried later, over SSH); the host's digest of what arrived, checked
  // against the verified digest it gets over SSH, is what guards it on the wire.
  const pullSchema = z
    .object({
      /** An address of the controller to listen on (0.0.0.0 or :: for all of them). */
      listenAddress: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address of the controller (0.0.0.0 or :: for all)' }),
      /** 0: any free port, a new one per attempt. */
      listenPort: z.number().int().min(0).max(65535).default(0),
      /** The controller as the host reaches it (through NAT, say); default listenAddress. */
      connectAddress: hostnameOrIp.optional(),
      /** The port the host connects to, where a forward maps it to listenPort; default the listening port. */
      connectPort: z.number().int().min(1).max(65535).optional(),
    })
    .strict()
    .superRefine((p, ctx) => {
      if (p.connectAddress === undefined && (p.listenAddress === '0.0.0.0' || p.listenAddress === '::')) {
        ctx.addIssue({ code: 'custom', path: ['connectAddress'], message: `required with listenAddress ${p.listenAddress}: the address the host connects to` });
      }
      if (p.connectPort !== undefined && p.listenPort === 0) {
        ctx.addIssue({ code: 'custom', path: ['connectPort'], message: 'needs a fixed listenPort: a forward cannot know the free port chosen per attempt' });
      }
    });

  /** A small file the controller reads: an absolute path on the controller, or an http(s) URL. */
  const controllerFileRef = (file: string, what: string) =>
    z.string().superRefine((v, ctx) => {
      if (v.startsWith('/')) {
        for (const i of absPath.safeParse(v).error?.issues ?? []) ctx.addIssue({ code: 'custom', message: i.message });
        return;
      }
      if (!URL.canParse(v) || !/^https?:$/.test(new URL(v).protocol)) {
        ctx.addIssue({ code: 'custom', message: `must be the absolute path or the http(s) URL of ${file}` });
        return;
      }
      withoutUserinfo(`download the ${what} on the controller and give its path`)(v, ctx);
    });

  /** A detached minisign signature (.minisig): a path on the controller, or an http(s) URL. */
  const signatureRef = controllerFileRef('the .minisig file', 'signature');

  /**
   * The key a release must be signed with: a minisign .pub file on the controller, or the key
   * itself. Never a URL: a key fetched from where the release comes from would vouch for anything.
   */
  const publicKeyRef = z.string().superRefine((v, ctx) => {
    if (v.startsWith('/')) {
      for (const i of absPath.safeParse(v).error?.issues ?? []) ctx.addIssue({ code: 'custom', message: i.message });
    } else if (!MINISIGN_PUBLIC_KEY.test(v)) {
      ctx.addIssue({ code: 'custom', message: 'must be the absolute path of a minisign .pub file or the key itself ("RW…", 56 characters, as minisign -G prints it)' });
    }
  });

  const imageRelease = z
    .object({
      source: z.literal('image'),
      /** A path on the controller, or an http(s) URL the controller downloads from. */
      url: z.string().min(1).superRefine(withoutUserinfo('download the image on the controller and give its path')),
      /** Pins the image's content; required when it is unsigned, optional when it is signed. */
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits').optional(),
      /**
       * tar.zst, tar.gz, tar: a rootfs tarball unpacked onto the freshly made spare filesystem (the
       * default, by the url's suffix); ext4-image: a filesystem image from `ab-upgrade release build`,
       * written to the spare as it is (given explicitly, never inferred).
       */
      format: z.enum(['tar.zst', 'tar.gz', 'tar', 'ext4-image']).optional(),
      /** An ext4 image's manifest (path or http(s) URL); default <url>.manifest.json, signed like the image. */
      manifest: controllerFileRef('the image\'s manifest (.manifest.json)', 'manifest').optional(),
      /** The image's detached minisign signature, checked with publicKey before a byte is sent. */
      signature: signatureRef.optional(),
      publicKey: publicKeyRef.optional(),
      /** The explicit opt-out: install an image that is not signed (its sha256 is still checked). */
      allowUnsigned: z.boolean().default(false),
      /** The host pulls the image from the controller over plain TCP instead of receiving it over SSH. */
      pull: pullSchema.optional(),
    })
    .strict()
    .superRefine((r, ctx) => {
      const issue = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
      const signed = r.signature !== undefined || r.publicKey !== undefined;
      if (r.allowUnsigned && signed) issue('allowUnsigned', 'must not be set for a signed release (signature and publicKey given): a signed release is always verified');
      else if (r.signature === undefined && r.publicKey !== undefined) issue('signature', 'required with publicKey: the .minisig file of the image (minisign -S -s <key> -m <image>)');
      else if (r.publicKey === undefined && r.signature !== undefined) issue('publicKey', 'required with signature: the minisign public key (.pub file or "RW…") the image must be signed with');
      else if (!signed && !r.allowUnsigned) {
        issue('signature', 'required: a minisign signature of the image (minisign -S -s <key> -m <image>), with publicKey; or set allowUnsigned: true to install an unsigned image checked by sha256 only');
      }
      if (r.allowUnsigned && !signed && r.sha256 === undefined) issue('sha256', 'required for an unsigned image (allowUnsigned: true): it is then the only check of what is installed');
      if (r.manifest !== undefined && r.format !== 'ext4-image') issue('manifest', 'only for format: ext4-image (a tarball has no manifest)');
      if (r.format === undefined && /\.(ext4|img)(\.zst)?$/.test(r.url)) {
        issue('format', 'required for a filesystem image: format: ext4-image (or tar.zst, tar.gz, tar for a tarball)');
      }
    })
    .transform((r) => ({ ...r, format: r.format ?? inferImageFormat(r.url) }));

  const powerSchema = z.discriminatedUnion('driver', [
    z.object({ driver: z.literal('none') }).strict(),
    z.object({ driver: z.literal('qmp'), socket: absPath }).strict(),
    z
      .object({
        driver: z.literal('ipmi'),
        address: hostnameOrIp,
        user: z.string().min(1),
        passwordFile: absPath,
        interface: z.enum(['lanplus', 'lan']).default('lanplus'),
      })
      .strict(),
    z
      .object({
        driver: z.literal('redfish'),
        url: z
          .string()
          .url()
          .superRefine(withoutUserinfo('the password belongs in passwordFile'))
          .refine((u) => !URL.canParse(u) || /^https?:$/.test(new URL(u).protocol), 'must be an https:// URL'),
        user: z.string().min(1),
        passwordFile: absPath,
        systemId: z.string().min(1).default('1'),
        insecureTls: z.boolean().default(false),
        /** Basic auth over http sends the BMC password in clear: only when the operator says so. */
        allowHttp: z.boolean().default(false),
      })
      .strict()
      .superRefine((r, ctx) => {
        if (!r.allowHttp && URL.canParse(r.url) && new URL(r.url).protocol === 'http:') {
          ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be https:// (http sends the BMC password in clear; set allowHttp: true to allow it)' });
        }
      }),
  ]);

  const healthCommand = z
    .object({
      name: z.string().min(1).optional(),
      /** Runs with `sh -c` on the host; it is the operator's own check, so shell syntax is allowed. */
      run: z.string().min(1),
      timeout: duration('60s'),
    })
    .strict();

  const profileObject = z
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
        .strict()
        .refine((a) => a.identityFile !== undefined || (a.agent !== undefined && a.agent !== false), {
          message: 'give identityFile or agent',
        }),
      hostKey: hostKeySchema,
      become: z.enum(['root', 'sudo']).optional(),
      slots: z.union([
        z.literal('auto'),
        z.object({ a: deviceRefSchema, b: deviceRefSchema }).strict().refine((s) => s.a !== s.b, {
          message: 'slot a and slot b must be different devices',
          path: ['b'],
        }),
      ]),
      data: z.object({ device: deviceRefSchema, mountPoint }).strict(),
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
        .strict()
        .prefault({}),
      health: z
        .object({
          commands: z.array(healthCommand).default([]),
          units: z.array(z.string().regex(/^[A-Za-z0-9:_.@-]+$/, 'must be a systemd unit name')).default([]),
          tcpPorts: z.array(z.number().int().min(1).max(65535)).default([]),
        })
        .strict()
        .prefault({}),
      timings: z
        .object({
          approvalTimeout: duration('24h'),
          comebackDeadline: duration('5m'),
          pollInterval: duration('5s'),
          healthTimeout: duration('2m'),
        })
        .strict()
        .prefault({}),
      reboot: z.enum(['firmware', 'kexec']).default('firmware'),
      power: powerSchema.default({ driver: 'none' }),
      /** Extra kernel command line for the new slot (e.g. console=ttyS0). */
      // The same check GRUB rendering applies (lib/grub.ts), so plan never accepts what addBootEntry refuses.
      kernelArgs: z.string().refine(isGrubSafe, `must be plain kernel parameters (${GRUB_SAFE_CHARS})`).default(''),
      /** How hard the install may press on the host while it serves (lib/host-priority.ts). */
      install: z
        .object({
          /** The nice value of the install's work on the host: 0 (as the services) to 19 (only spare CPU). */
          nice: z.number().int().min(0).max(19).default(10),
          /** Its I/O priority: low (best-effort, lowest level), idle (only an otherwise idle disk), normal. */
          io: z.enum(['low', 'idle', 'normal']).default('low'),
          /** A cap on the image's transfer from the controller to this host; none by default. */
          maxRate: rate().optional(),
        })
        .strict()
        .prefault({}),
    } satisfies Record<ProfileField, z.ZodType>)
    .strict();

  const profileSchema = profileObject
    .superRefine((p, ctx) => {
      p.carry.files.forEach((f, i) => {
        const problem = carryPathProblem(f, p.data.mountPoint);
        if (problem) ctx.addIssue({ code: 'custom', path: ['carry', 'files', i], message: problem });
      });
    })
    .transform((p) => ({ ...p, name: p.name ?? p.host, become: p.become ?? (p.user === 'root' ? 'root' : 'sudo') }));

  return { deviceRefSchema, hostKeySchema, profileObject, profileSchema };
}

export type ProfileSchemas = ReturnType<typeof buildProfileSchemas>;
export type ProfileInput = z.input<ProfileSchemas['profileSchema']>;
export type Profile = z.output<ProfileSchemas['profileSchema']>;
/** A block device as fstab and blkid name it (PARTUUID=, UUID=, LABEL=, PARTLABEL=) or a /dev path. */
export type DeviceRef = string;
