// The inventory's model: groups, their variables, hosts and child groups, and the rules both
// forms (./ini.ts, ./yaml.ts) finish with (groups without a parent under all, ungrouped hosts,
// no cycles).
import { ProfileError } from '../profile.js';

export type Vars = Record<string, unknown>;

export interface InventoryGroup {
  name: string;
  vars: Vars;
  hosts: Set<string>;
  children: Set<string>;
}

export interface Inventory {
  groups: Map<string, InventoryGroup>;
  /** Host variables as written on the host's own lines/entries (later definitions win). */
  hostVars: Map<string, Vars>;
}

/** An inventory that cannot be read: one line per problem, each naming where (line or path). */
export class InventoryError extends ProfileError {
  constructor(
    readonly source: string,
    problems: string[],
  ) {
    super(problems);
    this.message = `invalid inventory ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
    this.name = 'InventoryError';
  }
}

export const GROUP_NAME = /^[A-Za-z0-9_-]+$/;
/** The variable prefix whose values set profile fields (lib/inventory-profile.ts). */
export const PROFILE_VAR_PREFIX = 'ab_upgrade_';

export function emptyInventory(): Inventory {
  const inv: Inventory = { groups: new Map(), hostVars: new Map() };
  group(inv, 'all');
  group(inv, 'ungrouped');
  return inv;
}

export function group(inv: Inventory, name: string): InventoryGroup {
  let g = inv.groups.get(name);
  if (!g) inv.groups.set(name, (g = { name, vars: {}, hosts: new Set(), children: new Set() }));
  return g;
}

export function addHost(inv: Inventory, groupName: string, host: string, vars: Vars): void {
  group(inv, groupName).hosts.add(host);
  inv.hostVars.set(host, { ...inv.hostVars.get(host), ...vars });
}

export function link(inv: Inventory, parent: string, child: string): void {
  group(inv, parent).children.add(child);
  group(inv, child);
}

/** Groups with no parent are children of all; every host in no group but all is ungrouped; no cycles. */
export function finish(inv: Inventory, problems: string[]): void {
  const all = group(inv, 'all');
  const hasParent = new Set([...inv.groups.values()].flatMap((g) => [...g.children]));
  for (const g of inv.groups.values()) if (g.name !== 'all' && !hasParent.has(g.name)) all.children.add(g.name);
  const ungrouped = group(inv, 'ungrouped');
  for (const h of all.hosts) ungrouped.hosts.add(h);
  all.hosts.clear();
  const grouped = new Set([...inv.groups.values()].filter((g) => g.name !== 'ungrouped').flatMap((g) => [...g.hosts]));
  for (const h of ungrouped.hosts) if (grouped.has(h)) ungrouped.hosts.delete(h);
  const cycle = findCycle(inv);
  if (cycle) problems.push(`group cycle: ${cycle.join(' → ')} (a group cannot contain itself)`);
}

function findCycle(inv: Inventory): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'open') return [...path.slice(path.indexOf(name)), name];
    if (state.get(name) === 'done') return undefined;
    state.set(name, 'open');
    for (const c of inv.groups.get(name)?.children ?? []) {
      const found = visit(c, [...path, name]);
      if (found) return found;
    }
    state.set(name, 'done');
    return undefined;
  };
  for (const g of inv.groups.keys()) {
    const found = visit(g, []);
    if (found) return found;
  }
  return undefined;
}
