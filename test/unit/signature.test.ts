// The profile's release signature fields, and minisign's key and signature formats as read to
// name keys and causes (the cryptographic check is minisign's: test/unit/release-image.test.ts).
import { describe, expect, it } from 'vitest';
import { parseProfile, ProfileError } from '../../lib/profile.js';
import { MinisignFormatError, parsePublicKey, parseSignature } from '../../lib/signature.js';

// Made with minisign 0.11: `minisign -G -W`, then `minisign -S` of a file named f (and -l for the legacy one).
const PUB = 'untrusted comment: minisign public key B9FC5AA62FD91C02\nRWQCHNkvplr8ufgOpgOwQk+IJLag+PqVf/daq+h2egGnVjJ1Iad2gIdK\n';
const KEY = 'RWQCHNkvplr8ufgOpgOwQk+IJLag+PqVf/daq+h2egGnVjJ1Iad2gIdK';
const SIG = `untrusted comment: signature from minisign secret key
RUQCHNkvplr8ufM3tqXUGQzCq2KGpmeguDTKQy4bVnTEFzRnyV8TLnpfw+fFp4pZ/pu4ckYQywU79ru1UhKV1vs4KzYAZALFDQU=
trusted comment: timestamp:1796197790\tfile:f\thashed
gbRB59qDeaJmKZfgIJNj4/EDcJ59XBih1CYcPrcPwocY0kiFTaK0NFRye6U5uyENLrOuAjCzrmcas5P8Xb3nAw==
`;

describe('minisign formats', () => {
  it('reads the key id of a .pub file and of the key line alone, as minisign prints it', () => {
    expect(parsePublicKey(PUB)).toEqual({ keyId: 'B9FC5AA62FD91C02', key: KEY });
    expect(parsePublicKey(KEY)).toEqual({ keyId: 'B9FC5AA62FD91C02', key: KEY });
  });

  it('reads a signature: its key id, whether it is prehashed, the trusted comment', () => {
    expect(parseSignature(SIG)).toEqual({ keyId: 'B9FC5AA62FD91C02', prehashed: true, trustedComment: 'timestamp:1796197790\tfile:f\thashed' });
    const legacy = SIG.replace('RUQCHNkvplr8uf', 'RWQCHNkvplr8uf'); // "Ed": the legacy algorithm
    expect(parseSignature(legacy).prehashed).toBe(false);
  });

  it('refuses what is not a key or a signature, saying what was expected', () => {
    expect(() => parsePublicKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl')).toThrow(MinisignFormatError);
    expect(() => parsePublicKey(`${PUB}extra line\n`)).toThrow(/not a minisign public key/);
    expect(() => parseSignature(PUB)).toThrow(/not a minisign signature \(expected 4 lines/);
    expect(() => parseSignature(SIG.replace(/^RUQ\S+/m, 'RUQCHNkvplr8uf'))).toThrow(/not an Ed25519 signature/);
    expect(() => parseSignature(SIG.replace('trusted comment: ', 'comment: '))).toThrow(/not a minisign signature/);
  });
});

const base = () => ({
  host: 'db1',
  auth: { agent: true },
  hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
  slots: 'auto',
  data: { device: 'LABEL=data', mountPoint: '/srv/data' },
});
const SHA = 'ab'.repeat(32);
const problemsOf = (release: Record<string, unknown>): string[] => {
  try {
    parseProfile({ ...base(), release });
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(ProfileError);
    return (e as ProfileError).problems;
  }
};

describe('profile: an image release is signed, or explicitly allowed unsigned', () => {
  it('accepts a signature path or URL with a .pub path or the key itself; sha256 is optional then', () => {
    const a = parseProfile({ ...base(), release: { source: 'image', url: '/srv/i/t.tar.zst', signature: '/srv/i/t.tar.zst.minisig', publicKey: '/etc/ab-upgrade/release.pub' } }).release;
    expect(a).toEqual({ source: 'image', url: '/srv/i/t.tar.zst', signature: '/srv/i/t.tar.zst.minisig', publicKey: '/etc/ab-upgrade/release.pub', allowUnsigned: false, format: 'tar.zst' });
    const b = parseProfile({ ...base(), release: { source: 'image', url: 'https://img.example.net/t.tar', sha256: SHA, signature: 'https://img.example.net/t.tar.minisig', publicKey: KEY } }).release;
    expect(b).toMatchObject({ signature: 'https://img.example.net/t.tar.minisig', publicKey: KEY, sha256: SHA, allowUnsigned: false });
  });

  it('accepts allowUnsigned: true with a sha256', () => {
    expect(parseProfile({ ...base(), release: { source: 'image', url: '/srv/i/t.tar', sha256: SHA, allowUnsigned: true } }).release).toMatchObject({ allowUnsigned: true, sha256: SHA });
  });

  it.each([
    ['no signature and no allowUnsigned', { sha256: SHA }, /^release\.signature: required: a minisign signature .*allowUnsigned: true/],
    ['a signature without publicKey', { signature: '/srv/i/t.minisig' }, /^release\.publicKey: required with signature/],
    ['a publicKey without signature', { publicKey: KEY }, /^release\.signature: required with publicKey/],
    ['allowUnsigned with a signature', { signature: '/srv/i/t.minisig', publicKey: KEY, allowUnsigned: true }, /^release\.allowUnsigned: must not be set for a signed release/],
    ['allowUnsigned without sha256', { allowUnsigned: true }, /^release\.sha256: required for an unsigned image/],
    ['a relative signature path', { signature: 't.minisig', publicKey: KEY }, /^release\.signature: must be the absolute path or the http\(s\) URL/],
    ['a signature path with ..', { signature: '/srv/../t.minisig', publicKey: KEY }, /^release\.signature: must not contain "\.\."/],
    ['an ftp signature URL', { signature: 'ftp://img.example.net/t.minisig', publicKey: KEY }, /^release\.signature: must be the absolute path or the http\(s\) URL/],
    ['a public key URL', { signature: '/srv/i/t.minisig', publicKey: 'https://img.example.net/release.pub' }, /^release\.publicKey: must be the absolute path of a minisign \.pub file or the key itself/],
    ['an SSH key as publicKey', { signature: '/srv/i/t.minisig', publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl' }, /^release\.publicKey: must be /],
    ['a truncated key', { signature: '/srv/i/t.minisig', publicKey: KEY.slice(0, 40) }, /^release\.publicKey: must be /],
    ['allowUnsigned not a boolean', { sha256: SHA, allowUnsigned: 'yes' }, /^release\.allowUnsigned: /],
  ])('%s: names the field', (_label, fields, message) => {
    const problems = problemsOf({ source: 'image', url: '/srv/i/t.tar.zst', ...fields });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('a signature URL with credentials is refused without echoing them', () => {
    const problems = problemsOf({ source: 'image', url: '/srv/i/t.tar', signature: 'https://u:s3cr3t-pw@img.example.net/t.minisig', publicKey: KEY });
    expect(problems).toEqual([expect.stringMatching(/^release\.signature: must not contain a user name or password/)]);
    expect(problems.join()).not.toContain('s3cr3t-pw');
  });

  it.each(['signature', 'publicKey', 'allowUnsigned', 'sha256'])('a debootstrap release refuses %s: debootstrap checks the archive keyring itself', (field) => {
    const value = field === 'allowUnsigned' ? true : field === 'sha256' ? SHA : field === 'publicKey' ? KEY : '/srv/t.minisig';
    expect(problemsOf({ source: 'debootstrap', suite: 'trixie', [field]: value })).toEqual([
      `release.${field}: only for image releases: debootstrap checks the suite against the Debian archive keyring on the host`,
    ]);
  });
});
