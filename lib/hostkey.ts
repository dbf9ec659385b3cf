// Host key pinning helpers. Pure: no I/O, no dependencies beyond node:crypto.
//
// A profile pins the host key either as an OpenSSH fingerprint (`SHA256:<base64>`, what
// `ssh-keygen -lf` prints) or as a public key line (`ssh-ed25519 AAAA...`, with or without a
// leading known_hosts host field and a trailing comment). The SSH client hands us the raw key blob
// the server presented; we compare fingerprints, or the key blobs themselves when we have them.
import { createHash } from 'node:crypto';

/** Key types OpenSSH writes in public key / known_hosts lines. */
const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** The host key *algorithms* a client may offer for each key type (RSA keys sign with SHA-2 too). */
const ALGORITHMS_FOR_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
};

export type ExpectedHostKey =
  | { kind: 'fingerprint'; fingerprint: string }
  | { kind: 'key'; keyType: string; blob: Buffer; fingerprint: string };

/** `SHA256:<unpadded base64 of sha256(blob)>`, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintOfKeyBlob(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH wire-format public key blob (its first string), or null. */
export function keyTypeOfBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return null;
  const type = blob.subarray(4, 4 + len).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : null;
}

const FINGERPRINT_RE = /^SHA256:([A-Za-z0-9+/]{43})=?$/;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Normalise a `SHA256:...` fingerprint (drops base64 padding); null when it is not one. */
export function normalizeFingerprint(s: string): string | null {
  const m = FINGERPRINT_RE.exec(s.trim());
  return m ? `SHA256:${m[1]}` : null;
}

function decodeStrictBase64(s: string): Buffer | null {
  if (!BASE64_RE.test(s) || s.length % 4 === 1) return null;
  const buf = Buffer.from(s, 'base64');
  // Reject anything Node's lenient decoder silently repaired.
  if (buf.toString('base64').replace(/=+$/, '') !== s.replace(/=+$/, '')) return null;
  return buf;
}

/** Parse one pinned key: a fingerprint, or a public key / known_hosts line. Throws on anything else. */
export function parseExpectedHostKey(spec: string): ExpectedHostKey {
  const line = spec.trim();
  const fp = normalizeFingerprint(line);
  if (fp) return { kind: 'fingerprint', fingerprint: fp };

  const fields = line.split(/\s+/);
  if (fields[0]?.startsWith('@')) {
    throw new Error(`host key ${fields[0]} lines are not supported; pin the host's own key or its SHA256 fingerprint`);
  }
  // `[hosts] keytype base64 [comment...]`: the key type is field 0 or field 1.
  for (const i of [0, 1]) {
    const keyType = fields[i];
    const b64 = fields[i + 1];
    if (keyType === undefined || b64 === undefined || !KEY_TYPES.has(keyType)) continue;
    const blob = decodeStrictBase64(b64);
    if (!blob) throw new Error(`host key: the ${keyType} key is not valid base64`);
    const inner = keyTypeOfBlob(blob);
    if (inner !== keyType) {
      throw new Error(`host key: the line says ${keyType} but the key data is ${inner ?? 'not an SSH public key'}`);
    }
    return { kind: 'key', keyType, blob, fingerprint: fingerprintOfKeyBlob(blob) };
  }
  throw new Error(
    'host key must be "SHA256:..." (ssh-keygen -lf) or a public key / known_hosts line such as "ssh-ed25519 AAAA..."',
  );
}

/**
 * Parse a pin that may hold several keys, one per line (e.g. `ssh-keyscan` output).
 * Blank lines and `#` comments are ignored; at least one key is required.
 */
export function parseExpectedHostKeys(spec: string): ExpectedHostKey[] {
  const lines = spec
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new Error('host key is empty');
  return lines.map(parseExpectedHostKey);
}

/** Does the key blob the server presented match one of the pinned keys? */
export function hostKeyMatches(expected: readonly ExpectedHostKey[], presentedBlob: Buffer): boolean {
  const presentedFp = fingerprintOfKeyBlob(presentedBlob);
  return expected.some((e) =>
    e.kind === 'fingerprint' ? e.fingerprint === presentedFp : e.blob.equals(presentedBlob),
  );
}

/** The pinned keys' fingerprints, for messages. */
export function describeExpected(expected: readonly ExpectedHostKey[]): string {
  return expected.map((e) => e.fingerprint).join(', ');
}

/**
 * Host key algorithms to offer so the server presents the pinned key type (a server with ed25519
 * and RSA keys would otherwise present whichever the client prefers). Undefined when only
 * fingerprints are pinned: then the key type is unknown and every algorithm must be offered.
 */
export function hostKeyAlgorithmsFor(expected: readonly ExpectedHostKey[]): string[] | undefined {
  if (expected.some((e) => e.kind === 'fingerprint')) return undefined;
  const algos: string[] = [];
  for (const e of expected) {
    if (e.kind !== 'key') continue;
    for (const a of ALGORITHMS_FOR_TYPE[e.keyType] ?? []) if (!algos.includes(a)) algos.push(a);
  }
  return algos.length ? algos : undefined;
}
