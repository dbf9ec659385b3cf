// The arithmetic of a campaign's waves and failure budget. The campaign workflow runs it, so it
// imports nothing: every module a workflow loads is evaluated again for each workflow instance.

/** A number of hosts, or a percentage of all the campaign's hosts ("20%"). */
export type HostCount = number | `${number}%`;

function ofTotal(n: HostCount, total: number, round: (x: number) => number): number {
  if (typeof n === 'number') return n;
  // The epsilon keeps 33.3% of 3 hosts from rounding on float noise.
  return round((parseFloat(n) * total) / 100);
}

/**
 * Sizes of the waves that run `count` hosts: entries in order, the last one repeating;
 * percentages are of `total` (all the campaign's hosts), rounded up, at least 1.
 */
export function waveSizes(count: number, waves: HostCount[], total = count): number[] {
  const sizes: number[] = [];
  for (let left = count, i = 0; left > 0; i++) {
    const spec = waves[Math.min(i, waves.length - 1)]!;
    const n = Math.min(left, Math.max(1, ofTotal(spec, total, (x) => Math.ceil(x - 1e-9))));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/** The hosts cut into waves (order kept). */
export function planWaves<T>(hosts: T[], waves: HostCount[], total = hosts.length): T[][] {
  let at = 0;
  return waveSizes(hosts.length, waves, total).map((n) => hosts.slice(at, (at += n)));
}

/** How many failed hosts the campaign tolerates; a percentage of `total` rounds down. */
export function failureBudget(budget: HostCount, total: number): number {
  return ofTotal(budget, total, (x) => Math.floor(x + 1e-9));
}

export const budgetExceeded = (failed: number, budget: number): boolean => failed > budget;
