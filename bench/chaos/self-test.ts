// --self-test: the harness's worker kill and Temporal server restart, exercised without a VM
// against a port that never speaks SSH (a Temporal dev server is started, no lab image needed).
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHostWorkflow } from '../../client/follow.js';
import { connectClient } from '../../client/temporal.js';
import type { VmHandle } from '../../lab/vm.js';
import { startDevServer } from '../../test/helpers/temporal.js';
import { CaseRun } from './case-run.js';
import { atPhase, type CaseDef } from './cases.js';
import { round } from './options.js';
import { server, setServer } from './processes.js';
import { restartServer, type Session } from './session.js';

/**
 * The harness's machinery without a VM, against a "host" that accepts TCP connections and never
 * speaks SSH: a real worker process is started, SIGKILLed in inspect and replaced, the Temporal
 * server is SIGKILLed and started again on the same database, and the workflow is still driven
 * to its end (failed in inspect once its attempts are used up, about 3 minutes).
 */
export async function selfTest(): Promise<void> {
  const { createServer } = await import('node:net');
  const { parseProfile } = await import('../../lib/profile.js');
  const held: import('node:net').Socket[] = [];
  const mute = createServer((sock) => held.push(sock));
  await new Promise<void>((res) => mute.listen(0, '127.0.0.1', res));
  const mutePort = (mute.address() as import('node:net').AddressInfo).port;
  const workDir = join(tmpdir(), `ab-chaos-self-test-${Date.now().toString(36)}`);
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const dbFile = join(workDir, 'temporal.db');
  setServer(await startDevServer({ dbFile }));
  process.env.TEMPORAL_ADDRESS = server!.address;
  const taskQueue = `chaos-self-test-${Date.now().toString(36)}`;
  process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
  const client = await connectClient();
  const sess = {
    address: server!.address,
    port: Number(server!.address.split(':').at(-1)),
    dbFile,
    client,
    taskQueue,
    workDir,
    caseTimeoutMs: 10 * 60_000,
    manifest: false,
  } as Session; // no image or release: nothing here boots a VM
  const def: CaseDef = { name: 'self-test', fault: 'worker-kill', point: 'inspect', workflow: 'upgradeHost', scenario: 'good', approval: 'manual', at: atPhase('inspect') };
  const r = new CaseRun(def, sess, {} as VmHandle, logDir, Date.now() + sess.caseTimeoutMs);
  const checks: string[] = [];
  try {
    const ready = await r.startWorker();
    checks.push(`worker process ready in ${round(ready)} s`);
    const profile = parseProfile({
      name: `chaos-self-test-${Date.now().toString(36)}`,
      host: '127.0.0.1',
      port: mutePort,
      auth: { identityFile: '/nonexistent/id_ed25519' },
      hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      slots: 'auto',
      data: { device: 'LABEL=ab-data', mountPoint: '/srv/data' },
      release: { source: 'debootstrap', suite: 'trixie' },
      power: { driver: 'none' },
    });
    r.handle = await startHostWorkflow(client, 'upgradeHost', profile, false);
    await def.at(r);
    if (!(await r.inject(r.lastStatus))) throw new Error('the worker kill did not go in');
    checks.push('worker SIGKILLed in inspect, a new one started');
    const took = await restartServer(sess);
    checks.push(`server SIGKILLed and answering again on the same database in ${round(took)} s`);
    const again = await r.status();
    if (!again || again.phase !== 'inspect') throw new Error(`after the restarts the status query says ${JSON.stringify(again?.phase)}`);
    checks.push('the status query answers after both restarts, still in inspect');
    const s = await r.drive();
    if (s?.state !== 'failed' || !/^inspect failed/.test(s.reason ?? '')) throw new Error(`expected failed in inspect, got ${s?.state}: ${s?.reason}`);
    checks.push(`driven to its end: ${s.state} (${s.reason})`);
    if (r.notes.some((n) => /exited by itself/.test(n))) throw new Error(`a worker died on its own: ${r.notes.join('; ')}`);
  } finally {
    await r.worker?.stop();
    await client.connection.close().catch(() => undefined);
    await server!.stop();
    mute.close();
    for (const sock of held) sock.destroy();
  }
  for (const c of checks) console.log(`ok  ${c}`);
  console.log(`self-test passed; logs in ${logDir}`);
}
