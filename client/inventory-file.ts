// Reading an Ansible inventory file (INI or YAML form) and a profile template, and resolving
// the selected inventory hosts into validated profiles.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { extname } from 'node:path';
import { inventoryProfiles } from '../lib/inventory-profile.js';
import { InventoryError, parseIniInventory, parseYamlInventory, type Inventory } from '../lib/inventory.js';
import { ProfileError, type Profile } from '../lib/profile.js';
import { parseYaml, readYamlFile } from './profile-file.js';

/**
 * The inventory in `path`: .yml/.yaml/.json files are YAML; .ini files and files with a
 * `[section]` line are INI; anything else is YAML if it reads as a mapping, else INI (a plain
 * list of hosts).
 */
export async function loadInventory(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new InventoryError(path, [`cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  const ext = extname(path).toLowerCase();
  if (['.yml', '.yaml', '.json'].includes(ext)) return parseYamlInventory(parseYaml(text, path), path);
  if (ext === '.ini' || /^\s*\[/m.test(text)) return parseIniInventory(text, path);
  let data: unknown;
  try {
    data = parseYaml(text, path);
  } catch (e) {
    if (e instanceof ProfileError) return parseIniInventory(text, path);
    throw e;
  }
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? parseYamlInventory(data, path) : parseIniInventory(text, path);
}

/** A profile template: a YAML mapping of profile fields (without the host's own, which the inventory gives). */
export async function loadTemplate(path: string): Promise<Record<string, unknown>> {
  const data = await readYamlFile(path);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ProfileError([`${path}: a template must be a mapping of profile fields`]);
  return data as Record<string, unknown>;
}

export interface InventorySelection {
  inventory: string;
  template?: string;
  limit?: string;
  overrides?: Record<string, Record<string, unknown>>;
}

/** The validated profiles of the selected hosts of an inventory laid onto a template. */
export async function loadInventoryProfiles(o: InventorySelection): Promise<Profile[]> {
  if (!o.template) throw new ProfileError(['--template: required with --inventory (the profile file the inventory hosts share)']);
  const [inv, template] = await Promise.all([loadInventory(o.inventory), loadTemplate(o.template)]);
  try {
    return inventoryProfiles(inv, { template, limit: o.limit, overrides: o.overrides, home: homedir() });
  } catch (e) {
    // An unknown --limit name is the operator's input error, like a bad profile.
    if (e instanceof ProfileError) throw e;
    throw new ProfileError([(e as Error).message]);
  }
}

/** Adds --inventory, --template and --limit to a command; `use` says what the inventory is for. */
export function withInventoryOptions(cmd: Command, use: string): Command {
  return cmd
    .option('--inventory <file>', `an Ansible inventory (INI or YAML), ${use}`)
    .option('--template <file>', 'with --inventory: the profile fields its hosts share (a profile file without host, hostKey, ...)')
    .option('--limit <names>', 'with --inventory: only these groups or hosts (comma-separated)');
}
