// The same read-only pre-flight over a fleet, ab-upgrade vs Ansible, on real OpenSSH sshd hosts
// on loopback ports (this machine, many times over):
//   (a) ab-upgrade plan --inventory hosts.ini --template template.yaml --parallel P --json
//       (the hosts are not laid out in A/B slots: every plan is a refusal, after its facts);
//   (b) ansible-playbook -f P bench/ansible/preflight.yml: the same facts, the minimal setup
//       subset plus one task per fact, Ansible's defaults otherwise (no pipelining, ControlPersist).
// Both use the same client key and pin every host key. Repetitions alternate (a, b, a, b, ...)
// after an untimed warm-up of (a); medians and every sample go to bench/results/ansible.json
// (rewritten after each repetition, `complete` false until the last).
// Every sshd is stopped at the end, also on failure or Ctrl-C.
//   npm run bench:ansible [-- --hosts 50 --reps 3 --parallel 50]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { loadInventoryProfiles } from '../client/inventory-file.js';
import { LSBLK_COLUMNS } from '../lib/blockdev.js';
import { carryList, LOCAL_UNIT_DIR } from '../lib/carry.js';
import { profileDeviceRefs } from '../lib/layout.js';
import { HEALTH_UNITS, startFleet, type Fleet } from './ansible-fleet.js';
import { ansibleVersion, ensureAnsible } from './ansible-install.js';
import { checkPlanRun, checkPlaybookRun, timedRun, type TimedRun } from './ansible-run.js';

const GOAL_RATIO = 0.5;
const RUN_TIMEOUT_MS = 30 * 60_000;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const playbook = join(root, 'bench', 'ansible', 'preflight.yml');

const argsSchema = z.object({
  hosts: z.coerce.number().int().min(1).max(200).default(50),
  reps: z.coerce.number().int().min(1).max(20).default(3),
  parallel: z.coerce.number().int().min(1).max(200).optional(),
});

function parseArgs(argv: string[]): z.infer<typeof argsSchema> {
  const raw: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const m = /^--(hosts|reps|parallel)$/.exec(argv[i] ?? '');
    if (!m || argv[i + 1] === undefined) throw new Error(`usage: bench/ansible.ts [--hosts N] [--reps N] [--parallel N] (bad argument ${argv[i]})`);
    raw[m[1]!] = argv[i + 1]!;
  }
  const r = argsSchema.safeParse(raw);
  if (!r.success) throw new Error(r.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

const round = (x: number) => Math.round(x * 100) / 100;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Ends the ControlPersist masters Ansible left, so each repetition starts without connections. */
function closeControlMasters(dir: string): void {
  let socks: string[] = [];
  try {
    socks = readdirSync(dir);
  } catch {
    return;
  }
  for (const s of socks) spawnSync('ssh', ['-o', `ControlPath=${join(dir, s)}`, '-O', 'exit', 'ab-bench'], { stdio: 'ignore', timeout: 10_000 });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const parallel = o.parallel ?? o.hosts;
  ensureAnsible();
  const version = ansibleVersion();
  const tasks = (parseYaml(readFileSync(playbook, 'utf8')) as Array<{ tasks: unknown[] }>)[0]!.tasks.length;
  const dir = mkdtempSync(join(tmpdir(), 'ab-bench-ansible-'));
  let fleet: Fleet | undefined;
  const stopAll = async () => {
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`${sig}: stopping every sshd`);
      // Bounded: the sshd helper's own exit hook kills whatever is left.
      void Promise.race([stopAll(), new Promise((r) => setTimeout(r, 15_000))]).finally(() => process.exit(130));
    });
  }
  try {
    const t0 = Date.now();
    fleet = await startFleet(o.hosts, dir);
    console.log(`${o.hosts} sshd on 127.0.0.1 ports ${fleet.hosts.map((h) => h.sshd.port).join(',')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const names = fleet.hosts.map((h) => h.name);
    const profile = (await loadInventoryProfiles({ inventory: fleet.inventory, template: fleet.template }))[0]!;
    const vars = join(dir, 'vars.json');
    writeFileSync(
      vars,
      JSON.stringify({
        device_refs: profileDeviceRefs(profile).filter((r) => r.startsWith('/dev/')),
        carry_paths: carryList(profile),
        health_units: HEALTH_UNITS,
        local_unit_dir: LOCAL_UNIT_DIR,
        lsblk_columns: LSBLK_COLUMNS,
      }),
    );
    const cfg = join(dir, 'ansible.cfg');
    // Defaults otherwise: no pipelining, ssh with ControlMaster/ControlPersist=60s.
    writeFileSync(cfg, '[defaults]\nhost_key_checking = True\ninterpreter_python = auto_silent\nretry_files_enabled = False\n');

    const ab = (): Promise<TimedRun> =>
      timedRun(process.execPath, [join(root, 'bin', 'ab-upgrade.js'), 'plan', '--inventory', fleet!.inventory, '--template', fleet!.template, '--parallel', String(parallel), '--json'], { timeoutMs: RUN_TIMEOUT_MS });
    let rep = 0;
    const ansible = async (): Promise<TimedRun> => {
      const cp = join(dir, `cp${++rep}`);
      mkdirSync(cp);
      const env = { ...process.env, ANSIBLE_CONFIG: cfg, ANSIBLE_SSH_CONTROL_PATH_DIR: cp, ANSIBLE_NOCOLOR: '1' };
      try {
        return await timedRun('ansible-playbook', ['-i', fleet!.inventory, '-f', String(parallel), '--extra-vars', `@${vars}`, playbook], { env, timeoutMs: RUN_TIMEOUT_MS });
      } finally {
        closeControlMasters(cp);
      }
    };

    const load0 = loadavg();
    // Only ab-upgrade gets an untimed warm-up (tsx compiles the CLI on its first run); Debian's
    // ansible package is byte-compiled when installed. Each run's output is checked either way.
    console.log(`warm-up (untimed): ab-upgrade once; load average ${load0.map(round).join(' ')}`);
    const refused = checkPlanRun(await ab(), names).refused;
    console.log(`  ab-upgrade: ${o.hosts} hosts planned, ${refused} refused (not A/B hosts) after reading their facts`);

    const abS: number[] = [];
    const ansS: number[] = [];
    const load1m: number[] = [];
    const out = join(root, 'bench', 'results', 'ansible.json');
    // Written after every repetition, so a run cut short still leaves what it measured.
    const record = (complete: boolean) => {
      const abMedian = round(median(abS));
      const ansMedian = ansS.length ? round(median(ansS)) : null;
      const ratio = ansMedian ? Math.round((abMedian / ansMedian) * 1000) / 1000 : null;
      const result = {
        date: new Date().toISOString(),
        complete,
        hosts: o.hosts,
        parallelism: parallel,
        what: `read-only pre-flight: ab-upgrade plan --inventory --parallel ${parallel} --json vs ansible-playbook -f ${parallel} (setup min + ${tasks - 1} fact tasks), real sshd on loopback, same key, pinned host keys; repetitions alternate`,
        abUpgradeWallS: { median: abMedian, samples: abS },
        ansibleWallS: { median: ansMedian, samples: ansS },
        ratio,
        goal: `ratio <= ${GOAL_RATIO}`,
        met: ratio !== null && ratio <= GOAL_RATIO,
        ansibleSettings: 'Debian package defaults: pipelining off, ssh ControlMaster auto / ControlPersist 60s (a fresh control dir per run, masters closed after it), interpreter auto_silent',
        machine: {
          cores: cpus().length,
          cpu: cpus()[0]?.model ?? '?',
          loadavg: { start: load0.map(round), afterEachRep1m: load1m, end: loadavg().map(round) },
          ansibleVersion: version,
          node: process.version,
        },
      };
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
      return result;
    };
    for (let i = 1; i <= o.reps; i++) {
      const a = await ab();
      checkPlanRun(a, names);
      abS.push(round(a.wallS));
      const b = await ansible();
      checkPlaybookRun(b, names, tasks);
      ansS.push(round(b.wallS));
      load1m.push(round(loadavg()[0]!));
      record(i === o.reps);
      console.log(`  rep ${i}: ab-upgrade ${abS.at(-1)} s, ansible-playbook ${ansS.at(-1)} s (${o.hosts} hosts × ${tasks} tasks ok; load ${loadavg().map(round).join(' ')})`);
    }
    const r = record(true);
    console.log(`\n| run | median s | samples |\n| --- | --- | --- |`);
    console.log(`| ab-upgrade plan, ${o.hosts} hosts, --parallel ${parallel} | ${r.abUpgradeWallS.median} | ${abS.join(' / ')} |`);
    console.log(`| ansible-playbook -f ${parallel} | ${r.ansibleWallS.median} | ${ansS.join(' / ')} |`);
    console.log(`ratio ${r.ratio} (goal ≤ ${GOAL_RATIO}: ${r.met ? 'met' : 'NOT met'}); written to ${out}`);
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench:ansible failed: ${(e as Error).message}`);
    process.exit(1);
  },
);
