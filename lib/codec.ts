// Optional payload encryption: an AES-256-GCM PayloadCodec, so that workflow histories on a
// shared Temporal cluster hold ciphertext instead of profiles, statuses and error messages.
//
// Keys: files of 32 random bytes written as base64 on one line (`openssl rand -base64 32`),
// mode 0600 or stricter. AB_UPGRADE_CODEC_KEY (or the CLI's --codec-key) names them, separated
// by commas: the first encrypts, every one decrypts, so a key is rotated by putting the new file
// first and keeping the old one listed until no history that needs it is read any more.
//
// An encrypted payload carries the metadata `encoding: binary/encrypted`, `encryption-cipher:
// AES-256-GCM` and `encryption-key-id: <id>`, where the id is derived from the key (an HMAC, it
// tells nothing about the key). Its data is a 12-byte random IV, the ciphertext of the original
// payload (metadata and data, as JSON with base64 values) and the 16-byte GCM tag; the cipher
// name and key id are authenticated as well. Payloads without that encoding pass decode
// unchanged (histories written before the codec was turned on stay readable).
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';

export const CODEC_KEY_ENV = 'AB_UPGRADE_CODEC_KEY';
export const ENCRYPTED_ENCODING = 'binary/encrypted';
const CIPHER_NAME = 'AES-256-GCM';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/** A key file that cannot be used, or a payload that cannot be decrypted; the message says which and why. */
export class CodecError extends Error {
  override name = 'CodecError';
}

export interface CodecKey {
  /** Derived from the key; stored with every payload it encrypts. */
  id: string;
  key: Buffer;
  /** The file it was read from (for messages). */
  file: string;
}

/** The key id of `key`: 16 hex digits of an HMAC keyed by it (reveals nothing about the key). */
export function codecKeyId(key: Buffer): string {
  return createHmac('sha256', key).update('ab-upgrade payload codec key id').digest('hex').slice(0, 16);
}

/**
 * Reads one key file. Refused, naming the file: not a regular file, any permission for group or
 * others, or content other than 32 bytes in base64. The content is never quoted.
 */
export function readCodecKey(file: string): CodecKey {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new CodecError(`codec key file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new CodecError(`codec key file ${file} is not a regular file`);
  const mode = st.mode & 0o777;
  if (mode & 0o077) {
    throw new CodecError(
      `codec key file ${file} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}); it must be readable by its owner only: chmod 600 ${file}`,
    );
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!KEY_BASE64.test(text)) {
    throw new CodecError(
      `codec key file ${file} must hold ${KEY_BYTES} random bytes in base64 on one line (44 characters, e.g. from: openssl rand -base64 32); it holds ${text.length} characters that are not that`,
    );
  }
  const key = Buffer.from(text, 'base64');
  return { id: codecKeyId(key), key, file };
}

/** The key files named by a comma-separated list (the current key first). */
export function codecKeyFiles(list: string): string[] {
  return list
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/** AES-256-GCM over whole payloads; encrypts with the first key, decrypts with any of them. */
export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, CodecKey>;

  constructor(private readonly keys: CodecKey[]) {
    if (keys.length === 0) throw new CodecError('the payload codec needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k]));
  }

  /** Reads the key files (the first one encrypts). */
  static fromFiles(files: string[]): AesGcmCodec {
    return new AesGcmCodec(files.map(readCodecKey));
  }

  get currentKeyId(): string {
    return this.keys[0]!.id;
  }

  get keyIds(): string[] {
    return [...this.byId.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => (text(p.metadata?.encoding) === ENCRYPTED_ENCODING ? this.decrypt(p) : p));
  }

  private encrypt(p: Payload): Payload {
    const k = this.keys[0]!;
    const plain = Buffer.from(
      JSON.stringify({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([name, v]) => [name, b64(v)])), data: b64(p.data) }),
    );
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', k.key, iv);
    cipher.setAAD(associatedData(k.id));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: {
        encoding: Buffer.from(ENCRYPTED_ENCODING),
        'encryption-cipher': Buffer.from(CIPHER_NAME),
        'encryption-key-id': Buffer.from(k.id),
      },
      data: Buffer.concat([iv, body, cipher.getAuthTag()]),
    };
  }

  private decrypt(p: Payload): Payload {
    const cipherName = text(p.metadata?.['encryption-cipher']);
    if (cipherName !== CIPHER_NAME) throw new CodecError(`encrypted payload with cipher ${JSON.stringify(cipherName ?? null)}; this codec reads ${CIPHER_NAME} only`);
    const id = text(p.metadata?.['encryption-key-id']) ?? '';
    const k = this.byId.get(id);
    if (!k) {
      throw new CodecError(
        `payload encrypted with codec key ${JSON.stringify(id)}, which is not among the configured keys (${this.keyIds.join(', ')}); add its key file to ${CODEC_KEY_ENV} or --codec-key`,
      );
    }
    const data = Buffer.from(p.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new CodecError(`encrypted payload (key ${id}) is truncated: ${data.length} bytes`);
    const decipher = createDecipheriv('aes-256-gcm', k.key, data.subarray(0, IV_BYTES));
    decipher.setAAD(associatedData(id));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new CodecError(`encrypted payload (key ${id}, file ${k.file}) failed authentication: it was altered, or was not encrypted with this key`);
    }
    const inner = JSON.parse(plain.toString('utf8')) as { metadata: Record<string, string>; data: string };
    return {
      metadata: Object.fromEntries(Object.entries(inner.metadata).map(([name, v]) => [name, Buffer.from(v, 'base64')])),
      data: Buffer.from(inner.data, 'base64'),
    };
  }
}

function associatedData(keyId: string): Buffer {
  return Buffer.from(`${CIPHER_NAME}\0${keyId}`);
}

/**
 * Loaded with require() by the worker and bundled into the workflow sandbox: a failure converter
 * that moves failure messages and stack traces into a payload, which the codec then encrypts.
 */
export const encodedFailureConverterPath = fileURLToPath(new URL('./encoded-failure-converter.cjs', import.meta.url));

/** The data converter for worker and client: the codec, and failures encoded so it covers them. */
export function codecDataConverter(codec: AesGcmCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: encodedFailureConverterPath };
}

/** The codec named by AB_UPGRADE_CODEC_KEY, or undefined when it is unset (no encryption). */
export function configuredCodec(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const files = codecKeyFiles(env[CODEC_KEY_ENV] ?? '');
  return files.length ? AesGcmCodec.fromFiles(files) : undefined;
}

/** The data converter for AB_UPGRADE_CODEC_KEY; undefined (the SDK's default) when it is unset. */
export function configuredDataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const codec = configuredCodec(env);
  return codec ? codecDataConverter(codec) : undefined;
}
