// The parts of a host's status, a campaign's status and an operator's message that the report
// reads, checked with zod before use: they come out of workflow histories, possibly written by
// an older version of the workflows. Loose objects: fields the report does not read may vary.
import { z } from 'zod';
import { formatZodIssues } from './profile.js';

const iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time');

const phaseRecord = z.looseObject({
  phase: z.string(),
  startedAt: iso,
  endedAt: iso.optional(),
  outcome: z.string().optional(),
  detail: z.string().optional(),
});

export const hostStatusSchema = z.looseObject({
  workflowType: z.string(),
  host: z.string(),
  phase: z.string(),
  state: z.string(),
  timeline: z.array(phaseRecord),
  requestedBy: z.string().optional(),
  fromSlot: z.string().optional(),
  toSlot: z.string().optional(),
  install: z.looseObject({ prettyName: z.string() }).optional(),
  decision: z
    .looseObject({ approved: z.boolean(), by: z.string(), reason: z.string().optional(), at: iso, via: z.string() })
    .optional(),
  downtime: z
    .looseObject({
      issuedAt: z.number(),
      answeredAt: z.number(),
      healthyAt: z.number(),
      downtimeMs: z.number(),
      hostSide: z.looseObject({ toSshdS: z.number().nullable(), toServicesS: z.number().nullable() }).optional(),
    })
    .optional(),
  reason: z.string().optional(),
  waitingFor: z.string().optional(),
  notices: z.array(z.string()).default([]),
  startedAt: iso,
  endedAt: iso.optional(),
});
export type HostStatusData = z.output<typeof hostStatusSchema>;

export const campaignStatusSchema = z.looseObject({
  campaign: z.string(),
  state: z.string(),
  hosts: z.array(
    z.looseObject({
      name: z.string(),
      state: z.string(),
      workflowId: z.string(),
      runId: z.string().optional(),
      wave: z.number().optional(),
      attempts: z.number(),
      reason: z.string().optional(),
      startedAt: iso.optional(),
      endedAt: iso.optional(),
    }),
  ),
  waves: z.array(
    z.looseObject({
      number: z.number(),
      round: z.number(),
      hosts: z.array(z.string()),
      state: z.string(),
      approvedBy: z.string().optional(),
      startedAt: iso.optional(),
      endedAt: iso.optional(),
      failed: z.array(z.string()).optional(),
    }),
  ),
  failures: z.looseObject({ count: z.number(), budget: z.number(), hosts: z.array(z.string()) }),
  reason: z.string().optional(),
  waitingFor: z.string().optional(),
  notices: z.array(z.string()).default([]),
  requestedBy: z.string().optional(),
  startedAt: iso,
  endedAt: iso.optional(),
});
export type CampaignStatusData = z.output<typeof campaignStatusSchema>;

/** What approve, reject, hostRecovered, approveWave, pause, resume and retryFailed carry. */
export const byInputSchema = z.looseObject({
  by: z.string().min(1),
  reason: z.string().optional(),
  note: z.string().optional(),
  wave: z.number().optional(),
});
export type ByInputData = z.output<typeof byInputSchema>;

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

/** Validates `value`; the problem names each bad field under `root` ("status of web-1: timeline.0.startedAt: ..."). */
export function check<T>(schema: z.ZodType<T>, value: unknown, root: string): Checked<T> {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, problem: `${root}: ${formatZodIssues(r.error, '(root)').join('; ')}` };
}
