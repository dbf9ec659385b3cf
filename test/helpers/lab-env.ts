// End-to-end harness: a real lab VM (QEMU), the run's Temporal dev server, and an in-process
// worker running the real SSH activities (lab/session.ts, shared with `ab-upgrade lab` and the
// benchmark). Assertions go to the host through the OpenSSH client (vm.ssh), independent of our
// own SSH layer.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalStatusFrom, startOptions, statusQuery, WorkflowTypes, type RollbackInput, type UpgradeInput, type WorkflowStatus } from '../../lib/workflow-api.js';
import { startLab, type Lab } from '../../lab/session.js';
import type { Layout, VmHandle } from '../../lab/vm.js';
import { eventually, setupWorkflowEnv, uniqueName, type WorkflowEnv } from './workflow-env.js';
import { shQuote } from '../../lib/quote.js';

export interface LabEnv extends Lab {
  env: WorkflowEnv;
  taskQueue: string;
  close(): Promise<void>;
}

export async function setupLab(layout: Layout, name = uniqueName(`e2e-${layout}`)): Promise<LabEnv> {
  const env = await setupWorkflowEnv();
  const taskQueue = `e2e-${name}`;
  const lab = await startLab({
    layout,
    name,
    workDir: mkdtempSync(join(tmpdir(), 'ab-e2e-')),
    address: env.address,
    taskQueue,
    workflowBundle: env.bundle,
    workerOptions: { maxHeartbeatThrottleInterval: '2s', defaultHeartbeatThrottleInterval: '2s' },
  });
  return {
    ...lab,
    env,
    taskQueue,
    async close() {
      await lab.down();
      await env.close();
    },
  };
}

/** Starts a workflow for the lab host; returns its handle. */
export async function start(lab: LabEnv, type: keyof typeof WorkflowTypes, input: UpgradeInput | RollbackInput) {
  return lab.env.client.workflow.start(WorkflowTypes[type], { ...startOptions(input.profile, lab.taskQueue), args: [input] });
}

/** The final status, whether the execution completed or failed with UpgradeFailed. */
export async function finalStatus(handle: { result(): Promise<unknown> }): Promise<WorkflowStatus> {
  try {
    return (await handle.result()) as WorkflowStatus;
  } catch (e) {
    const s = finalStatusFrom(e);
    if (s) return s;
    throw e;
  }
}

export async function waitForState(handle: { query: (q: typeof statusQuery) => Promise<WorkflowStatus> }, pred: (s: WorkflowStatus) => boolean, timeoutMs: number) {
  return eventually(async () => {
    const s = await handle.query(statusQuery);
    return pred(s) ? s : undefined;
  }, timeoutMs, 1000);
}

/** Runs a command on the lab host with the OpenSSH client; throws on non-zero exit. */
export async function onVm(vm: VmHandle, command: string, timeoutMs = 60_000): Promise<string> {
  const r = await vm.ssh(command, { timeoutMs });
  if (r.code !== 0) throw new Error(`on the lab host: ${command}\nexit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Slot letter the host runs: every lab layout has slot A on vda1 and slot B on vda2. */
export async function hostSlot(vm: VmHandle): Promise<string> {
  const root = (await onVm(vm, 'findmnt -n -o SOURCE /')).trim();
  const slot = { '/dev/vda1': 'a', '/dev/vda2': 'b' }[root];
  if (!slot) throw new Error(`the root is on ${root}, neither lab slot`);
  return slot;
}

/** Reboots the host the plain way (nothing of ours involved) and returns the slot it comes back on. */
export async function plainReboot(vm: VmHandle): Promise<string> {
  const before = (await onVm(vm, 'cat /proc/sys/kernel/random/boot_id')).trim();
  await vm.ssh('systemd-run --on-active=1 systemctl reboot', { timeoutMs: 15_000 });
  await vm.waitForSsh(300_000, { notBootId: before });
  return hostSlot(vm);
}

/**
 * What must never reach a workflow history from the lab host: each SSH private host key and the
 * controller's private key (a line of each, and each file's sha256, which a plain digest of a
 * carried file would give away), and any PEM or OpenSSH private key header.
 */
export async function labSecrets(lab: LabEnv): Promise<string[]> {
  const files = (await onVm(lab.vm, 'for f in /etc/ssh/ssh_host_*_key; do printf "%s\\n" "$f"; done')).trim().split('\n');
  const contents = [...(await Promise.all(files.map((f) => onVm(lab.vm, `cat ${f}`)))), readFileSync(lab.image.identityFile, 'utf8')];
  return [
    'PRIVATE KEY-----',
    ...contents.flatMap((c) => {
      const body = c.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l));
      return [body[Math.floor(body.length / 2)]!, createHash('sha256').update(c).digest('hex')];
    }),
  ];
}

/** Every payload of the workflow's history, decoded as text (payloads are stored as bytes). */
export async function historyText(handle: { fetchHistory(): Promise<unknown> }): Promise<string> {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) out.push(Buffer.from(v).toString('utf8'));
    else if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(await handle.fetchHistory());
  return out.join('\n');
}

/**
 * sha256 of every file the runbook manages in GRUB's configuration under `root` ('' = the
 * running slot): each compensation must leave them byte-for-byte as they were.
 */
export async function grubFiles(vm: VmHandle, root = ''): Promise<Record<string, string>> {
  const files = ['/boot/grub/grub.cfg', '/boot/grub/grubenv', '/boot/grub/custom.cfg', '/etc/default/grub'];
  const out = await onVm(vm, `for f in ${files.map((f) => `${root}${f}`).join(' ')}; do if [ -e "$f" ]; then sha256sum "$f"; else echo "absent $f"; fi; done`);
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(/\s+/)).map(([sum, f]) => [f!.slice(root.length), sum!]));
}

/**
 * sha256 of each file of a slot's system (etc, binaries, systemd, boot, root, home, dpkg state),
 * sorted, for the slot whose root is at `root`; paths (relative, e.g. `boot/grub/grubenv`)
 * matching `exclude` are left out.
 */
export async function slotManifest(vm: VmHandle, root: string, exclude?: RegExp): Promise<string> {
  const script = `cd "$1" && find etc usr/bin usr/sbin usr/lib/systemd boot root home var/lib/dpkg -xdev -type f 2>/dev/null | LC_ALL=C sort | xargs -d '\\n' sha256sum`;
  const lines = (await onVm(vm, `sh -c ${shQuote(script)} sh ${shQuote(root)}`, 300_000)).trim().split('\n');
  const kept = lines.filter((l) => !exclude?.test(l.replace(/^[0-9a-f]{64} {2}/, '')));
  if (kept.length < 1000) throw new Error(`slot manifest of ${root}: only ${kept.length} files`);
  return kept.join('\n');
}
