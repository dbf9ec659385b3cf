// One lab session: the built images, a booted VM, the host profile that points the runbook at
// it, and an in-process worker with the real SSH activities. Used by `ab-upgrade lab`, the
// end-to-end tests and the downtime benchmark, so all three exercise the same path.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import { parseProfile, type Profile, type ProfileInput } from '../lib/profile.js';
import { startVm, type Layout, type VmHandle } from './vm.js';

const LAB_DIR = dirname(fileURLToPath(import.meta.url));

/** Runs a lab build script (bounded), streaming its log to stderr; returns its output dir. */
async function runBuilder(script: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(LAB_DIR, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const dir = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && dir) resolve(dir);
      else reject(new Error(`lab/${script} ${args.join(' ')} failed (exit ${code})`));
    });
  });
}

export interface LabImage {
  dir: string;
  layout: Layout;
  disk: string;
  identityFile: string;
  hostKeyFingerprint: string;
  /** Filesystem labels of the slots and the data partition, as the image builder wrote them. */
  labels: { a: string; b: string; data: string };
  /** The operator's own systemd units on slot A (no package owns them). */
  localUnits: string[];
}

export async function ensureImage(layout: Layout): Promise<LabImage> {
  const dir = await runBuilder('build-image.sh', [layout], 40 * 60_000);
  const built = JSON.parse(await readFile(join(dir, 'layout.json'), 'utf8'));
  return {
    dir,
    layout,
    disk: join(dir, 'disk.raw'),
    identityFile: join(dir, 'id_ed25519'),
    hostKeyFingerprint: (await readFile(join(dir, 'host_key.fingerprint'), 'utf8')).trim(),
    labels: { a: built.slots.a.label, b: built.slots.b.label, data: built.data.label },
    localUnits: built.localUnits ?? [],
  };
}

/** A lab release tarball, its sha256, its minisign signature and the lab key that made it. */
export interface LabArtifact {
  path: string;
  sha256: string;
  signature: string;
  publicKey: string;
}

export interface LabRelease {
  dir: string;
  good: LabArtifact;
  broken: LabArtifact;
}

export async function ensureRelease(): Promise<LabRelease> {
  const dir = await runBuilder('build-release.sh', [], 40 * 60_000);
  const art = async (name: string): Promise<LabArtifact> => ({
    path: join(dir, name),
    sha256: (await readFile(join(dir, `${name}.sha256`), 'utf8')).trim().split(/\s+/)[0]!,
    signature: join(dir, `${name}.minisig`),
    publicKey: join(dir, 'lab-release.pub'),
  });
  return { dir, good: await art('trixie.tar.zst'), broken: await art('trixie-broken.tar.zst') };
}

/** The good release in the ext4-image format (lab/build-release-image.sh: the same rootfs, the same key). */
export async function ensureReleaseImage(): Promise<LabArtifact & { manifest: string }> {
  const dir = await runBuilder('build-release-image.sh', [], 60 * 60_000);
  const path = join(dir, 'trixie.ext4.zst');
  return {
    path,
    sha256: (await readFile(`${path}.sha256`, 'utf8')).trim().split(/\s+/)[0]!,
    signature: `${path}.minisig`,
    publicKey: join(dir, 'lab-release.pub'),
    manifest: `${path}.manifest.json`,
  };
}

export async function bootLab(image: LabImage, name: string, workDir: string): Promise<VmHandle> {
  const vm = await startVm({ disk: image.disk, layout: image.layout, name, workDir });
  try {
    // A cold boot takes 25–80 s under TCG on an idle machine, and over 4 minutes on a loaded one.
    await vm.waitForSsh(480_000);
  } catch (e) {
    await vm.stop();
    throw e;
  }
  return vm;
}

/** This machine as a lab VM reaches it: QEMU user networking's gateway, which forwards to its loopback. */
export const LAB_CONTROLLER_ADDRESS = '10.0.2.2';

/** release.pull for a lab VM: the controller listens on loopback, the VM connects to its gateway. */
export const LAB_PULL = { listenAddress: '127.0.0.1', listenPort: 0, connectAddress: LAB_CONTROLLER_ADDRESS } as const;

/** `p` with its image release pulled by the lab VM (release.pull) instead of streamed over SSH. */
export function pulledByLabVm(p: Profile): Profile {
  const r = p.release;
  if (r.source !== 'image') throw new Error('pulledByLabVm: only an image release is pulled');
  return { ...p, release: { ...r, pull: { ...LAB_PULL } } };
}

/**
 * The profile of a lab VM: everything the runbook needs, no secrets (a key path). Slots with
 * the conventional labels are found by `auto`; the operator-labelled layout names its labels,
 * and its own units are health-checked.
 */
export function labProfile(image: LabImage, vm: VmHandle, release: LabArtifact, overrides: Partial<ProfileInput> = {}): Profile {
  return parseProfile({
    name: vm.name,
    host: '127.0.0.1',
    port: vm.sshPort,
    user: 'root',
    auth: { identityFile: image.identityFile },
    hostKey: image.hostKeyFingerprint,
    slots: image.labels.a === 'ab-slot-a' ? 'auto' : { a: `LABEL=${image.labels.a}`, b: `LABEL=${image.labels.b}` },
    data: { device: `LABEL=${image.labels.data}`, mountPoint: '/srv/data' },
    // Signed: every lab install verifies the signature on the controller and the digest on the host.
    release: {
      source: 'image', url: release.path, sha256: release.sha256, signature: release.signature, publicKey: release.publicKey,
      ...(release.path.endsWith('.ext4.zst') ? { format: 'ext4-image' as const } : {}),
    },
    health: { units: ['ssh.service', ...image.localUnits], tcpPorts: [22] },
    // An emulated guest boots in 25–110 s depending on the machine and its load; the deadline
    // leaves room for the slowest seen, three times over.
    timings: { approvalTimeout: '30m', comebackDeadline: '10m', pollInterval: '2s', healthTimeout: '2m' },
    reboot: 'firmware',
    power: { driver: 'qmp', socket: vm.qmpSocket },
    kernelArgs: 'console=ttyS0,115200 net.ifnames=0',
    ...overrides,
  });
}

export interface LabOptions {
  layout: Layout;
  /** VM name (also the profile's host name). */
  name: string;
  /** Where the VM's overlay, sockets and serial log go. */
  workDir: string;
  /** Temporal frontend address and the task queue the in-process worker polls. */
  address: string;
  taskQueue: string;
  /** A prebuilt workflow bundle (tests bundle once per file); else the worker bundles. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  workerOptions?: Partial<WorkerOptions>;
}

export interface Lab {
  image: LabImage;
  release: LabRelease;
  vm: VmHandle;
  worker: Worker;
  /** The lab host's profile with the good release, plus overrides. */
  profile(overrides?: Partial<ProfileInput>, release?: LabArtifact): Profile;
  down(): Promise<void>;
}

/** Images (built or reused), a booted VM and an in-process worker with the real SSH activities. */
export async function startLab(o: LabOptions): Promise<Lab> {
  const image = await ensureImage(o.layout);
  const release = await ensureRelease();
  // Loaded here so plain CLI commands do not pay for the worker's native runtime.
  const [{ NativeConnection, Runtime, DefaultLogger }, { createActivities }, { createWorker }, { closeAllHosts }] = await Promise.all([
    import('@temporalio/worker'),
    import('../activities/index.js'),
    import('../worker/worker.js'),
    import('../activities/ssh.js'),
  ]);
  try {
    // The lab prints phases itself; the SDK's bundler chatter at INFO would drown them.
    Runtime.install({ logger: new DefaultLogger((process.env.AB_UPGRADE_LOG_LEVEL as 'INFO' | undefined) ?? 'WARN') });
  } catch {
    // A runtime was installed already (tests install their own).
  }
  const connection = await NativeConnection.connect({ address: o.address });
  const worker = await createWorker({
    connection,
    taskQueue: o.taskQueue,
    activities: createActivities(),
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : {}),
    options: { shutdownGraceTime: '5s', ...o.workerOptions },
  });
  const workerRun = worker.run();
  // The SDK's own SIGINT/SIGTERM handler may have started the drain already (then shutdown()
  // throws "Not running"): that must not keep us from stopping the VM.
  const stopWorker = async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun.catch(() => undefined);
  };
  let vm: VmHandle;
  try {
    vm = await bootLab(image, o.name, o.workDir);
  } catch (e) {
    await stopWorker();
    await connection.close();
    throw e;
  }
  return {
    image,
    release,
    vm,
    worker,
    profile: (overrides = {}, rel = release.good) => labProfile(image, vm, rel, { name: o.name, ...overrides }),
    async down() {
      try {
        await stopWorker();
      } finally {
        closeAllHosts();
        await vm.stop();
        await connection.close();
      }
    },
  };
}
