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
//
// One concern per file in ./inventory/: the model and its rules, host words, each form, queries.
export { InventoryError, PROFILE_VAR_PREFIX, type Inventory, type InventoryGroup, type Vars } from './inventory/model.js';
export { expandHostPattern } from './inventory/host-pattern.js';
export { parseIniInventory } from './inventory/ini.js';
export { parseYamlInventory } from './inventory/yaml.js';
export { groupsOf, hostVariables, inventoryHosts, selectHosts } from './inventory/queries.js';
