// ab-upgrade campaign ...: start, schedule, watch and steer fleet campaigns.
// Exit codes as for hosts: 0 ok (a finished campaign: every host committed), 1 failed, refused,
// halted or cancelled, 2 invalid campaign or host file.
import {
  ScheduleAlreadyRunning,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { Command } from 'commander';
import type { CampaignSpec } from '../lib/campaign.js';
import {
  CAMPAIGN_WORKFLOW_TYPE,
  approveWaveUpdate,
  campaignStartOptions,
  campaignStatusQuery,
  campaignWorkflowId,
  pauseSignal,
  resumeSignal,
  retryFailedUpdate,
  type CampaignInput,
  type CampaignState,
  type CampaignStatus,
} from '../lib/campaign-api.js';
import { formatCampaignCounts, formatCampaignStatus } from '../lib/format-campaign.js';
import { loadCampaign, type InventoryOptions } from './campaign-file.js';
import { AlreadyRunningError, me, taskQueue } from './follow.js';
import { withInventoryOptions } from './inventory-file.js';
import { connectClient } from './temporal.js';

type CampaignHandle = WorkflowHandle<(input: CampaignInput) => Promise<CampaignStatus>>;

const ENDED: CampaignState[] = ['done', 'halted', 'cancelled'];

export async function startCampaign(client: Client, spec: CampaignSpec, requestedBy = me()): Promise<CampaignHandle> {
  try {
    return await client.workflow.start(CAMPAIGN_WORKFLOW_TYPE, { ...campaignStartOptions(spec.name, taskQueue()), args: [{ ...spec, requestedBy }] });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError)
      throw new AlreadyRunningError(`campaign ${spec.name} is already running (workflow ${campaignWorkflowId(spec.name)}); see: ab-upgrade campaign status ${spec.name}`);
    throw e;
  }
}

/**
 * A Temporal Schedule that starts the campaign on `cron` (skipped while the previous run is
 * still open). The profiles are read now and travel in the schedule: re-create it after editing them.
 */
export async function scheduleCampaign(client: Client, spec: CampaignSpec, o: { cron: string; timezone?: string }, requestedBy = me()) {
  try {
    return await client.schedule.create({
      scheduleId: campaignWorkflowId(spec.name),
      spec: { cronExpressions: [o.cron], ...(o.timezone ? { timezone: o.timezone } : {}) },
      action: {
        type: 'startWorkflow',
        workflowType: CAMPAIGN_WORKFLOW_TYPE,
        workflowId: campaignWorkflowId(spec.name),
        taskQueue: taskQueue(),
        args: [{ ...spec, requestedBy: `schedule (created by ${requestedBy})` } satisfies CampaignInput],
      },
      policies: { overlap: 'SKIP' },
    });
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) throw new AlreadyRunningError(`campaign ${spec.name} is already scheduled; remove it first: ab-upgrade campaign unschedule ${spec.name}`);
    throw e;
  }
}

/**
 * The campaign's latest run: started by hand (ab-upgrade-campaign/<name>) or by its schedule
 * (the same id plus the schedule's timestamp).
 */
export async function findCampaign(client: Client, name: string): Promise<CampaignHandle> {
  const id = campaignWorkflowId(name);
  const candidates: { workflowId: string; start: number }[] = [];
  try {
    const d = await client.workflow.getHandle(id).describe();
    candidates.push({ workflowId: id, start: d.startTime.getTime() });
  } catch (e) {
    if (!(e instanceof WorkflowNotFoundError)) throw e;
  }
  const scheduled = new RegExp(`^${id.replace(/[.]/g, '\\.')}-\\d{4}-\\d\\d-\\d\\dT`);
  for await (const w of client.workflow.list({ query: `WorkflowId STARTS_WITH '${id}-'` })) {
    if (scheduled.test(w.workflowId)) candidates.push({ workflowId: w.workflowId, start: w.startTime.getTime() });
  }
  const latest = candidates.sort((a, b) => b.start - a.start)[0];
  if (!latest) throw new Error(`no campaign named ${name} has run`);
  return client.workflow.getHandle(latest.workflowId);
}

/** The live status while it runs; after it ended, the result (or, cancelled, the last query answer). */
export async function campaignStatus(handle: CampaignHandle): Promise<CampaignStatus> {
  if ((await handle.describe()).status.name === 'RUNNING') return handle.query(campaignStatusQuery);
  return handle.result().catch(() => handle.query(campaignStatusQuery));
}

const exitFor = (s: CampaignStatus): number => (s.state === 'done' && s.failures.count === 0 ? 0 : 1);

/** Prints state, wave and host changes until the campaign ends or waits for a human. */
async function followCampaign(get: () => Promise<CampaignStatus>, print: (line: string) => void): Promise<CampaignStatus> {
  const seen = new Map<string, string>();
  for (;;) {
    const s = await get();
    const facts: [string, string][] = [
      ['state', `campaign ${s.state}${s.currentWave ? `, wave ${s.currentWave} of ${s.waves.length}` : ''}${s.waitingFor ? ` — ${s.waitingFor}` : ''}`],
      ['counts', formatCampaignCounts(s)],
      ...s.hosts.map((h): [string, string] => [`host ${h.name}`, `  ${h.name}: ${h.state}${h.reason ? ` (${h.reason})` : ''}`]),
    ];
    for (const [key, text] of facts) if (seen.get(key) !== text) print(text), seen.set(key, text);
    if (ENDED.includes(s.state) || s.state === 'awaiting-approval') return s;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function campaignCommand(): Command {
  const campaign = new Command('campaign').description('upgrade many hosts in waves: failure budget, maintenance window, approvals, pause/resume, retry');

  withInventoryOptions(campaign
    .command('start <file>')
    .description('start the campaign in <file> (its first wave starts at once, inside the window)')
    .option('--follow', 'show progress until it ends or waits for an approval')
    .option('--json', 'print the final status as JSON (with --follow)'), "whose hosts join the campaign file's (in place of its inventory, template and limit)")
    .action(async (file: string, o: { follow?: boolean; json?: boolean } & InventoryOptions) => {
      const spec = await loadCampaign(file, o);
      const handle = await startCampaign(await connectClient(), spec);
      console.log(`started ${handle.workflowId}: ${spec.profiles.length} hosts${spec.skipped ? `, ${spec.skipped.length} skipped (${spec.skipped.join(', ')})` : ''}`);
      if (!o.follow) return;
      const s = await followCampaign(() => handle.query(campaignStatusQuery), console.log);
      console.log(o.json ? JSON.stringify(s, null, 2) : formatCampaignStatus(s));
      if (ENDED.includes(s.state)) process.exitCode = exitFor(s);
    });

  withInventoryOptions(campaign
    .command('schedule <file>')
    .description('start the campaign in <file> on a cron schedule (a Temporal Schedule)')
    .requiredOption('--cron <expr>', 'when, e.g. "0 22 * * sat"')
    .option('--timezone <tz>', 'IANA time zone of the cron expression (default UTC)'), "whose hosts join the campaign file's (in place of its inventory, template and limit)")
    .action(async (file: string, o: { cron: string; timezone?: string } & InventoryOptions) => {
      const spec = await loadCampaign(file, o);
      const schedule = await scheduleCampaign(await connectClient(), spec, o);
      console.log(`scheduled ${schedule.scheduleId}: "${o.cron}"${o.timezone ? ` (${o.timezone})` : ' (UTC)'}, ${spec.profiles.length} hosts`);
    });

  campaign
    .command('unschedule <name>')
    .description('delete the schedule of campaign <name> (a run in progress goes on)')
    .action(async (name: string) => {
      await (await connectClient()).schedule.getHandle(campaignWorkflowId(name)).delete();
      console.log(`deleted the schedule of campaign ${name}`);
    });

  campaign
    .command('status <name>')
    .description('waves, per-host state, failures against the budget, the maintenance window')
    .option('--json', 'machine-readable output')
    .option('--follow', 'keep printing until it ends or waits for an approval')
    .action(async (name: string, o: { json?: boolean; follow?: boolean }) => {
      const handle = await findCampaign(await connectClient(), name);
      const s = o.follow ? await followCampaign(() => campaignStatus(handle), console.log) : await campaignStatus(handle);
      console.log(o.json ? JSON.stringify(s, null, 2) : formatCampaignStatus(s));
      if (ENDED.includes(s.state)) process.exitCode = exitFor(s);
    });

  for (const [verb, signal, what] of [
    ['pause', pauseSignal, 'let the running wave finish, start no new one'],
    ['resume', resumeSignal, 'start waves again after a pause'],
  ] as const) {
    campaign
      .command(`${verb} <name>`)
      .description(what)
      .option('--by <who>', 'who', me())
      .option('--reason <text>', 'why')
      .action(async (name: string, o: { by: string; reason?: string }) => {
        const handle = await findCampaign(await connectClient(), name);
        await handle.signal(signal, { by: o.by, ...(o.reason ? { reason: o.reason } : {}) });
        console.log(`asked campaign ${name} to ${verb} (see: ab-upgrade campaign status ${name})`);
      });
  }

  campaign
    .command('approve <name>')
    .description('let the wave awaiting approval start (approveEachWave)')
    .option('--wave <n>', 'refuse unless this is the wave awaiting approval')
    .option('--by <who>', 'who approves', me())
    .option('--reason <text>', 'why')
    .action(async (name: string, o: { wave?: string; by: string; reason?: string }) => {
      const handle = await findCampaign(await connectClient(), name);
      const ack = await handle
        .executeUpdate(approveWaveUpdate, { args: [{ by: o.by, ...(o.wave ? { wave: Number(o.wave) } : {}), ...(o.reason ? { reason: o.reason } : {}) }] })
        .catch((e: Error) => {
          throw new Error(`could not approve a wave of ${name}: ${(e.cause as Error | undefined)?.message ?? e.message}`);
        });
      console.log(`approved wave ${ack.wave} of ${name}: ${ack.hosts.join(', ')}`);
    });

  campaign
    .command('retry-failed <name>')
    .description('once done or halted: run the failed hosts again (in waves), then the waves not yet run')
    .option('--by <who>', 'who asks', me())
    .action(async (name: string, o: { by: string }) => {
      const handle = await findCampaign(await connectClient(), name);
      const ack = await handle.executeUpdate(retryFailedUpdate, { args: [{ by: o.by }] }).catch((e: Error) => {
        throw new Error(`could not retry the failed hosts of ${name}: ${(e.cause as Error | undefined)?.message ?? e.message}`);
      });
      console.log(`retrying ${ack.hosts.length} host(s) of ${name}: ${ack.hosts.join(', ')}`);
    });

  campaign
    .command('cancel <name>')
    .description('cancel the campaign: running host upgrades are cancelled and roll back')
    .action(async (name: string) => {
      const handle = await findCampaign(await connectClient(), name);
      await handle.cancel();
      console.log(`cancel requested for ${handle.workflowId}; running hosts roll back (see: ab-upgrade campaign status ${name})`);
    });

  return campaign;
}
