// Debian's `ansible` package for the benchmark: installed with apt-get when ansible-playbook is
// missing (saying what it runs), and the versions to record.
import { spawnSync } from 'node:child_process';

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// Another apt run (the setup script) may hold the lock for a while.
const APT_OPTS = ['-o', 'DPkg::Lock::Timeout=600', '-y', '-q'];

function run(cmd: string, args: string[]): number {
  console.log(`+ DEBIAN_FRONTEND=noninteractive ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: APT_ENV, timeout: 15 * 60_000 });
  return r.status ?? 1;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

export function ensureAnsible(): void {
  if (has('ansible-playbook')) return;
  console.log('ansible-playbook is missing: installing Debian\'s ansible package');
  const install = () => run('apt-get', ['install', ...APT_OPTS, '--no-install-recommends', 'ansible']);
  // A stale package list is the usual reason the first attempt fails.
  if (install() !== 0 && (run('apt-get', ['update', ...APT_OPTS]) !== 0 || install() !== 0)) {
    throw new Error('could not install ansible with apt-get (see its output above)');
  }
  if (!has('ansible-playbook')) throw new Error('apt-get installed ansible but ansible-playbook is not on PATH');
}

/** "ansible-playbook [core 2.14.18]; Debian package ansible 7.7.0+dfsg-3+deb12u1". */
export function ansibleVersion(): string {
  const core = spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? '?';
  const pkg = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'ansible'], { encoding: 'utf8' }).stdout.trim();
  return `${core}; Debian package ansible ${pkg || '?'}`;
}
