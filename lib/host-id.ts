// A host's workflow id, in a module of its own: workflows and the client both need it, and a
// workflow must not load the profile's schemas (zod) to get it.

/** Workflow id shared by upgrades and rollbacks: at most one of either runs per host. */
export function hostWorkflowId(name: string): string {
  return `ab-upgrade/${name}`;
}
