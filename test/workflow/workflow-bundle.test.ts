// A prebuilt workflow bundle (worker/workflow-bundle.ts): a worker runs an upgrade from the
// bundle file, and a bundle that does not match the sources or the worker's codec setting is
// refused with the command that rebuilds it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startOptions } from '../../lib/workflow-api.js';
import { createWorker } from '../../worker/worker.js';
import { buildWorkflowBundle, loadWorkflowBundle, sourcesFingerprint, type WorkflowBundleRecord } from '../../worker/workflow-bundle.js';
import { upgradeHost } from '../../workflows/index.js';
import { fakeProfile, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
let dir: string;
let file: string;
let record: WorkflowBundleRecord;
beforeAll(async () => {
  env = await setupWorkflowEnv();
  dir = mkdtempSync(join(tmpdir(), 'ab-bundle-'));
  file = join(dir, 'workflows.js');
  record = await buildWorkflowBundle(file, { encodedFailures: false });
}, 120_000);
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await env?.close();
});

/** A copy of the bundle whose record is changed by `edit` (or absent when edit returns null). */
function variant(name: string, edit: (r: WorkflowBundleRecord) => unknown): string {
  const copy = join(dir, name);
  writeFileSync(copy, readFileSync(file));
  const r = edit({ ...record });
  if (r !== null) writeFileSync(`${copy}.json`, typeof r === 'string' ? r : JSON.stringify(r));
  return copy;
}

describe('prebuilt workflow bundle', () => {
  test('its record names these sources, and a worker runs an upgrade from the file to committed', async () => {
    expect(record.sources).toBe(sourcesFingerprint());
    expect(record.encodedFailures).toBe(false);
    const bundle = loadWorkflowBundle(file, { encodedFailures: false });
    expect(bundle).toEqual({ codePath: file });

    const fake = newFake();
    const profile = fakeProfile();
    const taskQueue = uniqueName('tq');
    const worker = await createWorker({ connection: env.connection, taskQueue, activities: fake.activities(), workflowBundle: bundle });
    try {
      const result = await worker.runUntil(
        env.client.workflow.execute(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, requestedBy: 'test', autoApprove: true }] }),
      );
      expect(result.state).toBe('committed');
      expect(fake.count('commitSlot')).toBe(1);
    } finally {
      fake.dispose();
    }
  });

  test('a bundle from other sources is refused, naming the command that rebuilds it', () => {
    const stale = variant('stale.js', (r) => ({ ...r, sources: '0'.repeat(64) }));
    expect(() => loadWorkflowBundle(stale, { encodedFailures: false })).toThrow(
      `workflow bundle ${stale} was built (${record.builtAt}) from other workflow sources than this ab-upgrade's; rebuild it with \`ab-upgrade bundle-workflows ${stale}\``,
    );
  });

  test("a bundle built for the other codec setting is refused both ways", () => {
    expect(() => loadWorkflowBundle(file, { encodedFailures: true })).toThrow(
      `workflow bundle ${file} was built without a codec key, but this worker encrypts payloads; rebuild it with \`ab-upgrade --codec-key <files> bundle-workflows ${file}\``,
    );
    const forCodec = variant('codec.js', (r) => ({ ...r, encodedFailures: true }));
    expect(() => loadWorkflowBundle(forCodec, { encodedFailures: false })).toThrow(/was built for a worker with a codec key, and this one has none/);
  });

  test('a bundle without its record, or with a record that is not one, is refused', () => {
    const bare = variant('bare.js', () => null);
    expect(() => loadWorkflowBundle(bare, { encodedFailures: false })).toThrow(`workflow bundle ${bare}: no ${bare}.json beside it`);
    const junk = variant('junk.js', () => '{"sources": "x"}');
    expect(() => loadWorkflowBundle(junk, { encodedFailures: false })).toThrow(`workflow bundle ${junk}: ${junk}.json is not a bundle record`);
    expect(() => loadWorkflowBundle(join(dir, 'missing.js'), { encodedFailures: false })).toThrow(/missing\.js: no .*missing\.js\.json beside it/);
  });
});
