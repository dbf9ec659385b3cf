// One timed run of a command line (its whole process group killed when over its bound), and the
// checks that each tool's run gathered every host's facts: a run with a host that errored does
// not count.
import { spawn } from 'node:child_process';

export interface TimedRun {
  wallS: number;
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function timedRun(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // Its own process group, so a timeout ends Ansible's forks and ssh processes with it.
    const child = spawn(cmd, args, { env: o.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, o.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve({ wallS, code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut });
    });
  });
}

const tail = (s: string) => s.trimEnd().split('\n').slice(-20).join('\n');

interface PlanEntry {
  host: string;
  ok: boolean;
  plan: { error?: string; ok?: boolean; refusals?: string[]; preflight?: { inhibitors: number } };
}

/**
 * `plan --inventory --json`: one entry per host in inventory order, none with a connection error,
 * each with its layout verdict and pre-flight report (so both gathers ran). Returns how many were
 * refused. Exit 1 is plan's answer to a refusal; anything else is a failed run.
 */
export function checkPlanRun(r: TimedRun, names: string[]): { refused: number } {
  const fail = (why: string) => new Error(`ab-upgrade plan run: ${why}\n${tail(r.stderr)}`);
  if (r.timedOut) throw fail('timed out');
  if (r.code !== 0 && r.code !== 1) throw fail(`exit code ${r.code}`);
  let all: PlanEntry[];
  try {
    all = JSON.parse(r.stdout) as PlanEntry[];
  } catch {
    throw fail(`output is not JSON: ${tail(r.stdout)}`);
  }
  if (JSON.stringify(all.map((e) => e.host)) !== JSON.stringify(names)) throw fail(`hosts ${all.map((e) => e.host).join(',')} are not the inventory's, in order`);
  const errored = all.filter((e) => e.plan.error !== undefined);
  if (errored.length) throw fail(`hosts errored: ${errored.map((e) => `${e.host}: ${e.plan.error}`).join('; ')}`);
  const incomplete = all.filter((e) => e.plan.preflight === undefined || (e.plan.ok !== true && !e.plan.refusals?.length));
  if (incomplete.length) throw fail(`no verdict or pre-flight report for ${incomplete.map((e) => e.host).join(', ')}`);
  return { refused: all.filter((e) => e.plan.ok !== true).length };
}

/** ansible-playbook: exit 0, and every host in PLAY RECAP with `tasks` ok and none failed or unreachable. */
export function checkPlaybookRun(r: TimedRun, names: string[], tasks: number): void {
  const fail = (why: string) => new Error(`ansible-playbook run: ${why}\n${tail(r.stdout)}\n${tail(r.stderr)}`);
  if (r.timedOut) throw fail('timed out');
  if (r.code !== 0) throw fail(`exit code ${r.code}`);
  const recap = new Map<string, { ok: number; unreachable: number; failed: number }>();
  for (const m of r.stdout.matchAll(/^(\S+)\s+:\s+ok=(\d+)\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    recap.set(m[1]!, { ok: Number(m[2]), unreachable: Number(m[3]), failed: Number(m[4]) });
  }
  const bad = names.filter((n) => {
    const h = recap.get(n);
    return !h || h.ok !== tasks || h.unreachable !== 0 || h.failed !== 0;
  });
  if (bad.length) throw fail(`hosts without ${tasks} ok tasks: ${bad.map((n) => `${n} ${JSON.stringify(recap.get(n) ?? 'missing')}`).join('; ')}`);
}
