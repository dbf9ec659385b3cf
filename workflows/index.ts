// The workflow bundle's entry point: every export here is a workflow type the worker registers.
// Export workflow functions only (the modules they are built from are not re-exported).
export { upgradeHost } from './upgrade-host.js';
export { rollbackHost } from './rollback-host.js';
export { fleetCampaign } from './campaign.js';
