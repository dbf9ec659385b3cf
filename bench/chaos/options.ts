// The chaos benchmark's shared basics: the repository root, the command-line option readers
// (opt, flag) and the results file (--results), and sleep, round and log. Nothing here throws.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function opt(name: string): string | undefined {
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  const i = process.argv.indexOf(`--${name}`);
  const next = i > 0 ? process.argv[i + 1] : undefined;
  return next !== undefined && !next.startsWith('--') ? next : undefined;
}
export const flag = (name: string) => process.argv.includes(`--${name}`);
export const RESULTS = resolve(opt('results') ?? join(ROOT, 'bench', 'results', 'chaos.json'));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (x: number) => Math.round(x * 10) / 10;
const t0 = Date.now();
export const log = (msg: string) => {
  const s = Math.round((Date.now() - t0) / 1000);
  const hms = `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  console.error(`[chaos ${hms}] ${msg}`);
};
