// chaos.json (or --results): reading it, and merging one case's result into it atomically, so a
// long matrix can be run in parts.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname } from 'node:path';
import type { CaseResult } from './case-run.js';
import { CASES } from './cases.js';
import { RESULTS } from './options.js';

export interface ResultsFile {
  cases: CaseResult[];
  consistent: boolean;
  total: number;
  verified: number;
  notInjected: number;
  machine: string;
  date: string;
}

export function readResults(): ResultsFile | null {
  try {
    return JSON.parse(readFileSync(RESULTS, 'utf8')) as ResultsFile;
  } catch {
    return null;
  }
}

/** Merges one case into chaos.json (replacing an earlier run of the same case), atomically. */
export function recordResult(r: CaseResult): ResultsFile {
  const prev = readResults()?.cases ?? [];
  const order = new Map(CASES.map((c, i) => [c.name, i]));
  const cases = [...prev.filter((c) => c.name !== r.name), r].sort((a, b) => (order.get(a.name) ?? 999) - (order.get(b.name) ?? 999));
  const file: ResultsFile = {
    cases,
    consistent: cases.every((c) => c.verified),
    total: cases.length,
    verified: cases.filter((c) => c.verified).length,
    notInjected: cases.filter((c) => !c.injected && c.fault !== 'none').length,
    machine: `${hostname()}: ${cpus().length}x ${cpus()[0]?.model ?? '?'}`,
    date: new Date().toISOString(),
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(`${RESULTS}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${RESULTS}.tmp`, RESULTS);
  return file;
}
