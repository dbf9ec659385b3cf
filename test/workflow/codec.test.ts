// The payload codec on a real dev server: a worker and the CLI's client, both configured by
// AB_UPGRADE_CODEC_KEY, run upgrades of the fake host; the histories as stored hold ciphertext
// only (no profile, status or failure message in clear) and decode with the key. One upgrade
// references a private key file and a Redfish password file that the real power activity reads,
// so the secret scan of this file (run when the environment closes) has secrets to look for.
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { connectClient, hostStatus, lastProfile } from '../../client/temporal.js';
import { configuredDataConverter, readCodecKey } from '../../lib/codec.js';
import type { HostActivities } from '../../lib/contract.js';
import { hostWorkflowId, type Profile } from '../../lib/profile.js';
import { finalStatusFrom, startOptions, type WorkflowStatus } from '../../lib/workflow-api.js';
import { upgradeHost } from '../../workflows/index.js';
import type { FakeHost, FakeHostScript } from '../helpers/fake-host.js';
import { registerSecretFile, secretFixtures, storedHistory, type SecretFixtures } from '../helpers/secret-scan.js';
import { fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

const savedEnv = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS, AB_UPGRADE_CODEC_KEY: process.env.AB_UPGRADE_CODEC_KEY };
const keyDir = mkdtempSync(join(tmpdir(), 'ab-upgrade-codec-key-'));
const keyFile = join(keyDir, 'codec.key');
let env: WorkflowEnv;
/** The CLI's client (connectClient), with the codec from AB_UPGRADE_CODEC_KEY. */
let cli: Client;
/** A client without the codec: sees the histories as the server stores them. */
let plain: Client;
let secrets: SecretFixtures;

beforeAll(async () => {
  writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`);
  chmodSync(keyFile, 0o600);
  registerSecretFile('codec key', keyFile);
  secrets = secretFixtures();
  process.env.AB_UPGRADE_CODEC_KEY = keyFile;
  env = await setupWorkflowEnv({ dataConverter: configuredDataConverter() });
  process.env.TEMPORAL_ADDRESS = env.address;
  cli = await connectClient();
  plain = new Client({ connection: cli.connection, namespace: 'default' });
});
afterAll(async () => {
  await cli?.connection.close();
  await env?.close();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  secrets?.remove();
  rmSync(keyDir, { recursive: true, force: true });
});

/** Runs one pre-approved upgrade of `fake` on its own task queue, started through the CLI's client; returns the settled result. */
async function upgrade(fake: Pick<FakeHost, 'activities'>, profile: Profile): Promise<{ status?: WorkflowStatus; error?: unknown }> {
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fake, taskQueue);
  return worker.runUntil(async () => {
    const handle = await cli.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, requestedBy: 'codec test' }] });
    return handle.result().then(
      (status) => ({ status }),
      (error: unknown) => ({ error }),
    );
  });
}

/** The history as stored, fetched without the codec. */
async function stored(profile: Profile) {
  return plain.workflow.getHandle(hostWorkflowId(profile.name)).fetchHistory();
}

const LOCAL_ACTIVITY_MARKER_FIELDS = ['seq', 'attempt', 'activity_id', 'activity_type', 'complete_time', 'backoff', 'original_schedule_time'];
function isSdkBookkeeping(data: string): boolean {
  if (/^(\{"id":"[a-z-]+","deprecated":false\}|\["[a-z-]+"\])$/.test(data)) return true;
  const o = JSON.parse(data) as Record<string, unknown>;
  return o.activity_type === 'checkHostProfile' && Object.keys(o).every((k) => LOCAL_ACTIVITY_MARKER_FIELDS.includes(k));
}

describe('payload codec (AES-256-GCM)', () => {
  test('an upgrade to commit: the stored history holds no plaintext payload and nothing of the profile; it decodes with the key', async () => {
    const marker = `marker-${randomUUID()}`;
    const fake = newFake();
    const profile = fakeProfile({ host: `${marker}.example.org`, carry: { files: [`/etc/${marker}.conf`] } });
    const { status } = await upgrade(fake, profile);
    expect(status?.state).toBe('committed');
    expect(fake.running).toBe('b');

    const history = await stored(profile);
    const raw = storedHistory(history);
    expect(raw.text).not.toContain(marker);
    // Every payload of ours went through the codec. The only JSON in clear is the SDK's own
    // bookkeeping, which the codec never sees: a patch's marker and TemporalChangeVersion search
    // attribute (the patch's name), and a local activity marker's data (its type, attempt and
    // times; its result is encrypted).
    expect(raw.plainJson.length).toBeGreaterThan(0);
    for (const data of raw.plainJson) expect(isSdkBookkeeping(data), data).toBe(true);
    expect(raw.encrypted.length).toBeGreaterThan(20);
    const keyId = readCodecKey(keyFile).id;
    expect(new Set(raw.encrypted.map((p) => Buffer.from(p.metadata!['encryption-key-id']!).toString()))).toEqual(new Set([keyId]));
    // Without the key the result cannot be read at all.
    await expect(plain.workflow.getHandle(hostWorkflowId(profile.name)).result()).rejects.toThrow(/binary\/encrypted/);

    // With it: the CLI reads the profile back from the history and the final status...
    expect(await lastProfile(cli, profile.name)).toEqual(profile);
    expect((await hostStatus(cli, profile.name))?.state).toBe('committed');
    // ...and the SDK replays the encrypted history with the workflow code.
    await Worker.runReplayHistory({ workflowBundle: env.bundle, dataConverter: env.dataConverter }, history, hostWorkflowId(profile.name));
  });

  test("a failed upgrade: the failures' messages are encrypted too, and decode to the original", async () => {
    const marker = `marker-${randomUUID()}`;
    const profile = fakeProfile();
    const script: FakeHostScript = { fail: { installRelease: `No space left on device writing ${marker}` } };
    const { error } = await upgrade(newFake(script), profile);
    const final = finalStatusFrom(error);
    expect(final?.state).toBe('failed');
    expect(final?.reason).toContain(marker);

    const history = await stored(profile);
    expect(storedHistory(history).text).not.toContain(marker);
    const failures = (history.events ?? []).flatMap((e) => [e.activityTaskFailedEventAttributes?.failure, e.workflowExecutionFailedEventAttributes?.failure]).filter((f) => f);
    expect(failures.length).toBeGreaterThanOrEqual(2);
    for (const f of failures) {
      expect(f!.message).toBe('Encoded failure');
      expect(f!.encodedAttributes?.metadata?.encoding && Buffer.from(f!.encodedAttributes.metadata.encoding).toString()).toBe('binary/encrypted');
    }
    expect((await hostStatus(cli, profile.name))?.reason).toContain(marker);
  });

  test('a rollback by Redfish power reset with a key file and a BMC password file: the BMC gets the password, no history or log line does', async () => {
    const resets: { type: unknown; auth: string | undefined }[] = [];
    const bmc: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset') {
          resets.push({ type: (JSON.parse(body) as { ResetType?: unknown }).ResetType, auth: req.headers.authorization });
          res.writeHead(req.headers.authorization === `Basic ${secrets.basicAuth}` ? 204 : 401).end();
        } else res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => bmc.listen(0, '127.0.0.1', r));
    try {
      const fake = newFake({ hangOnBootInto: ['b'] });
      const real = createActivities();
      const fakeActs = fake.activities();
      // The production power activity (it reads the password file and calls the BMC), then the fake host reboots.
      const activities: HostActivities = {
        ...fakeActs,
        powerReset: async (p) => {
          await real.powerReset(p);
          await fakeActs.powerReset(p);
        },
      };
      const profile = fakeProfile({
        auth: { identityFile: secrets.identityFile },
        power: { driver: 'redfish', url: `http://127.0.0.1:${(bmc.address() as AddressInfo).port}`, user: secrets.user, passwordFile: secrets.passwordFile, allowHttp: true },
        timings: { approvalTimeout: '5s', comebackDeadline: '1s', pollInterval: '100ms', healthTimeout: '5s' },
      });
      const { status } = await upgrade({ activities: () => activities }, profile);
      expect(status?.state).toBe('rolled-back');
      expect(fake.running).toBe('a');
      expect(resets).toEqual([{ type: 'ForceRestart', auth: `Basic ${secrets.basicAuth}` }]);
    } finally {
      await new Promise((r) => bmc.close(r));
    }
    // The scan that also runs when this file's environment closes: it decrypted the histories and found nothing.
    const report = await env.scanSecrets();
    expect(report.findings).toEqual([]);
    expect(report.histories).toBeGreaterThanOrEqual(3);
    expect(report.decrypted).toBeGreaterThan(50);
  });
});
