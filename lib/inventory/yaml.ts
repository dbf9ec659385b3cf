// The YAML form of an Ansible inventory, already parsed.
import { addHost, emptyInventory, finish, group, GROUP_NAME, InventoryError, link, type Inventory } from './model.js';
import { hostWord } from './host-pattern.js';

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
