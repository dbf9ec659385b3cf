// Ansible inventories (INI or YAML form): groups, child groups, group and host variables, and
// the variables each host ends up with under Ansible's precedence (all < parent group < child
// group < host). Pure: the client reads the file; lib/inventory-profile.ts turns a host's
// variables into a profile.
//
// INI syntax understood: `[group]` sections of host lines (`name [key=value ...]`, `name:port`,
// ranges such as `web[01:03]` or `db-[a:c]`, with an optional stride `[1:9:2]`), `[group:vars]`
// sections of `key=value` lines, `[group:children]` sections of group names; hosts before any
// section are ungrouped; `#` and `;` start comment lines, and ` #` a comment after a host line.
// Values are strings (quotes removed), except `ab_upgrade_*` values, which are read as YAML
// (so a number, a boolean, or a JSON/YAML flow value such as `{"a": "LABEL=x", "b": "LABEL=y"}`).
import { parse as parseYamlText } from 'yaml';
import { ProfileError } from './profile.js';

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

const GROUP_NAME = /^[A-Za-z0-9_-]+$/;
/** The variable prefix whose values set profile fields (lib/inventory-profile.ts). */
export const PROFILE_VAR_PREFIX = 'ab_upgrade_';

function emptyInventory(): Inventory {
  const inv: Inventory = { groups: new Map(), hostVars: new Map() };
  group(inv, 'all');
  group(inv, 'ungrouped');
  return inv;
}

function group(inv: Inventory, name: string): InventoryGroup {
  let g = inv.groups.get(name);
  if (!g) inv.groups.set(name, (g = { name, vars: {}, hosts: new Set(), children: new Set() }));
  return g;
}

function addHost(inv: Inventory, groupName: string, host: string, vars: Vars): void {
  group(inv, groupName).hosts.add(host);
  inv.hostVars.set(host, { ...inv.hostVars.get(host), ...vars });
}

// ---------------------------------------------------------------------------------------------
// INI

/** Splits a line into words the way Ansible does (shell-like quotes; ` #` starts a comment). */
function words(line: string): string[] | string {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"' || c === "'") {
      const close = line.indexOf(c, i + 1);
      if (close < 0) return `unterminated ${c} quote`;
      cur += line.slice(i + 1, close);
      inWord = true;
      i = close;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      break;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** A `key=value` word's value: a string, or (ab_upgrade_*) the YAML value it holds. */
function iniValue(key: string, raw: string): unknown {
  if (!key.startsWith(PROFILE_VAR_PREFIX)) return raw;
  try {
    return parseYamlText(raw, { logLevel: 'error' });
  } catch {
    throw new Error(`${key}: not a YAML or JSON value`);
  }
}

function keyValue(word: string): [string, unknown] {
  const eq = word.indexOf('=');
  if (eq <= 0) throw new Error(`expected key=value, not a bare word`);
  const key = word.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`"${key}" is not a variable name`);
  return [key, iniValue(key, word.slice(eq + 1))];
}

/** web[01:03] → web01, web02, web03; db-[a:c] → db-a, db-b, db-c; [1:9:2] steps by 2. */
export function expandHostPattern(pattern: string): string[] {
  const m = /^(.*?)\[([^\]]*)\](.*)$/.exec(pattern);
  if (!m) {
    if (/[[\]]/.test(pattern)) throw new Error(`"${pattern}": unbalanced [ ] in a host name`);
    return [pattern];
  }
  const [, head, range, tail] = m as unknown as [string, string, string, string];
  const r = /^(?:(\d+):(\d+)|([a-z]):([a-z]))(?::(\d+))?$/.exec(range);
  if (!r) throw new Error(`"${pattern}": unsupported host range [${range}] (use [01:10], [a:f] or [1:9:2], or list the hosts one per line)`);
  const stride = r[5] === undefined ? 1 : Number(r[5]);
  if (stride < 1) throw new Error(`"${pattern}": the stride of a host range must be at least 1`);
  const items: string[] = [];
  if (r[1] !== undefined) {
    const [from, to] = [Number(r[1]), Number(r[2])];
    if (from > to) throw new Error(`"${pattern}": the range [${range}] ends before it starts`);
    const width = r[1].length > 1 && r[1].startsWith('0') ? r[1].length : 0;
    for (let n = from; n <= to; n += stride) items.push(String(n).padStart(width, '0'));
  } else {
    const [from, to] = [r[3]!.charCodeAt(0), r[4]!.charCodeAt(0)];
    if (from > to) throw new Error(`"${pattern}": the range [${range}] ends before it starts`);
    for (let c = from; c <= to; c += stride) items.push(String.fromCharCode(c));
  }
  return items.flatMap((item) => expandHostPattern(`${head}${item}${tail}`));
}

/** A host word: its names (ranges expanded) and a port given as `name:port`. */
function hostWord(word: string): { names: string[]; port?: string } {
  // name:port, but not an IPv6 address (more than one ":") nor a range ("[1:3]").
  const m = /^([^:[\]]+(?:\[[^\]]*\][^:[\]]*)*):(\d+)$/.exec(word);
  const names = expandHostPattern(m ? m[1]! : word);
  for (const n of names) if (!/^[A-Za-z0-9._:-]+$/.test(n)) throw new Error(`"${n}" is not a host name`);
  return m ? { names, port: m[2]! } : { names };
}

export function parseIniInventory(text: string, source = 'inventory'): Inventory {
  const inv = emptyInventory();
  const problems: string[] = [];
  let section: { group: string; kind: 'hosts' | 'vars' | 'children' } = { group: 'ungrouped', kind: 'hosts' };
  const childLines: { parent: string; child: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    try {
      if (line.startsWith('[')) {
        const m = /^\[([^\]:]+)(?::([^\]]+))?\]\s*(?:[#;].*)?$/.exec(line);
        if (!m) throw new Error('a section header must be [group], [group:vars] or [group:children]');
        const [, name, kind] = m as unknown as [string, string, string | undefined];
        if (!GROUP_NAME.test(name)) throw new Error(`"${name}" is not a group name (letters, digits, "_" and "-")`);
        if (kind !== undefined && kind !== 'vars' && kind !== 'children') throw new Error(`unknown section kind ":${kind}" (use :vars or :children)`);
        section = { group: name, kind: kind ?? 'hosts' };
        group(inv, name);
        return;
      }
      if (section.kind === 'vars') {
        // The rest of the line after "=" is the value (Ansible also accepts "key = value").
        const m = /^([^\s=]+)\s*=\s*(.*)$/.exec(line);
        if (!m) throw new Error('expected key=value in a :vars section');
        const value = /^(["']).*\1$/.test(m[2]!) ? m[2]!.slice(1, -1) : m[2]!.replace(/\s+#.*$/, '');
        const [k, v] = keyValue(`${m[1]}=${value}`);
        group(inv, section.group).vars[k] = v;
      } else {
        const ws = words(line);
        if (typeof ws === 'string') throw new Error(ws);
        if (section.kind === 'children') {
          if (ws.length !== 1 || !GROUP_NAME.test(ws[0]!)) throw new Error('expected one group name per line in a :children section');
          childLines.push({ parent: section.group, child: ws[0]!, line: lineNo });
          return;
        }
        const [first, ...rest] = ws as [string, ...string[]];
        const { names, port } = hostWord(first);
        const vars: Vars = Object.fromEntries(rest.map(keyValue));
        if (port !== undefined && vars.ansible_port === undefined) vars.ansible_port = port;
        for (const n of names) addHost(inv, section.group, n, vars);
      }
    } catch (e) {
      problems.push(`line ${lineNo}: ${(e as Error).message}`);
    }
  });
  for (const c of childLines) {
    if (c.child === 'all') problems.push(`line ${c.line}: "all" cannot be a child group`);
    else link(inv, c.parent, c.child);
  }
  finish(inv, problems);
  if (problems.length) throw new InventoryError(source, problems);
  return inv;
}

function link(inv: Inventory, parent: string, child: string): void {
  group(inv, parent).children.add(child);
  group(inv, child);
}

/** Groups with no parent are children of all; every host in no group but all is ungrouped; no cycles. */
function finish(inv: Inventory, problems: string[]): void {
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

// ---------------------------------------------------------------------------------------------
// YAML

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The YAML form, already parsed: top-level keys are groups, each with hosts, vars and children. */
export function parseYamlInventory(data: unknown, source = 'inventory'): Inventory {
  const inv = emptyInventory();
  const problems: string[] = [];
  if (!isRecord(data)) throw new InventoryError(source, ['(inventory): must be a mapping of groups (all: {hosts: ..., vars: ..., children: ...})']);
  const readGroup = (name: string, def: unknown, path: string, parent?: string) => {
    if (!GROUP_NAME.test(name)) return void problems.push(`${path}: "${name}" is not a group name (letters, digits, "_" and "-")`);
    const g = group(inv, name);
    if (parent) link(inv, parent, name);
    if (def === null || def === undefined) return;
    if (!isRecord(def)) return void problems.push(`${path}: must be a mapping with hosts, vars or children`);
    for (const key of Object.keys(def)) if (!['hosts', 'vars', 'children'].includes(key)) problems.push(`${path}: unknown key "${key}" (a group has hosts, vars and children)`);
    const { hosts, vars, children } = def;
    if (vars !== undefined && vars !== null) {
      if (!isRecord(vars)) problems.push(`${path}.vars: must be a mapping of variables`);
      else Object.assign(g.vars, vars);
    }
    if (hosts !== undefined && hosts !== null) {
      if (!isRecord(hosts)) problems.push(`${path}.hosts: must be a mapping of host names (to their variables or nothing)`);
      else
        for (const [pattern, hv] of Object.entries(hosts)) {
          if (hv !== null && !isRecord(hv)) {
            problems.push(`${path}.hosts.${pattern}: must be a mapping of variables, or empty`);
            continue;
          }
          try {
            for (const n of hostWord(pattern).names) addHost(inv, name, n, { ...hv });
          } catch (e) {
            problems.push(`${path}.hosts.${pattern}: ${(e as Error).message}`);
          }
        }
    }
    if (children !== undefined && children !== null) {
      if (!isRecord(children)) problems.push(`${path}.children: must be a mapping of groups`);
      else for (const [c, cdef] of Object.entries(children)) readGroup(c, cdef, `${path}.children.${c}`, name);
    }
  };
  for (const [name, def] of Object.entries(data)) readGroup(name, def, name);
  finish(inv, problems);
  if (problems.length) throw new InventoryError(source, problems);
  return inv;
}

// ---------------------------------------------------------------------------------------------
// Queries

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
