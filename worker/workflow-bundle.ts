// A prebuilt workflow bundle: `ab-upgrade bundle-workflows FILE` once per release of ab-upgrade,
// then `ab-upgrade worker --workflow-bundle FILE` (or AB_UPGRADE_WORKFLOW_BUNDLE). Without one
// the worker runs webpack over workflows/ at every start: about 3.5 s and ~150 MB of resident
// memory (bench/results/campaign-tuning.json: 229 vs 387 MB before a campaign, though the peak
// differs by only 8 MB once V8 reuses it), paid again by every worker restarted after a crash.
//
// A bundle holds the workflow code the worker replays histories with, so a stale one is
// dangerous: next to FILE, FILE.json records a fingerprint of the sources it was built from and
// whether it carries the encoded failure converter (needed exactly when payloads are encrypted,
// lib/codec.ts). The worker refuses a bundle whose record does not match what it runs with.
import { createHash } from 'node:crypto';
import { accessSync, constants, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { z } from 'zod';
import { encodedFailureConverterPath } from '../lib/codec.js';
import { workflowsPath } from './worker.js';

export const WORKFLOW_BUNDLE_ENV = 'AB_UPGRADE_WORKFLOW_BUNDLE';

const BundleRecord = z.strictObject({
  /** sha256 over workflows/ and lib/ (the only sources workflows import) and the SDK version. */
  sources: z.string().regex(/^[0-9a-f]{64}$/),
  /** Built with lib/codec.ts's encoded failure converter (for a worker with a codec key). */
  encodedFailures: z.boolean(),
  builtAt: z.string(),
});
export type WorkflowBundleRecord = z.infer<typeof BundleRecord>;

const recordPath = (file: string) => `${file}.json`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? filesUnder(path) : e.isFile() ? [path] : [];
  });
}

/** What a bundle is built from: every file under workflows/ and lib/, and @temporalio/workflow's version. */
export function sourcesFingerprint(): string {
  const root = dirname(dirname(workflowsPath));
  const h = createHash('sha256');
  const sdk = createRequire(import.meta.url)('@temporalio/workflow/package.json') as { version: string };
  h.update(`@temporalio/workflow ${sdk.version}\0`);
  const files = [join(root, 'workflows'), join(root, 'lib')].flatMap(filesUnder).map((f) => relative(root, f)).sort();
  for (const f of files) h.update(`${f}\0`).update(readFileSync(join(root, f))).update('\0');
  return h.digest('hex');
}

/** Bundles the workflows into `file` (and its record into `file`.json); both replaced atomically. */
export async function buildWorkflowBundle(file: string, o: { encodedFailures: boolean }): Promise<WorkflowBundleRecord> {
  const sources = sourcesFingerprint();
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: new DefaultLogger('WARN'),
    ...(o.encodedFailures ? { failureConverterPath: encodedFailureConverterPath } : {}),
  });
  const record: WorkflowBundleRecord = { sources, encodedFailures: o.encodedFailures, builtAt: new Date().toISOString() };
  writeFileSync(`${file}.tmp`, code);
  writeFileSync(`${recordPath(file)}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  renameSync(`${recordPath(file)}.tmp`, recordPath(file));
  return record;
}

/**
 * The bundle at `file` for Worker.create, after checking its record against these sources and
 * the worker's codec setting; throws an error that says how to rebuild it.
 */
export function loadWorkflowBundle(file: string, o: { encodedFailures: boolean }): { codePath: string } {
  const rebuild = `rebuild it with \`ab-upgrade${o.encodedFailures ? ' --codec-key <files>' : ''} bundle-workflows ${file}\``;
  let raw: string;
  try {
    raw = readFileSync(recordPath(file), 'utf8');
  } catch {
    throw new Error(`workflow bundle ${file}: no ${recordPath(file)} beside it (what it was built from); ${rebuild}`);
  }
  let record: WorkflowBundleRecord;
  try {
    record = BundleRecord.parse(JSON.parse(raw));
  } catch {
    throw new Error(`workflow bundle ${file}: ${recordPath(file)} is not a bundle record; ${rebuild}`);
  }
  if (record.sources !== sourcesFingerprint()) {
    throw new Error(`workflow bundle ${file} was built (${record.builtAt}) from other workflow sources than this ab-upgrade's; ${rebuild}`);
  }
  if (record.encodedFailures !== o.encodedFailures) {
    throw new Error(
      o.encodedFailures
        ? `workflow bundle ${file} was built without a codec key, but this worker encrypts payloads; ${rebuild}`
        : `workflow bundle ${file} was built for a worker with a codec key, and this one has none; ${rebuild}`,
    );
  }
  try {
    accessSync(file, constants.R_OK);
  } catch {
    throw new Error(`workflow bundle ${file}: cannot be read; ${rebuild}`);
  }
  return { codePath: file };
}
