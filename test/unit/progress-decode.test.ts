// client/progress.ts decodes a pending activity as the server describes it, through the client's
// data converter: with the payload codec on, the failure arrives as "Encoded failure" and the
// heartbeat details encrypted; both must come out readable (and the error redacted).
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { encodeErrorToFailure, encodeToPayload, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { msNumberToTs } from '@temporalio/common/lib/time.js';
import { expect, test } from 'vitest';
import { pendingActivity } from '../../client/progress.js';
import { AesGcmCodec, codecDataConverter, codecKeyId, ENCRYPTED_ENCODING } from '../../lib/codec.js';

test('a codec-encrypted failure and heartbeat of a retried install are decoded, the error redacted', async () => {
  const key = randomBytes(32);
  const converter = loadDataConverter(codecDataConverter(new AesGcmCodec([{ id: codecKeyId(key), key, file: '(test)' }])));
  const lastFailure = await encodeErrorToFailure(
    converter,
    ApplicationFailure.retryable('Command failed with exit code 22: curl https://ops:pa55-word-123@mirror.example/trixie.tar.zst', 'CommandFailed'),
  );
  const details = await encodeToPayload(converter, { phase: 'stream', sent: 300, total: 1000, startedAt: 1_000, at: 4_000 });
  // What the server holds: nothing of either in clear.
  expect(lastFailure.message).toBe('Encoded failure');
  expect(Buffer.from(details.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);

  const a = await pendingActivity(converter, {
    activityType: { name: 'installRelease' },
    state: 1 as never,
    attempt: 2,
    maximumAttempts: 5,
    lastFailure,
    heartbeatDetails: { payloads: [details] },
    lastHeartbeatTime: msNumberToTs(Date.parse('2026-12-02T14:00:00.000Z')),
    nextAttemptScheduleTime: msNumberToTs(Date.parse('2026-12-02T14:00:02.000Z')),
  });
  expect(a).toEqual({
    activity: 'installRelease',
    state: 'scheduled',
    attempt: 2,
    maximumAttempts: 5,
    lastError: 'Command failed with exit code 22: curl https://[redacted]@mirror.example/trixie.tar.zst [CommandFailed]',
    lastHeartbeatAt: '2026-12-02T14:00:00.000Z',
    nextAttemptAt: '2026-12-02T14:00:02.000Z',
    progress: { phase: 'stream', done: 300, unit: 'bytes', total: 1000, bytesPerSecond: 100, etaMs: 7000 },
  });
});

test('a first attempt without a failure or details: no lastError, no progress; no attempt limit reads null', async () => {
  const a = await pendingActivity(loadDataConverter(), { activityType: { name: 'awaitComeback' }, state: 2 as never, attempt: 1, maximumAttempts: 0 });
  expect(a).toEqual({ activity: 'awaitComeback', state: 'started', attempt: 1, maximumAttempts: null });
});

test("the health checks' heartbeat: their round and failing checks, a check's text redacted", async () => {
  const converter = loadDataConverter();
  const details = await encodeToPayload(converter, { round: 3, failing: ['ssh', 'command curl -fsS https://ops:pa55-word-123@127.0.0.1/health'] });
  const a = await pendingActivity(converter, { activityType: { name: 'checkHealth' }, state: 2 as never, attempt: 1, maximumAttempts: 3, heartbeatDetails: { payloads: [details] } });
  expect(a).toEqual({
    activity: 'checkHealth',
    state: 'started',
    attempt: 1,
    maximumAttempts: 3,
    health: { round: 3, failing: ['ssh', 'command curl -fsS https://[redacted]@127.0.0.1/health'] },
  });
});
