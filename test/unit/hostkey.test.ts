import { describe, expect, it } from 'vitest';
import {
  describeExpected,
  fingerprintOfKeyBlob,
  hostKeyAlgorithmsFor,
  hostKeyMatches,
  keyTypeOfBlob,
  normalizeFingerprint,
  parseExpectedHostKey,
  parseExpectedHostKeys,
} from '../../lib/hostkey.js';

// Generated with ssh-keygen; fingerprints as printed by `ssh-keygen -E sha256 -lf`.
const ED25519 = {
  line: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBtqRRaY+Yelj+iTnd+Mo6vS+tX2pbZStSgpanMEu9q fixture-ed25519',
  fp: 'SHA256:IqWGp9BNGFxfWBBUd/zxmtrrJbDHx7syFWx8YA0tW+s',
};
const RSA = {
  line:
    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCra4shsvfFhXppiIGFhi4mBBeC1fCcHvEecLxkfbzrjQhOfxdfYsrGlzB33ZxNp5i5uIdUEnXiGiOiH36h33JUbWQWEIDIyp6NmG5lF2+4/PRtJSgOA09UmbrmpKHi9kKC4PfpqBn5OfEa9mASmqKo7YiooPZhbd97mCH4dePEB0BaUAZiytXs1uHXwP7BWize9AYucSzqlQuWqhQL2EpW3f48U/ojvlAfwPW8NdTU2yTpIJx+TdWVilrGHvwV6CLK+Nisns8KDUur9FpW3BzIxn6jnRmr9lrGkLAYab+ZlJOf1VjefpsnlEFu6Dbqsyr5aE3jyP9uUJmh+3E2Fxxf fixture-rsa',
  fp: 'SHA256:P3XgJDyHIIJ8a6/V9vqyg3Q4dfdmEpuGJFYabeTpGxo',
};
const ECDSA = {
  line:
    'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMo0dVAyy2m4pkvPoQBFFc4WutN7tYf8cn30zmDrBa6RIHOJt2GkoTpk9o+KEigP80Y5HIkSF8wk/3Q3ZPzYFBc= fixture-ecdsa',
  fp: 'SHA256:+rlB5Ui/JM4qjaRt7Rd27CXaLUBbVxT5zC/aaO9uXY4',
};
const blobOf = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64');

describe('fingerprints', () => {
  it('match ssh-keygen -lf for ed25519, rsa and ecdsa keys', () => {
    for (const k of [ED25519, RSA, ECDSA]) expect(fingerprintOfKeyBlob(blobOf(k.line))).toBe(k.fp);
  });

  it('read the key type out of a blob', () => {
    expect(keyTypeOfBlob(blobOf(ED25519.line))).toBe('ssh-ed25519');
    expect(keyTypeOfBlob(blobOf(RSA.line))).toBe('ssh-rsa');
    expect(keyTypeOfBlob(blobOf(ECDSA.line))).toBe('ecdsa-sha2-nistp256');
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBeNull();
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0, 200, 1]))).toBeNull();
    expect(keyTypeOfBlob(Buffer.from('not a key'))).toBeNull();
  });

  it('normalise SHA256 fingerprints with or without padding and refuse others', () => {
    expect(normalizeFingerprint(`${ED25519.fp}=`)).toBe(ED25519.fp);
    expect(normalizeFingerprint(`  ${ED25519.fp}\n`)).toBe(ED25519.fp);
    expect(normalizeFingerprint('MD5:12:34')).toBeNull();
    expect(normalizeFingerprint('SHA256:short')).toBeNull();
    expect(normalizeFingerprint(ED25519.fp.replace('SHA256:', 'sha256:'))).toBeNull();
  });
});

describe('parseExpectedHostKey', () => {
  it('accepts a fingerprint', () => {
    expect(parseExpectedHostKey(ED25519.fp)).toEqual({ kind: 'fingerprint', fingerprint: ED25519.fp });
  });

  it('accepts a public key line, with or without comment', () => {
    const k = parseExpectedHostKey(ED25519.line);
    expect(k.kind).toBe('key');
    expect(k.fingerprint).toBe(ED25519.fp);
    if (k.kind === 'key') {
      expect(k.keyType).toBe('ssh-ed25519');
      expect(k.blob.equals(blobOf(ED25519.line))).toBe(true);
    }
    expect(parseExpectedHostKey(ED25519.line.split(' ').slice(0, 2).join(' ')).fingerprint).toBe(ED25519.fp);
  });

  it('accepts known_hosts lines (plain, bracketed port, hashed host)', () => {
    for (const hosts of ['host.example,10.0.0.1', '[10.0.0.1]:2222', '|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g=']) {
      expect(parseExpectedHostKey(`${hosts} ${RSA.line}`).fingerprint).toBe(RSA.fp);
    }
    expect(parseExpectedHostKey(`host\t${ECDSA.line}`).fingerprint).toBe(ECDSA.fp);
  });

  it('refuses markers, garbage, corrupt base64 and type/blob disagreement', () => {
    expect(() => parseExpectedHostKey(`@cert-authority * ${ED25519.line}`)).toThrow(/not supported/);
    expect(() => parseExpectedHostKey(`@revoked * ${ED25519.line}`)).toThrow(/not supported/);
    expect(() => parseExpectedHostKey('')).toThrow(/SHA256/);
    expect(() => parseExpectedHostKey('yes')).toThrow(/SHA256/);
    expect(() => parseExpectedHostKey('MD5:aa:bb:cc')).toThrow(/SHA256/);
    expect(() => parseExpectedHostKey('ssh-ed25519 not*base64')).toThrow(/base64/);
    const b64 = ED25519.line.split(' ')[1]!;
    expect(() => parseExpectedHostKey(`ssh-rsa ${b64}`)).toThrow(/says ssh-rsa but the key data is ssh-ed25519/);
    expect(() => parseExpectedHostKey(`ssh-ed25519 ${Buffer.from('hello world').toString('base64')}`)).toThrow(
      /not an SSH public key/,
    );
  });

  it('parses several lines (ssh-keyscan output), skipping blanks and comments', () => {
    const keys = parseExpectedHostKeys(`# host\n${ED25519.line}\n\n${RSA.line}\n`);
    expect(keys.map((k) => k.fingerprint)).toEqual([ED25519.fp, RSA.fp]);
    expect(() => parseExpectedHostKeys('\n# nothing\n')).toThrow(/empty/);
    expect(describeExpected(keys)).toBe(`${ED25519.fp}, ${RSA.fp}`);
  });
});

describe('hostKeyMatches', () => {
  const presented = blobOf(ED25519.line);

  it('matches the same key by fingerprint or by key line', () => {
    expect(hostKeyMatches([parseExpectedHostKey(ED25519.fp)], presented)).toBe(true);
    expect(hostKeyMatches([parseExpectedHostKey(ED25519.line)], presented)).toBe(true);
    expect(hostKeyMatches(parseExpectedHostKeys(`${RSA.line}\n${ED25519.line}`), presented)).toBe(true);
  });

  it('refuses any other key', () => {
    expect(hostKeyMatches([parseExpectedHostKey(RSA.fp)], presented)).toBe(false);
    expect(hostKeyMatches([parseExpectedHostKey(RSA.line)], presented)).toBe(false);
    expect(hostKeyMatches([parseExpectedHostKey(ECDSA.line)], presented)).toBe(false);
    const flipped = Buffer.from(presented);
    flipped[flipped.length - 1]! ^= 1;
    expect(hostKeyMatches([parseExpectedHostKey(ED25519.line)], flipped)).toBe(false);
    expect(hostKeyMatches([parseExpectedHostKey(ED25519.fp)], flipped)).toBe(false);
    expect(hostKeyMatches([], presented)).toBe(false);
  });
});

describe('hostKeyAlgorithmsFor', () => {
  it('offers only the pinned key types, RSA with its SHA-2 signatures', () => {
    expect(hostKeyAlgorithmsFor([parseExpectedHostKey(ED25519.line)])).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithmsFor([parseExpectedHostKey(RSA.line)])).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(hostKeyAlgorithmsFor(parseExpectedHostKeys(`${ECDSA.line}\n${ED25519.line}`))).toEqual([
      'ecdsa-sha2-nistp256',
      'ssh-ed25519',
    ]);
  });

  it('offers everything when a fingerprint is pinned (its key type is unknown)', () => {
    expect(hostKeyAlgorithmsFor([parseExpectedHostKey(ED25519.fp)])).toBeUndefined();
    expect(hostKeyAlgorithmsFor([parseExpectedHostKey(ED25519.fp), parseExpectedHostKey(RSA.line)])).toBeUndefined();
  });
});
