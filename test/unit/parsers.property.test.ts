// Property tests (fast-check) on the profile and campaign file parsers: whatever an operator (or
// a file named by mistake) gives them, the answer is a valid object or an error of the parser's
// own type, one line per problem, each naming its field; never another error, never a stack
// trace, never the file's content quoted back. And a valid profile survives profileFileContent
// (what `ab-upgrade lab` writes) and YAML unchanged.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadCampaign } from '../../client/campaign-file.js';
import { parseProfileText, YamlSyntaxError } from '../../client/profile-file.js';
import { CampaignError, campaignSchema, parseCampaignFile } from '../../lib/campaign.js';
import { MAX_DURATION_MS, parseDurationMs } from '../../lib/duration.js';
import { DEVICE_REF_FORMS } from '../../lib/profile-schema.js';
import { parseProfile, ProfileError, profileFields, profileFileContent, revalidateProfile, type ProfileInput } from '../../lib/profile.js';

const RUNS = 300;
const campaignFields: readonly string[] = Object.keys(campaignSchema.shape);

// ---------------------------------------------------------------------------------------------
// What every error must look like

/** A field path as formatZodIssues writes it: schema keys and array indexes joined by ".". */
const FIELD_PATH = /^[A-Za-z][A-Za-z0-9]*(?:\.(?:\d+|[A-Za-z][A-Za-z0-9]*))*$/;
/** A key issueMessage shows (the same rule as lib/profile.ts's). */
const KEY_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** Durations are the one kind of field whose bad value the error quotes (`retryWithin: "30d" must be…`). */
const DURATION_PROBLEM = /^(?:timings\.[A-Za-z]+|health\.commands\.\d+\.timeout|retryWithin): "/;

/**
 * Checks that `error` is a `type` (ProfileError or CampaignError) whose problems are each one line
 * "<field path>: …" (the first segment a real field of `fields`) or "<root>: …", and whose message
 * is the header and those lines, nothing else (no stack, no cause). Returns the field paths.
 */
function fieldPaths(error: unknown, type: typeof ProfileError, fields: readonly string[], root: string): string[] {
  if (!(error instanceof type)) throw new Error(`expected a ${type.name}, got ${String(error)}\n${(error as Error)?.stack ?? ''}`);
  const { problems, message } = error;
  expect(problems.length).toBeGreaterThan(0);
  expect(message).not.toContain('    at ');
  expect(message.split('\n').slice(1)).toEqual(problems.map((p) => `  - ${p}`));
  return problems.map((p) => {
    expect(p, 'one line per problem').not.toMatch(/[\r\n\u2028\u2029]/);
    const path = p.slice(0, p.indexOf(': '));
    expect(p.indexOf(': '), `"<field>: " at the start of ${JSON.stringify(p)}`).toBeGreaterThan(0);
    if (path !== root) {
      expect(path, `a field path in ${JSON.stringify(p)}`).toMatch(FIELD_PATH);
      expect(fields, `a real field in ${JSON.stringify(p)}`).toContain(path.split('.')[0]);
    }
    return path;
  });
}

const profilePaths = (e: unknown) => fieldPaths(e, ProfileError, profileFields, '(profile)');
const campaignPaths = (e: unknown) => fieldPaths(e, CampaignError, campaignFields, '(campaign)');

function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * No line of `text` longer than 8 characters is in `message` unless it is a key name (the one
 * thing issueMessage shows), and a `secret` value appears only as a shown key or a duration's value.
 */
function expectNoEcho(message: string, problems: string[], text: string, secrets: string[] = []): void {
  // The schema's own wording is not an echo, even where an input line happens to match part of it
  // (a line "PARTUUID=" and the device reference's forms).
  const shown = [message.split('\n')[0], ...problems.filter((p) => !DURATION_PROBLEM.test(p))].join('\n').replaceAll(DEVICE_REF_FORMS, '');
  for (const line of text.split(/\r\n|\r|\n/).map((l) => l.trim())) {
    // a line that is only a key ("approvalTimeout:", "- \"db_password\":") may be named by a problem
    const bare = line.replace(/^[-?\s]*["']?/, '').replace(/["']?\s*:?$/, '');
    if (line.length > 8 && shown.includes(line)) expect(bare, `the error quotes the input line ${JSON.stringify(line)}:\n${message}`).toMatch(KEY_NAME);
  }
  for (const s of secrets) {
    for (const p of problems) {
      if (p.includes(s)) expect(p, `the error quotes ${JSON.stringify(s)}`).toMatch(new RegExp(`unrecognized keys? .*"[^"]*${s}[^"]*"|${DURATION_PROBLEM.source}`));
    }
  }
}

/** A YAML syntax error: the parser's own words and a position, nothing from the file. */
function expectYamlSyntaxError(e: YamlSyntaxError, source: string, text: string, secrets: string[]): void {
  for (const p of e.problems) expect(p).toMatch(new RegExp(`^${source}: YAML .+`));
  for (const w of e.where) expect(w).toMatch(/^(?:[A-Z_]+ at (?:line \d+, column \d+|offset \d+)|UNRESOLVED_ALIAS|EXCESSIVE_ALIAS_COUNT)$/);
  expect(e.message).not.toContain('    at ');
  for (const line of text.split(/\r\n|\r|\n/).map((l) => l.trim())) {
    // a tag, anchor or alias alone on its line is the one thing the parser's words may name
    if (line.length > 8 && !/^[-?:\s]*[!&*]\S*\s*$/.test(line)) expect(e.message, `a syntax error quoting ${JSON.stringify(line)}`).not.toContain(line);
  }
  for (const s of secrets) expect(e.message).not.toContain(s);
}

// ---------------------------------------------------------------------------------------------
// Hostile values

/** Recognisable values: if one shows up in an error, the error quotes the input. */
const secret = fc.stringMatching(/^[A-Za-z0-9]{6}$/).map((s) => `Zq${s}Xk`);
const SECRET_RE = /Zq[A-Za-z0-9]{6}Xk/g;

/** The secrets in a value's strings and keys. */
function secretsIn(v: unknown, seen = new Set<unknown>()): string[] {
  if (typeof v === 'string') return [...v.matchAll(SECRET_RE)].map((m) => m[0]);
  if (typeof v !== 'object' || v === null || seen.has(v)) return [];
  seen.add(v);
  const entries = v instanceof Map ? [...v.entries()].flat() : v instanceof Set ? [...v] : Object.entries(v).flat();
  return entries.flatMap((x) => secretsIn(x, seen));
}

/** Whether YAML writes `v` as the same data (what a file can hold): JSON-like values, NaN and ±Infinity. */
function yamlable(v: unknown): boolean {
  if (v === undefined || v === null || ['string', 'number', 'boolean'].includes(typeof v)) return true;
  if (Array.isArray(v)) return Object.keys(v).length === v.length && v.every(yamlable);
  return isPlain(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v)) && Object.values(v).every(yamlable);
}

const nasty = fc.constantFrom(
  '', ' ', '"', "'", '\n', 'a\nb', 'x\r\ny', '$(reboot)', '`id`', '; rm -rf / #', '|| true', '${IFS}', '\\', '\0', '\u2028', '\uFEFF', '../..', '/etc/../etc',
  'NaN', '-0', 'Infinity', '1e309', '-1', '0x10', '١٢s', '５s', '1h-5m', '90 s', ' 90s ', '1.5.5s', '99999999999999999999999d', 'PARTUUID=', 'LABEL=a b', '𝒳', 'é',
  '%', '150%', '-5%', '1e2%', '24:00', '25:61', 'http://user:pw@host/', 'https://[::1', '\u0000\u0001', 'true', 'null', '~', '{}', '[]', '- a', 'a: b',
);
/** Values from valid profiles and campaigns, so generated documents also get past the first checks. */
const plausible = fc.constantFrom<unknown>(
  'debootstrap', 'image', 'none', 'qmp', 'ipmi', 'redfish', 'lanplus', 'auto', 'root', 'sudo', 'firmware', 'kexec', 'tar.zst', 'trixie', 'main',
  '/etc/nginx', '/srv/data', '/etc', '/', 'PARTUUID=6f4c9d2e-01', 'LABEL=data', '/dev/vda3', 'https://bmc.example.net/', 'http://deb.debian.org/debian', '90s', '5m', '30d', 2,
  22, 65535, 0, 1, true, false, 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', 'nginx.service', 'web-1', '20%', '100%', 'mon', 'sun', '22:00', '04:00', 'UTC', 'a' .repeat(300),
);
const hostileString = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 30 }), nasty, secret);
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, -1, 0.5, 1e308, -1e308, 2 ** 31, 2 ** 53 + 2, 65536, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
);
const scalar = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.constant(null), plausible);
const anyValue = fc.anything({
  maxDepth: 3,
  stringUnit: 'binary',
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withSparseArray: true,
  withTypedArray: true,
});
/** A key: a real field name sometimes, else anything (including "__proto__", "constructor"). */
const anyKey = (real: readonly string[]) =>
  fc.oneof(...(real.length ? [fc.constantFrom(...real)] : []), fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString'), secret);

/** An object with own properties exactly as given ("__proto__" included, as YAML's toJS makes it). */
function own(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

/** A section with its real keys (some), random values and random extra keys. */
const section = (keys: readonly string[], value: fc.Arbitrary<unknown>) =>
  fc.array(fc.tuple(anyKey(keys), value), { maxLength: keys.length + 2 }).map(own);

const SECTION_KEYS: Record<string, readonly string[]> = {
  auth: ['identityFile', 'agent'],
  slots: ['a', 'b'],
  data: ['device', 'mountPoint'],
  release: ['source', 'suite', 'mirror', 'components', 'packages', 'url', 'sha256', 'format', 'signature', 'publicKey', 'allowUnsigned'],
  carry: ['defaults', 'files', 'exclude'],
  health: ['commands', 'units', 'tcpPorts'],
  timings: ['approvalTimeout', 'comebackDeadline', 'pollInterval', 'healthTimeout'],
  power: ['driver', 'socket', 'address', 'user', 'passwordFile', 'interface', 'url', 'systemId', 'insecureTls', 'allowHttp'],
  command: ['name', 'run', 'timeout'],
  window: ['days', 'start', 'end', 'timezone'],
};

const fieldValue = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(fc.oneof(scalar, section(SECTION_KEYS.command!, scalar)), { maxLength: 3 }) },
  { weight: 1, arbitrary: anyValue },
);
const sectionValue = (keys: readonly string[]) => fc.oneof({ weight: 3, arbitrary: section(keys, fieldValue) }, { weight: 1, arbitrary: fieldValue });

/** Objects shaped like a profile: its real keys (and random ones), real sections with random insides. */
const profileLike = fc
  .array(
    fc.oneof(
      ...Object.keys(SECTION_KEYS)
        .filter((k) => profileFields.includes(k))
        .map((k) => fc.tuple(fc.constant(k), sectionValue(SECTION_KEYS[k]!))),
      fc.tuple(anyKey(profileFields), fieldValue),
    ),
    { maxLength: profileFields.length + 2 },
  )
  .map(own);

const campaignLike = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constant('window'), sectionValue(SECTION_KEYS.window!)),
      fc.tuple(fc.constant('hosts'), fc.array(scalar, { maxLength: 3 })),
      fc.tuple(fc.constant('waves'), fc.array(scalar, { maxLength: 4 })),
      fc.tuple(anyKey(campaignFields), fieldValue),
    ),
    { maxLength: campaignFields.length + 2 },
  )
  .map(own);

/** Values that stand in for a field in a mutated file: anything YAML or JSON could carry. */
const replacement = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: anyValue },
);

// ---------------------------------------------------------------------------------------------
// Valid profiles and campaigns, and paths into them

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

const BASE_PROFILES: Record<string, unknown>[] = [
  {
    name: 'db1',
    host: 'db1.example.net',
    port: 2222,
    user: 'deploy',
    auth: { identityFile: '/home/op/.ssh/id_ed25519', agent: true },
    hostKey: ED25519,
    slots: { a: 'PARTUUID=6f4c9d2e-01', b: 'PARTUUID=6f4c9d2e-02' },
    data: { device: 'UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie', mirror: 'http://deb.debian.org/debian', components: ['main', 'contrib'], packages: ['postgresql-17'] },
    carry: { defaults: true, files: ['/etc/nginx', '/etc/postgresql'], exclude: ['/etc/nginx/sites-enabled'] },
    health: { commands: [{ name: 'pg', run: 'pg_isready -q', timeout: '30s' }], units: ['nginx.service'], tcpPorts: [5432] },
    timings: { approvalTimeout: '8h', comebackDeadline: '10m', pollInterval: 2, healthTimeout: '1m30s' },
    reboot: 'kexec',
    power: { driver: 'ipmi', address: '10.0.0.21', user: 'ADMIN', passwordFile: '/etc/ab-upgrade/ipmi-db1.pw', interface: 'lan' },
    kernelArgs: 'console=ttyS0,115200n8',
  },
  {
    host: '192.0.2.7',
    become: 'sudo',
    user: 'ops',
    auth: { agent: '/run/user/1000/ssh-agent.sock' },
    hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/data' },
    release: {
      source: 'image',
      url: 'https://images.example.net/trixie.tar.zst',
      sha256: 'a'.repeat(64),
      format: 'tar.zst',
      signature: 'https://images.example.net/trixie.tar.zst.minisig',
      publicKey: 'RWQCHNkvplr8ufgOpgOwQk+IJLag+PqVf/daq+h2egGnVjJ1Iad2gIdK',
    },
    power: { driver: 'redfish', url: 'https://bmc.example.net', user: 'admin', passwordFile: '/etc/bmc.pw', systemId: 'System.Embedded.1', insecureTls: true, allowHttp: false },
  },
  {
    host: 'vm1',
    auth: { identityFile: '/root/.ssh/id_ed25519' },
    hostKey: ED25519,
    slots: { a: '/dev/vda2', b: '/dev/vda3' },
    data: { device: 'PARTLABEL=data', mountPoint: '/srv' },
    release: { source: 'debootstrap', suite: 'bookworm' },
    power: { driver: 'qmp', socket: '/var/lib/lab/qmp.sock' },
  },
  {
    host: 'vm2',
    auth: { identityFile: '/root/.ssh/id_ed25519' },
    hostKey: ED25519,
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv' },
    release: { source: 'image', url: '/srv/images/trixie.tar', sha256: 'b'.repeat(64), allowUnsigned: true },
  },
  {
    host: 'vm3',
    auth: { identityFile: '/root/.ssh/id_ed25519' },
    hostKey: ED25519,
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv' },
    release: { source: 'image', url: '/srv/images/trixie.tar.gz', signature: '/srv/images/trixie.tar.gz.minisig', publicKey: '/etc/ab-upgrade/release.pub' },
  },
];
for (const p of BASE_PROFILES) parseProfile(p); // they are valid

type Path = (string | number)[];
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Paths to every scalar (array elements included). */
function leaves(v: unknown, at: Path = []): Path[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...at, i]));
  if (isPlain(v)) return Object.entries(v).flatMap(([k, x]) => leaves(x, [...at, k]));
  return [at];
}

/** Paths to every object (the root included). */
function objects(v: unknown, at: Path = []): Path[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => objects(x, [...at, i]));
  if (isPlain(v)) return [at, ...Object.entries(v).flatMap(([k, x]) => objects(x, [...at, k]))];
  return [];
}

function getAt(root: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], root);
}

/** A copy of `root` with `value` at `path` (a new own property if `path` names no field yet). */
function setAt<T>(root: T, path: Path, value: unknown): T {
  const copy = structuredClone(root);
  const parent = getAt(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  Object.defineProperty(parent, path.at(-1)!, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

const dotted = (path: Path, root: string) => (path.length ? path.join('.') : root);
const within = (path: string, field: string) => path === field || path.startsWith(`${field}.`);

/** Keys the schema knows in the section at `path` (any variant): adding one of these is not a typo. */
function knownKeys(path: Path, fields: readonly string[]): readonly string[] {
  if (path.length === 0) return fields;
  if (path[0] === 'health' && path[1] === 'commands') return SECTION_KEYS.command!;
  return SECTION_KEYS[String(path[0])] ?? [];
}

/** A valid object, and either one leaf replaced or one unknown key added somewhere. */
const mutation = (bases: Record<string, unknown>[], fields: readonly string[]) =>
  fc.constantFrom(...bases).chain((base) =>
    fc.oneof(
      fc.record({ kind: fc.constant('leaf' as const), base: fc.constant(base), path: fc.constantFrom(...leaves(base)), value: replacement }),
      fc
        .record({ kind: fc.constant('key' as const), base: fc.constant(base), path: fc.constantFrom(...objects(base)), key: anyKey([]), value: scalar })
        .filter(({ base, path, key }) => !knownKeys(path, fields).includes(key) && !Object.hasOwn(getAt(base, path) as object, key)),
    ),
  );

/** The unknown-key problem issueMessage writes for `key` in the section `at`. */
const unknownKeyProblem = (at: string, key: string) =>
  `${at}: ${KEY_NAME.test(key) ? `unrecognized key "${key}"` : '1 unrecognized key not shown (not field names)'}`;

// ---------------------------------------------------------------------------------------------
// Valid profiles, from constrained generators

const safeSeg = fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).filter((s) => !/[\s\\#/\0]/.test(s) && s !== '.' && s !== '..');
/** A path segment with anything an absolute path may hold: quotes, spaces, $(…), unicode. */
const hostileSeg = fc.oneof(safeSeg, fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).map((s) => s.replace(/[/\0\n]/g, '_'))).filter((s) => s !== '.' && s !== '..');
const pathUnder = (firsts: string[], seg: fc.Arbitrary<string>) =>
  fc.tuple(fc.constantFrom(...firsts), fc.array(seg, { maxLength: 3 })).map(([f, rest]) => `/${[f, ...rest].join('/')}`);
// Mount points and carried files under different top directories: neither contains the other.
const mountPoint = pathUnder(['srv', 'data', 'mnt'], safeSeg);
const carriedPath = pathUnder(['etc', 'usr/local', 'root', 'opt', 'var/lib'], hostileSeg);
const anyAbsPath = pathUnder(['etc', 'home', 'run', 'var', 'tmp', 'srv'], hostileSeg);
const device = fc.oneof(
  fc.stringMatching(/^PARTUUID=[0-9a-f-]{4,36}$/),
  fc.stringMatching(/^UUID=[0-9A-F-]{4,36}$/),
  fc.stringMatching(/^(?:PART)?LABEL=[A-Za-z0-9._@+-]{1,16}$/),
  fc.stringMatching(/^\/dev\/[A-Za-z0-9/_.:+-]{1,12}$/),
);
const nonEmptyHostile = fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), nasty.filter((s) => s !== ''));
const hostname = fc.stringMatching(/^[A-Za-z0-9.:_-]{1,30}$/);
const webUrl = (schemes: string) => fc.stringMatching(new RegExp(`^(?:${schemes})://[a-z][a-z0-9]{0,11}(?:\\.[a-z]{2,8}){0,2}(?::[1-9]\\d{0,3})?(?:/[A-Za-z0-9._~-]{0,10}){0,3}$`));
const durationInput = fc.oneof(
  fc.integer({ min: 100, max: MAX_DURATION_MS }).map((ms) => `${ms}ms`),
  fc.integer({ min: 1, max: 2_000_000 }),
  fc.double({ min: 0.1, max: 1_000_000, noNaN: true }),
  fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 1, max: 59 })).map(([h, m, s]) => `${h}h${m}m${s}s`),
  fc.integer({ min: 1, max: 24 }).map((d) => `${d}d`),
);
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
/** Drops undefined fields (an absent field, as in a file). */
const compact = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const validProfileInput: fc.Arbitrary<ProfileInput> = fc
  .record({
    name: optional(fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/)),
    host: hostname,
    port: optional(fc.integer({ min: 1, max: 65535 })),
    user: optional(fc.stringMatching(/^[a-z_][a-z0-9_.-]{0,31}$/)),
    auth: fc.oneof(
      fc.record({ identityFile: anyAbsPath }),
      fc.record({ agent: fc.oneof(fc.constant(true), anyAbsPath) }),
      fc.record({ identityFile: anyAbsPath, agent: fc.oneof(fc.boolean(), anyAbsPath) }),
    ),
    hostKey: fc.oneof(
      fc.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
      fc
        .tuple(
          fc.constantFrom('', 'db1.example.net ', '[10.0.0.1]:2222 '),
          fc.constantFrom('ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256'),
          fc.stringMatching(/^AAAA[A-Za-z0-9+/]{20,60}={0,2}$/),
          fc.string({ unit: 'grapheme', maxLength: 20 }).map((c) => c.replace(/[\r\n\u2028\u2029\u0085]/g, '')),
        )
        .map(([host, type, key, comment]) => `${host}${type} ${key}${comment ? ` ${comment}` : ''}`),
    ),
    become: optional(fc.constantFrom('root', 'sudo')),
    slots: fc.oneof(
      fc.constant('auto' as const),
      fc
        .tuple(device, device)
        .filter(([a, b]) => a !== b)
        .map(([a, b]) => ({ a, b })),
    ),
    data: fc.record({ device, mountPoint }),
    release: fc.oneof(
      fc
        .record({
          source: fc.constant('debootstrap' as const),
          suite: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
          mirror: optional(webUrl('https?')),
          components: optional(fc.array(fc.stringMatching(/^[a-z0-9-]{1,8}$/), { maxLength: 3 })),
          packages: optional(fc.array(fc.stringMatching(/^[a-z0-9][a-z0-9+.-]{0,12}$/), { maxLength: 3 })),
        })
        .map(compact),
      fc
        .record({
          source: fc.constant('image' as const),
          url: fc.oneof(webUrl('https?'), nonEmptyHostile.filter((s) => !URL.canParse(s))),
          sha256: optional(fc.stringMatching(/^[0-9a-f]{64}$/)),
          format: optional(fc.constantFrom('tar.zst', 'tar.gz', 'tar')),
          signature: fc.oneof(webUrl('https?'), anyAbsPath),
          publicKey: fc.oneof(fc.stringMatching(/^RW[QRST][A-Za-z0-9+/]{53}$/), anyAbsPath),
          allowUnsigned: optional(fc.constant(false)),
        })
        .map(compact),
      fc
        .record({
          source: fc.constant('image' as const),
          url: fc.oneof(webUrl('https?'), nonEmptyHostile.filter((s) => !URL.canParse(s))),
          sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
          format: optional(fc.constantFrom('tar.zst', 'tar.gz', 'tar')),
          allowUnsigned: fc.constant(true),
        })
        .map(compact),
    ),
    carry: optional(
      fc
        .record({ defaults: optional(fc.boolean()), files: optional(fc.array(carriedPath, { maxLength: 3 })), exclude: optional(fc.array(anyAbsPath, { maxLength: 3 })) })
        .map(compact),
    ),
    health: optional(
      fc
        .record({
          commands: optional(
            fc.array(fc.record({ name: optional(nonEmptyHostile), run: nonEmptyHostile, timeout: optional(durationInput) }).map(compact), { maxLength: 3 }),
          ),
          units: optional(fc.array(fc.stringMatching(/^[A-Za-z0-9:_.@-]{1,20}$/), { maxLength: 3 })),
          tcpPorts: optional(fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 3 })),
        })
        .map(compact),
    ),
    timings: optional(
      fc
        .record({
          approvalTimeout: optional(durationInput),
          comebackDeadline: optional(durationInput),
          pollInterval: optional(durationInput),
          healthTimeout: optional(durationInput),
        })
        .map(compact),
    ),
    reboot: optional(fc.constantFrom('firmware', 'kexec')),
    power: optional(
      fc.oneof(
        fc.constant({ driver: 'none' }),
        fc.record({ driver: fc.constant('qmp'), socket: anyAbsPath }),
        fc
          .record({
            driver: fc.constant('ipmi'),
            address: hostname,
            user: nonEmptyHostile,
            passwordFile: anyAbsPath,
            interface: optional(fc.constantFrom('lanplus', 'lan')),
          })
          .map(compact),
        fc
          .record({
            driver: fc.constant('redfish'),
            url: webUrl('https'),
            user: nonEmptyHostile,
            passwordFile: anyAbsPath,
            systemId: optional(nonEmptyHostile),
            insecureTls: optional(fc.boolean()),
            allowHttp: optional(fc.boolean()),
          })
          .map(compact),
      ),
    ),
    kernelArgs: optional(fc.stringMatching(/^[A-Za-z0-9 ._:,=/@+()-]{0,40}$/)),
  })
  .map((p) => compact(p) as ProfileInput);

// ---------------------------------------------------------------------------------------------

describe('parseProfile: any value gives a profile or a ProfileError naming each field', () => {
  it('(a) arbitrary values, profile-shaped objects and revalidateProfile', () => {
    for (const input of [anyValue, profileLike]) {
      fc.assert(
        fc.property(input, (v) => {
          for (const parse of [parseProfile, revalidateProfile]) {
            const r = attempt(() => parse(v));
            if (r.ok) continue;
            profilePaths(r.error);
            const problems = (r.error as ProfileError).problems;
            expectNoEcho((r.error as Error).message, problems, '', secretsIn(v));
          }
        }),
        // a duration with a line break once made a problem two lines, the second one forged
        { numRuns: RUNS, examples: [[{ timings: { pollInterval: '5\n  - host: fine' } }], [{ slots: { a: {}, b: 'LABEL=b' } }]] },
      );
    }
  });

  it('(c) one leaf of a valid profile replaced, or an unknown key added: parsed, or that field is named', () => {
    fc.assert(
      fc.property(mutation(BASE_PROFILES, profileFields), (m) => {
        if (m.kind === 'key') {
          const at = dotted(m.path, '(profile)');
          const r = attempt(() => parseProfile(setAt(m.base, [...m.path, m.key], m.value)));
          expect(r.ok, `unknown key ${JSON.stringify(m.key)} in ${at} accepted`).toBe(false);
          expect((r as { error: ProfileError }).error.problems).toContain(unknownKeyProblem(at, m.key));
          profilePaths((r as { error: unknown }).error).forEach((p) => expect(p).toBe(at));
          return;
        }
        const field = m.path.join('.');
        const mutated = setAt(m.base, m.path, m.value);
        const r = attempt(() => parseProfile(mutated));
        if (r.ok) {
          // accepted: the new value is what the profile holds (absent ones get their defaults)
          const got = getAt(r.value, m.path);
          if (m.value === undefined) return;
          if (DURATION_PROBLEM.test(`${field}: "`)) expect(got).toBe(parseDurationMs(m.value as string | number));
          else expect(got).toEqual(field === 'hostKey' ? String(m.value).trim() : m.value);
          return;
        }
        const paths = profilePaths(r.error);
        expect(paths.some((p) => within(p, field)) || related(field, m.base, m.value).some((f) => paths.some((p) => within(p, f))), `${field} named in:\n${paths.join('\n')}`).toBe(true);
        // and nothing unrelated is blamed
        for (const p of paths) expect(within(p, field) || related(field, m.base, m.value).some((f) => within(p, f)), `${p} blamed for a change to ${field}`).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

/** Fields a change to `field` may legitimately be reported on instead of (or as well as) itself. */
function related(field: string, base: Record<string, unknown>, value: unknown): string[] {
  const section = field.split('.')[0]!;
  // Another variant of a discriminated section: its own fields are now missing or unknown.
  if (field === 'release.source' || field === 'power.driver') return [section];
  // Checks across fields: auth needs one of two; slots must differ; carried files vs. the data mount point.
  if (section === 'auth') return ['auth'];
  if (field === 'slots.a' && isPlain(base.slots) && value === base.slots.b) return ['slots.b'];
  if (field === 'data.mountPoint') return ['carry.files'];
  if (field === 'window.start') return ['window.end'];
  // An image is signed (signature with publicKey) or explicitly allowed unsigned (with a sha256).
  if (field === 'release.allowUnsigned') return ['release.signature'];
  return [];
}

describe('parseProfileText: any text gives a profile or a ProfileError, quoting none of it', () => {
  const yamlToken = fc.oneof(
    fc.constantFrom(
      ':', ': ', '- ', '-', '[', ']', '{', '}', ',', '? ', '&a ', '*a', '*b', '&b ', '!!str ', '!!int ', '!!binary ', '!!set ', '!!map ', '!!timestamp ', '!local ',
      '!e!x ', '%TAG !e! tag:x,2000:\n', '%YAML 1.1\n', '---\n', '...\n', '"', "'", '|\n', '>-\n', '#', '\t', '\n', '\n  ', '\n    ', '<<: ', '~', 'null', '.nan',
      '.inf', '0x1F', '0o17', '1e400', '@', '`', '\\', '\\u', '\r\n', '\uFEFF', '%', 'true', '"\\x',
    ),
    fc.constantFrom(...profileFields, ...Object.values(SECTION_KEYS).flat()),
    secret,
    fc.string({ unit: 'binary', maxLength: 6 }),
  );
  const yamlish = fc.array(yamlToken, { maxLength: 40 }).map((ts) => ts.join(''));
  const yamlOfProfileLike = fc.tuple(profileLike, fc.constantFrom<'PLAIN' | 'QUOTE_DOUBLE' | 'BLOCK_LITERAL'>('PLAIN', 'QUOTE_DOUBLE', 'BLOCK_LITERAL')).map(([v, style]) => {
    try {
      return stringify(v, { defaultStringType: style });
    } catch {
      return stringify(String(v)); // what yaml cannot write (a symbol, a function): any text will do
    }
  });

  it('(b) arbitrary text, YAML-ish token soup and YAML of profile-shaped objects', async () => {
    // yaml's warnings (process.emitWarning: stderr, logs) would quote the file too
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    for (const text of [fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 200 }), yamlish, yamlOfProfileLike]) {
      fc.assert(
        fc.property(text, (t) => {
          const r = attempt(() => parseProfileText(t));
          if (r.ok) return;
          const secrets = [...t.matchAll(SECRET_RE)].map((m) => m[0]);
          if (r.error instanceof YamlSyntaxError) return expectYamlSyntaxError(r.error, 'profile', t, secrets);
          profilePaths(r.error);
          const e = r.error as ProfileError;
          expectNoEcho(e.message, e.problems, t, secrets);
        }),
        // The second example: a line "PARTUUID=" and the schema's own words for a device reference.
        { numRuns: RUNS, examples: [['? [Zq12345aXk]\n: x\n'], ['"auth":\n  "Zq0A00AaXk":\n    - "": |-\n        PARTUUID=\n"slots":\n  "a": |\n\n']] },
      );
    }
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
  });

  it('(b) a billion laughs is refused as such, not as a missing anchor', () => {
    const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefg'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefg'[i]}`).join(', ')}]`)].join('\n');
    const r = attempt(() => parseProfileText(laughs));
    expect(r.ok).toBe(false);
    expect(r.ok ? null : (r.error as YamlSyntaxError).where).toEqual(['EXCESSIVE_ALIAS_COUNT']);
  });
});

describe('(e) round trip: a valid profile survives profileFileContent and YAML', () => {
  it('parseProfile(profileFileContent(p)) and its YAML deep-equal p; hostile strings arrive verbatim', () => {
    fc.assert(
      fc.property(validProfileInput, (input) => {
        const r = attempt(() => parseProfile(input));
        if (!r.ok) throw new Error(`the generator made an invalid profile: ${(r.error as Error).message}`);
        const p = r.value;
        expect(parseProfile(profileFileContent(p))).toEqual(p);
        expect(parseProfileText(stringify(profileFileContent(p)))).toEqual(p);
        expect(revalidateProfile(p)).toEqual(p);
        // strings are never rewritten on the way (hostKey is trimmed: a pasted line's newline)
        expect(p.host).toBe(input.host);
        expect(p.hostKey).toBe(input.hostKey.trim());
        expect(p.health.commands.map((c) => [c.name, c.run])).toEqual((input.health?.commands ?? []).map((c) => [c.name, c.run]));
        expect(p.carry.files).toEqual(input.carry?.files ?? []);
        if (input.power && 'user' in input.power) expect((p.power as { user: string }).user).toBe(input.power.user);
        if (input.release.source === 'image') expect((p.release as { url: string }).url).toBe(input.release.url);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------

const BASE_CAMPAIGNS: Record<string, unknown>[] = [
  { name: 'web', hosts: ['host.yaml'] },
  {
    name: 'db-2026',
    hosts: ['host.yaml', 'host2.yaml'],
    waves: [1, 5, '20%'],
    failureBudget: '10%',
    window: { days: ['sat', 'sun'], start: '22:00', end: '04:00', timezone: 'Europe/Berlin' },
    approveEachWave: true,
    retryWithin: '2d',
  },
];
for (const c of BASE_CAMPAIGNS) parseCampaignFile(c);

describe('(d) campaign files: a campaign or a CampaignError naming each field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ab-campaign-prop-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'host.yaml'), stringify(BASE_PROFILES[0]));
  writeFileSync(join(dir, 'host2.yaml'), stringify(BASE_PROFILES[2]));

  it('arbitrary values and campaign-shaped objects', () => {
    for (const input of [anyValue, campaignLike]) {
      fc.assert(
        fc.property(input, (v) => {
          const r = attempt(() => parseCampaignFile(v));
          if (!r.ok) campaignPaths(r.error);
        }),
        { numRuns: RUNS },
      );
    }
  });

  it('one leaf of a valid campaign replaced, or an unknown key added: parsed, or that field is named', () => {
    fc.assert(
      fc.property(mutation(BASE_CAMPAIGNS, campaignFields), (m) => {
        if (m.kind === 'key') {
          const at = dotted(m.path, '(campaign)');
          const r = attempt(() => parseCampaignFile(setAt(m.base, [...m.path, m.key], m.value)));
          expect(r.ok).toBe(false);
          expect((r as { error: CampaignError }).error.problems).toContain(unknownKeyProblem(at, m.key));
          campaignPaths((r as { error: unknown }).error).forEach((p) => expect(p).toBe(at));
          return;
        }
        const field = m.path.join('.');
        const r = attempt(() => parseCampaignFile(setAt(m.base, m.path, m.value)));
        if (r.ok) {
          if (m.value !== undefined && field !== 'retryWithin') expect(getAt(r.value, m.path)).toEqual(m.value);
          return;
        }
        const paths = campaignPaths(r.error);
        for (const p of paths) expect(within(p, field) || related(field, m.base, m.value).some((f) => within(p, f)), `${p} blamed for a change to ${field}`).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('the same through files: loadCampaign with the hosts read from a temp dir', async () => {
    // Host entries are read as files: keep mutated ones inside the temp dir.
    const inDir = (m: { path: Path; value: unknown }) => !(m.path[0] === 'hosts' && typeof m.value === 'string' && /[/\\]/.test(m.value));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        mutation(BASE_CAMPAIGNS, campaignFields).filter((m) => m.kind === 'leaf' && inDir(m) && yamlable(m.value)),
        async (m) => {
          const field = m.path.join('.');
          const file = join(dir, `campaign-${n++}.yaml`);
          writeFileSync(file, stringify(setAt(m.base, m.path, m.value)) ?? '');
          const r = await loadCampaign(file).then(
            (value) => ({ ok: true as const, value }),
            (error: unknown) => ({ ok: false as const, error }),
          );
          if (r.ok) {
            expect(r.value.profiles.length).toBe((getAt(setAt(m.base, m.path, m.value), ['hosts']) as unknown[]).length);
            return;
          }
          expect(r.error).toBeInstanceOf(CampaignError);
          const e = r.error as CampaignError;
          for (const p of e.problems) {
            // a host entry's problems: "hosts.N (entry): …"; the rest name campaign fields
            const host = /^hosts\.(\d+) \(/.exec(p);
            const path = host ? `hosts.${host[1]}` : campaignPaths(new CampaignError([p]))[0]!;
            expect(within(path, field) || related(field, m.base, m.value).some((f) => within(path, f)), `${p} blamed for a change to ${field}`).toBe(true);
          }
          expect(e.message).not.toContain('    at ');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a host entry naming any file: a line naming the entry, quoting none of the file', async () => {
    const content = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.array(fc.oneof(secret, fc.constantFrom(':', ': ', '\n', '- ', '[', '{', '"', '&a ', '*a', ...profileFields)), { maxLength: 30 }).map((t) => t.join('')));
    writeFileSync(join(dir, 'any-host.yaml'), 'name: web\nhosts: [any.txt]\n');
    await fc.assert(
      fc.asyncProperty(content, async (text) => {
        writeFileSync(join(dir, 'any.txt'), text);
        const error = await loadCampaign(join(dir, 'any-host.yaml')).then(() => null, (e: unknown) => e);
        if (error === null) return;
        expect(error).toBeInstanceOf(CampaignError);
        const e = error as CampaignError;
        for (const p of e.problems) {
          expect(p.startsWith('hosts.0 (any.txt): ')).toBe(true);
          const rest = p.slice('hosts.0 (any.txt): '.length);
          if (rest.startsWith(`${join(dir, 'any.txt')} is not a valid profile: `)) continue;
          profilePaths(new ProfileError([rest]));
        }
        expectNoEcho(e.message, e.problems.map((p) => p.slice('hosts.0 (any.txt): '.length)), text, [...text.matchAll(SECRET_RE)].map((m) => m[0]));
      }),
      { numRuns: RUNS },
    );
  });
});
