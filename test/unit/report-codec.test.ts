// The report reads encrypted histories: a recorded history with every payload encrypted by the
// real codec (lib/codec.ts) decodes through the client's codecs in client/report.ts; without the
// key the report says what it could not read instead of failing. The client is a stub that hands
// out the history (the server path is test/workflow/report-campaign.test.ts).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { describe, expect, test } from 'vitest';
import { historyFacts } from '../../client/report.js';
import { AesGcmCodec, codecKeyId, ENCRYPTED_ENCODING } from '../../lib/codec.js';
import { hostReport } from '../../lib/report-model.js';

// The histories as first recorded, which are never re-recorded (the replay test keeps them as
// the version already out there): the client identities asserted below are theirs.
const HISTORIES = join(import.meta.dirname, '..', 'histories');
const key = randomBytes(32);
const codec = new AesGcmCodec([{ id: codecKeyId(key), key, file: '(test)' }]);

/** The recorded history with every payload list encrypted. */
async function encryptedHistory(name: string) {
  const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(HISTORIES, `${name}.profile-checked-in-sandbox.json`), 'utf8')));
  const walk = async (node: unknown): Promise<void> => {
    if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'payloads' && Array.isArray(v)) (node as Record<string, unknown>)[k] = await codec.encode(v as Payload[]);
      else await walk(v);
    }
  };
  await walk(history);
  return history;
}

function stubClient(history: unknown, codecs: AesGcmCodec[]): Client {
  return {
    workflow: { getHandle: () => ({ fetchHistory: async () => history }) },
    options: { loadedDataConverter: { payloadCodecs: codecs, payloadConverter: defaultPayloadConverter } },
  } as unknown as Client;
}

describe('historyFacts with an encrypted history', () => {
  test('decrypts with the key: the approval and the final status read as in the clear', async () => {
    const history = await encryptedHistory('upgrade-committed-approved-by-update');
    const update = history.events!.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes)!;
    const sealed = update.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest!.input!.args!.payloads![0]!;
    expect(Buffer.from(sealed.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);

    const f = await historyFacts(stubClient(history, [codec]), 'ab-upgrade/h');
    expect(f.messages).toEqual([expect.objectContaining({ name: 'approve', input: { by: 'alice' }, identity: '30328@vm' })]);
    expect((f.result as { state: string }).state).toBe('committed');
    const m = hostReport({ status: f.result, workflowId: 'ab-upgrade/h', history: f, now: f.closedAt! });
    expect(m.approvals).toEqual([expect.objectContaining({ who: 'alice', decision: 'approved' })]);
    expect(m.problems).toEqual([]);
  });

  test('without the key: no status and an unreadable message, each reported', async () => {
    const f = await historyFacts(stubClient(await encryptedHistory('upgrade-committed-approved-by-update'), []), 'ab-upgrade/h');
    expect(f.messages[0]!.input).toEqual({ undecodable: expect.any(String) });
    const m = hostReport({ status: f.result, workflowId: 'ab-upgrade/h', history: f, now: f.closedAt! });
    expect(m.runs[0]!.phases).toEqual([]);
    expect(m.problems.join('\n')).toMatch(/status of h: /);
    expect(m.problems.join('\n')).toMatch(/update approve at .*: by: /);
  });
});
