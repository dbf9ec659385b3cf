// The AES-256-GCM payload codec and its key files.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, describe, expect, test } from 'vitest';
import { AesGcmCodec, CodecError, configuredDataConverter, ENCRYPTED_ENCODING, readCodecKey } from '../../lib/codec.js';

const dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-codec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A key file holding `content` with `mode`; by default a fresh valid key, mode 0600. */
function keyFile(content = randomBytes(32).toString('base64') + '\n', mode = 0o600): string {
  const f = join(dir, `key-${++n}`);
  writeFileSync(f, content);
  chmodSync(f, mode);
  return f;
}

const json = (v: unknown) => defaultPayloadConverter.toPayload(v) as Payload;
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? []).toString('utf8');

describe('AesGcmCodec', () => {
  const secret = { profile: { name: 'web-1', host: 'marker-3f9c.example.org' } };

  test('round trip: payloads come back byte for byte; the encoded ones hold no plaintext and name the key', async () => {
    const codec = AesGcmCodec.fromFiles([keyFile()]);
    const binary: Payload = { metadata: { encoding: Buffer.from('binary/plain') }, data: randomBytes(300) };
    const empty: Payload = { metadata: { encoding: Buffer.from('binary/null') } };
    const input = [json(secret), binary, empty];
    const encoded = await codec.encode(input);
    expect(encoded).toHaveLength(3);
    for (const p of encoded) {
      expect(text(p.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(p.metadata!['encryption-key-id'])).toBe(codec.currentKeyId);
      expect(text(p.metadata!['encryption-cipher'])).toBe('AES-256-GCM');
      expect(Object.keys(p.metadata!)).toHaveLength(3);
      expect(text(p.data)).not.toContain('marker-3f9c');
      expect(text(p.data)).not.toContain('json/plain');
    }
    // A fresh IV each time: the same payload never encrypts to the same bytes.
    const again = await codec.encode([json(secret)]);
    expect(Buffer.from(again[0]!.data!).equals(Buffer.from(encoded[0]!.data!))).toBe(false);

    const decoded = await codec.decode(encoded);
    expect(defaultPayloadConverter.fromPayload(decoded[0]!)).toEqual(secret);
    expect(Buffer.from(decoded[1]!.data!).equals(Buffer.from(binary.data!))).toBe(true);
    expect(text(decoded[1]!.metadata!.encoding)).toBe('binary/plain');
    expect(text(decoded[2]!.metadata!.encoding)).toBe('binary/null');
    expect(decoded[2]!.data?.length ?? 0).toBe(0);
    expect(await codec.encode([])).toEqual([]);
  });

  test('payloads that are not encrypted pass decode unchanged', async () => {
    const codec = AesGcmCodec.fromFiles([keyFile()]);
    const plain = json(secret);
    expect(await codec.decode([plain])).toEqual([plain]);
  });

  test('tampering is detected: a flipped bit in the ciphertext, IV or tag, or a changed cipher name', async () => {
    const codec = AesGcmCodec.fromFiles([keyFile()]);
    const [p] = await codec.encode([json(secret)]);
    for (const at of [0, 20, p!.data!.length - 1]) {
      const data = Buffer.from(p!.data!);
      data[at]! ^= 1;
      await expect(codec.decode([{ ...p, data }])).rejects.toThrow(/failed authentication: it was altered/);
    }
    await expect(codec.decode([{ ...p, data: Buffer.from(p!.data!).subarray(0, 20) }])).rejects.toThrow(/truncated/);
    const otherCipher = { ...p, metadata: { ...p!.metadata, 'encryption-cipher': Buffer.from('AES-128-CBC') } };
    await expect(codec.decode([otherCipher])).rejects.toThrow(/cipher "AES-128-CBC"; this codec reads AES-256-GCM only/);
  });

  test('a payload of another key: a clear error naming its key id and the configured ones', async () => {
    const a = AesGcmCodec.fromFiles([keyFile()]);
    const b = AesGcmCodec.fromFiles([keyFile()]);
    const [p] = await a.encode([json(secret)]);
    const err = await b.decode([p!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CodecError);
    expect((err as Error).message).toBe(
      `payload encrypted with codec key "${a.currentKeyId}", which is not among the configured keys (${b.currentKeyId}); add its key file to AB_UPGRADE_CODEC_KEY or --codec-key`,
    );
    // Claiming the other key's id does not help: the key id is authenticated too.
    const relabelled = { ...p, metadata: { ...p!.metadata, 'encryption-key-id': Buffer.from(b.currentKeyId) } };
    await expect(b.decode([relabelled])).rejects.toThrow(/failed authentication/);
  });

  test('key rotation: the first key encrypts, every listed key decrypts', async () => {
    const oldFile = keyFile();
    const newFile = keyFile();
    const before = AesGcmCodec.fromFiles([oldFile]);
    const after = AesGcmCodec.fromFiles([newFile, oldFile]);
    expect(after.keyIds).toEqual([readCodecKey(newFile).id, before.currentKeyId]);
    const [old] = await before.encode([json(secret)]);
    const [fresh] = await after.encode([json(secret)]);
    expect(text(fresh!.metadata!['encryption-key-id'])).toBe(readCodecKey(newFile).id);
    const decoded = await after.decode([old!, fresh!]);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([secret, secret]);
    // Once the old key is dropped, what it encrypted is refused by name.
    await expect(AesGcmCodec.fromFiles([newFile]).decode([old!])).rejects.toThrow(`codec key "${before.currentKeyId}"`);
  });

  test('the key id is derived from the key: the same key in another file has the same id', () => {
    const key = randomBytes(32).toString('base64');
    expect(readCodecKey(keyFile(key)).id).toBe(readCodecKey(keyFile(`${key}\n`)).id);
    expect(readCodecKey(keyFile(key)).id).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('key files', () => {
  test('refused, naming the file: readable or writable by group or others', () => {
    for (const mode of [0o640, 0o604, 0o620, 0o644]) {
      const f = keyFile(undefined, mode);
      expect(() => readCodecKey(f)).toThrow(
        `codec key file ${f} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}); it must be readable by its owner only: chmod 600 ${f}`,
      );
    }
    expect(readCodecKey(keyFile(undefined, 0o400)).key).toHaveLength(32);
  });

  test('refused, naming the file and never quoting it: wrong length, not base64, raw bytes', () => {
    const wrong = [
      randomBytes(16).toString('base64'),
      randomBytes(33).toString('base64'),
      randomBytes(32).toString('hex'),
      randomBytes(32).toString('base64url'),
      'c2VjcmV0LXBhc3N3b3JkLXRoYXQtaXMtbm90LWEta2V5',
      '',
    ];
    for (const content of wrong) {
      const f = keyFile(content);
      const err = (() => {
        try {
          readCodecKey(f);
        } catch (e) {
          return e as Error;
        }
        throw new Error(`accepted ${content}`);
      })();
      expect(err).toBeInstanceOf(CodecError);
      expect(err.message).toContain(`codec key file ${f} must hold 32 random bytes in base64 on one line`);
      if (content) expect(err.message).not.toContain(content);
    }
    const raw = join(dir, 'raw');
    writeFileSync(raw, randomBytes(32), { mode: 0o600 });
    expect(() => readCodecKey(raw)).toThrow(/must hold 32 random bytes in base64/);
  });

  test('refused: missing file, a directory', () => {
    expect(() => readCodecKey(join(dir, 'absent'))).toThrow(`codec key file ${join(dir, 'absent')}: cannot read it (ENOENT)`);
    const sub = join(dir, 'a-directory');
    mkdirSync(sub, { mode: 0o700 });
    expect(() => readCodecKey(sub)).toThrow(`codec key file ${sub} is not a regular file`);
  });

  test('AB_UPGRADE_CODEC_KEY: unset means no codec; a comma list gives the current key first; a bad file is an error', () => {
    expect(configuredDataConverter({})).toBeUndefined();
    expect(configuredDataConverter({ AB_UPGRADE_CODEC_KEY: ' ' })).toBeUndefined();
    const [k1, k2] = [keyFile(), keyFile()];
    const dc = configuredDataConverter({ AB_UPGRADE_CODEC_KEY: `${k1}, ${k2}` })!;
    const codec = dc.payloadCodecs![0] as AesGcmCodec;
    expect(codec.keyIds).toEqual([readCodecKey(k1).id, readCodecKey(k2).id]);
    expect(dc.failureConverterPath).toMatch(/encoded-failure-converter\.cjs$/);
    expect(() => configuredDataConverter({ AB_UPGRADE_CODEC_KEY: `${k1},${keyFile(undefined, 0o644)}` })).toThrow(/accessible by group or others/);
  });
});
