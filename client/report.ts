// ab-upgrade report <host> and ab-upgrade campaign report <name>: read the runs' histories and
// statuses from Temporal, build the report (lib/report-model.ts) and write it as one HTML page
// (lib/report-html.ts) or print it as JSON.
import { writeFile } from 'node:fs/promises';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { Command } from 'commander';
import { z } from 'zod';
import { campaignWorkflowId } from '../lib/campaign-api.js';
import { hostWorkflowId } from '../lib/profile.js';
import { formatZodIssues } from '../lib/profile.js';
import { readHistory, type HistoryFacts } from '../lib/report-history.js';
import { renderReportHtml } from '../lib/report-html.js';
import { campaignReport, hostReport, waitedForOperator, type ReportModel } from '../lib/report-model.js';
import { statusQuery } from '../lib/workflow-api.js';
import { campaignStatus, findCampaign } from './campaign.js';
import { connectClient } from './temporal.js';

/** The events the report reads; only their payloads are decoded. */
const READ = [
  'workflowExecutionUpdateAcceptedEventAttributes',
  'workflowExecutionSignaledEventAttributes',
  'childWorkflowExecutionCompletedEventAttributes',
  'childWorkflowExecutionFailedEventAttributes',
  'workflowExecutionCompletedEventAttributes',
  'workflowExecutionFailedEventAttributes',
] as const;

/** Every `payloads` list under `node`, run through the client's codecs (an encrypted history decrypts here). */
async function decodePayloads(node: unknown, decode: (p: Payload[]) => Promise<Payload[]>, depth = 0): Promise<void> {
  if (!node || typeof node !== 'object' || node instanceof Uint8Array || depth > 32) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'payloads' && Array.isArray(value)) (node as Record<string, unknown>)[key] = await decode(value as Payload[]).catch(() => value);
    else await decodePayloads(value, decode, depth + 1);
  }
}

/** One run's history (the latest run without `runId`), decoded with the client's data converter. */
export async function historyFacts(client: Client, workflowId: string, runId?: string): Promise<HistoryFacts> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
  // Codecs decode in the reverse of their encoding order.
  const decode = async (ps: Payload[]) => {
    for (const codec of [...payloadCodecs].reverse()) ps = await codec.decode(ps);
    return ps;
  };
  for (const e of history.events ?? []) for (const k of READ) await decodePayloads((e as Record<string, unknown>)[k], decode);
  return readHistory(history, (p) => payloadConverter.fromPayload(p));
}

/**
 * A run's status: the result its history holds, else the answer of its status query (a running
 * or cancelled run; that needs a worker); undefined when neither is to be had.
 */
async function runStatus(client: Client, workflowId: string, runId: string, facts?: HistoryFacts): Promise<unknown> {
  const f = facts ?? (await historyFacts(client, workflowId, runId).catch(() => undefined));
  if (f?.result !== undefined) return f.result;
  return client.workflow.getHandle(workflowId, runId).query(statusQuery).catch(() => undefined);
}

/** The report of a host's latest upgrade or rollback. */
export async function hostReportFrom(client: Client, host: string, now = Date.now()): Promise<ReportModel> {
  const workflowId = hostWorkflowId(host);
  let runId: string;
  try {
    runId = (await client.workflow.getHandle(workflowId).describe()).runId;
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new Error(`no upgrade or rollback has run for ${host}`);
    throw e;
  }
  const history = await historyFacts(client, workflowId, runId);
  return hostReport({ status: await runStatus(client, workflowId, runId, history), workflowId, runId, history, now });
}

/** At most this many runs of one campaign are read back through continue-as-new. */
const MAX_RUNS = 100;

/** The report of a campaign's latest run (by name, or by its workflow id), with every run it continued from. */
export async function campaignReportFrom(client: Client, nameOrId: string, now = Date.now()): Promise<ReportModel> {
  const handle = nameOrId.startsWith(campaignWorkflowId('')) ? client.workflow.getHandle(nameOrId) : await findCampaign(client, nameOrId);
  const status = await campaignStatus(handle);
  const histories: HistoryFacts[] = [];
  for (let runId: string | undefined, i = 0; i < MAX_RUNS; i++) {
    const f = await historyFacts(client, handle.workflowId, runId);
    histories.unshift(f);
    if (!f.continuedFromRunId) break;
    runId = f.continuedFromRunId;
  }
  // Runs without a result in these histories: still running, cancelled, or started by a run not read.
  const wanted = new Map<string, string>();
  for (const c of histories.flatMap((h) => h.children)) if (c.result === undefined) wanted.set(c.runId, c.workflowId);
  const known = new Set(histories.flatMap((h) => h.children.map((c) => c.runId)));
  for (const h of status.hosts) if (h.runId && !known.has(h.runId)) wanted.set(h.runId, h.workflowId);
  const live = new Map<string, unknown>();
  await Promise.all(
    [...wanted].map(async ([runId, workflowId]) => {
      const s = await runStatus(client, workflowId, runId);
      if (s !== undefined) live.set(runId, s);
    }),
  );
  // Who reset a host by hand is only in that host run's own history.
  const runMessages = new Map<string, HistoryFacts['messages']>();
  const waited = histories
    .flatMap((h) => h.children)
    .filter((c) => waitedForOperator(live.get(c.runId) ?? c.result));
  await Promise.all(
    waited.map(async (c) => {
      const f = await historyFacts(client, c.workflowId, c.runId).catch(() => undefined);
      if (f) runMessages.set(c.runId, f.messages);
    }),
  );
  return campaignReport({ status, histories, live, runMessages, now });
}

const outputOptions = z
  .object({ html: z.string().min(1, 'must name the file to write').optional(), json: z.boolean().optional() })
  .refine((o) => o.html !== undefined || o.json, { message: 'give --html FILE (the page) or --json (the report model)', path: ['html'] });

type Outputs = z.output<typeof outputOptions>;

/** The output options, checked before anything connects. */
function outputs(raw: unknown): Outputs {
  const r = outputOptions.safeParse(raw);
  if (!r.success) throw new Error(formatZodIssues(r.error, '(options)').map((l) => `--${l}`).join('; '));
  return r.data;
}

/** Writes the page (--html FILE) and/or prints the model (--json). */
async function emit(model: ReportModel, o: Outputs): Promise<void> {
  if (o.html !== undefined) {
    await writeFile(o.html, renderReportHtml(model));
    const hosts = new Set(model.runs.map((x) => x.host)).size;
    console.error(`wrote ${o.html}: ${model.kind} ${model.name} (${model.state}), ${hosts} host(s), ${model.runs.length} run(s)`);
  }
  if (o.json) console.log(JSON.stringify(model, null, 2));
}

const withOutputs = (c: Command) => c.option('--html <file>', 'write the report as one self-contained HTML page').option('--json', 'print the report model as JSON');

/** `ab-upgrade report <host>` */
export function reportCommand(): Command {
  return withOutputs(
    new Command('report').argument('<host>').description("a report of the host's latest upgrade or rollback: timeline, downtime, failures, rollback, approvals"),
  ).action(async (host: string, raw: unknown) => {
    const o = outputs(raw);
    await emit(await hostReportFrom(await connectClient(), host), o);
  });
}

/** `ab-upgrade campaign report <name>` */
export function campaignReportCommand(): Command {
  return withOutputs(
    new Command('report')
      .argument('<name>', 'the campaign name (its latest run) or its workflow id')
      .description('a report of the campaign: per-host timeline, downtime, failures and rollbacks, who approved what'),
  ).action(async (name: string, raw: unknown) => {
    const o = outputs(raw);
    await emit(await campaignReportFrom(await connectClient(), name), o);
  });
}
