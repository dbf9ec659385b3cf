// Fault injection on the lab VM. Each case runs one upgradeHost (or rollbackHost) on a fresh
// BIOS lab VM (a new qcow2 overlay over the cached image, or over a cached image of a host
// already committed on slot B for the rollbackHost cases), injects ONE fault at one point, lets
// the system recover, waits for the workflow to end and then checks ON THE HOST, over the
// OpenSSH client with the pinned host key, that it is in one of the two allowed end states:
//
//   new-slot  committed on the new slot: the running root is the new slot, os-release is the
//             new release's, grubenv's saved_entry names the new slot's entry and no one-time
//             entry is pending; a plain reboot comes back on the new slot.
//   old-slot  back on the old slot with GRUB exactly restored: os-release as before the
//             workflow started, and grub.cfg, custom.cfg (or its absence) and /etc/default/grub
//             byte for byte (sha256) what they were before it started. grubenv byte for byte
//             too, with one tolerance: an empty `next_entry=` line, which GRUB's own boot script
//             writes when it consumes a one-time entry (it selects nothing; rollbackHost has no
//             GRUB compensation, so a rollback it abandons leaves that line); every other byte,
//             saved_entry included, must be the same, and the file keeps its size. A plain
//             reboot comes back on the old slot.
//
// Anything else (another slot, another release, a changed GRUB file, a host that no longer
// answers with its pinned key) is a third state, and the workflow's own final state must agree
// with the host's (committed ↔ new-slot; rolled-back, rejected, failed or cancelled ↔ old-slot).
//
// Faults: the worker process SIGKILLed (a new worker process is started at once); the Temporal
// dev server SIGKILLed and started again on the same SQLite database; the SSH sessions of the
// worker cut on the host (their sshd session processes killed from another SSH session, never
// the listener); the new slot's SSH host key changed (it must never be trusted silently).
// Points are detected from the workflow's status query (its phase) or from markers on the host
// (a bounded wait loop run on the host), never by a sleep alone.
//
// Every wait is bounded in time and count; Ctrl-C (or SIGTERM) stops the VM, the worker and the
// Temporal server this run started. Results are merged per case into bench/results/chaos.json,
// so a long matrix can be run in parts.
//   npm run chaos -- --list
//   npm run chaos -- --cases=kill-install-mid,server-approval
//   npm run chaos                     every case not yet in chaos.json (--redo: all of them)
//   options: --case-timeout-min=75 (per case), --manifest (also compare the old slot's files),
//            --results=<file> (instead of bench/results/chaos.json)
//   npm run chaos -- --self-test      the harness without a VM (see selfTest)
//   npm run chaos -- --table          chaos.json as the README's markdown table
//
// The harness itself is in bench/chaos/, one concern per module; this file is the entry point.
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectClient } from '../client/temporal.js';
import { ensureImage, ensureRelease } from '../lab/session.js';
import { startDevServer } from '../test/helpers/temporal.js';
import type { CaseResult } from './chaos/case-run.js';
import { CASES } from './chaos/cases.js';
import { flag, log, opt, RESULTS } from './chaos/options.js';
import { aborting, installStopHandlers, server, setServer, stopEverything } from './chaos/processes.js';
import { readResults, recordResult } from './chaos/results.js';
import { committedBase, runCase } from './chaos/run-case.js';
import { selfTest } from './chaos/self-test.js';
import type { Session } from './chaos/session.js';
import { formatMarkdown, formatTable } from './chaos/table.js';

async function main(): Promise<void> {
  installStopHandlers();
  if (flag('self-test')) return selfTest();
  if (flag('table')) {
    const recorded = readResults();
    if (!recorded) throw new Error(`no results in ${RESULTS}`);
    console.log(formatMarkdown(recorded.cases));
    return;
  }
  if (flag('list')) {
    const w = Math.max(...CASES.map((c) => c.name.length));
    for (const c of CASES) console.log(`${c.name.padEnd(w)}  ${c.fault.padEnd(14)} ${c.workflow.padEnd(12)} ${c.scenario.padEnd(11)} ${c.point}`);
    console.log(`${CASES.length} cases`);
    return;
  }
  const named = (opt('cases') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = named.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length) throw new Error(`unknown case(s): ${unknown.join(', ')} (see --list)`);
  const done = new Set((readResults()?.cases ?? []).map((c) => c.name));
  const selected = named.length ? CASES.filter((c) => named.includes(c.name)) : CASES.filter((c) => flag('redo') || !done.has(c.name));
  if (!selected.length) {
    console.log(`every case is in ${RESULTS} already (--redo runs them again)`);
    return;
  }
  const caseTimeoutMin = Number(opt('case-timeout-min') ?? '75');
  if (!(caseTimeoutMin > 0)) throw new Error('--case-timeout-min must be a positive number');

  const workDir = join(tmpdir(), `ab-chaos-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`);
  mkdirSync(workDir, { recursive: true });
  log(`${selected.length} case(s): ${selected.map((c) => c.name).join(', ')}; logs in ${workDir}/logs`);
  const [image, release] = await Promise.all([ensureImage('bios'), ensureRelease()]);
  const releaseVersion = String((JSON.parse(readFileSync(join(release.dir, 'release.json'), 'utf8')) as { os: { versionId: string } }).os.versionId);
  const dbFile = join(workDir, 'temporal.db');
  setServer(await startDevServer({ dbFile }));
  const port = Number(server!.address.split(':').at(-1));
  process.env.TEMPORAL_ADDRESS = server!.address;
  // startHostWorkflow reads the task queue from the same variable as the worker.
  const taskQueue = `chaos-${Date.now().toString(36)}`;
  process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
  const client = await connectClient();
  const sess: Session = {
    address: server!.address,
    port,
    dbFile,
    client,
    taskQueue,
    workDir,
    image,
    release,
    releaseVersion,
    caseTimeoutMs: caseTimeoutMin * 60_000,
    manifest: flag('manifest'),
  };
  const ran: CaseResult[] = [];
  try {
    let base: string | null = null;
    for (const c of selected) {
      if (aborting) break;
      if (c.workflow === 'rollbackHost') base ??= await committedBase(sess);
      const r = await runCase(sess, c, c.workflow === 'rollbackHost' ? base : null);
      if (aborting) break;
      ran.push(r);
      recordResult(r);
    }
  } finally {
    await client.connection.close().catch(() => undefined);
    await server!.stop();
  }
  console.log(formatTable(ran));
  const all = readResults();
  if (all) console.log(`chaos.json: ${all.verified} of ${all.total} cases verified, ${all.notInjected} not injected; consistent: ${all.consistent}`);
  console.log(`wrote ${RESULTS}; logs in ${workDir}/logs`);
  if (ran.some((r) => !r.verified)) process.exitCode = 1;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main().catch(async (e) => {
    console.error(`chaos: ${(e as Error).stack ?? e}`);
    await stopEverything();
    process.exit(1);
  });
}
