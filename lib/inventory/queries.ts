// What a parsed inventory answers: its hosts, a host's groups and variables, a --limit.
import type { Inventory, Vars } from './model.js';

export const inventoryHosts = (inv: Inventory): string[] => [...inv.hostVars.keys()];

/** Group name → its depth below all (the longest path from all), as Ansible orders group vars. */
function depths(inv: Inventory): Map<string, number> {
  const d = new Map<string, number>();
  const walk = (name: string, depth: number) => {
    if ((d.get(name) ?? -1) >= depth) return;
    d.set(name, depth);
    for (const c of inv.groups.get(name)?.children ?? []) walk(c, depth + 1);
  };
  walk('all', 0);
  return d;
}

/** Every group `host` belongs to, directly or through child groups (all included). */
export function groupsOf(inv: Inventory, host: string): string[] {
  return [...inv.groups.values()].filter((g) => hostsOfGroup(inv, g.name).includes(host)).map((g) => g.name);
}

/** The hosts of a group and of all its descendants, in inventory order. */
function hostsOfGroup(inv: Inventory, name: string): string[] {
  const found = new Set<string>();
  const seen = new Set<string>();
  const walk = (g: string) => {
    if (seen.has(g)) return;
    seen.add(g);
    const grp = inv.groups.get(g);
    if (!grp) return;
    for (const h of grp.hosts) found.add(h);
    for (const c of grp.children) walk(c);
  };
  if (name === 'all') return inventoryHosts(inv);
  walk(name);
  return inventoryHosts(inv).filter((h) => found.has(h));
}

/**
 * The variables of `host`: the vars of its groups from the shallowest (all) to the deepest
 * (groups of equal depth by name, the later winning), then its own.
 */
export function hostVariables(inv: Inventory, host: string): Vars {
  const own = inv.hostVars.get(host);
  if (!own) throw new Error(`${host} is not a host of the inventory`);
  const d = depths(inv);
  const ordered = groupsOf(inv, host).sort((a, b) => (d.get(a) ?? 0) - (d.get(b) ?? 0) || a.localeCompare(b));
  return Object.assign({}, ...ordered.map((g) => inv.groups.get(g)!.vars), own) as Vars;
}

/**
 * The hosts `limit` selects: comma-separated group or host names (all hosts without a limit),
 * in inventory order. A name that is neither is an error, so a typo never selects nothing.
 */
export function selectHosts(inv: Inventory, limit?: string): string[] {
  if (limit === undefined || limit.trim() === '') return inventoryHosts(inv);
  const picked = new Set<string>();
  for (const name of limit.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (inv.groups.has(name)) hostsOfGroup(inv, name).forEach((h) => picked.add(h));
    else if (inv.hostVars.has(name)) picked.add(name);
    else throw new Error(`--limit ${name}: no such group or host in the inventory`);
  }
  return inventoryHosts(inv).filter((h) => picked.has(h));
}
