// Connecting to Temporal and finding a host's workflow.
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { configuredDataConverter } from '../lib/codec.js';
import type { Profile } from '../lib/profile.js';
import type { UpgradeInput } from '../lib/workflow-api.js';
import { hostWorkflowId } from '../lib/profile.js';
import { finalStatusFrom, statusQuery, type WorkflowStatus } from '../lib/workflow-api.js';

export const temporalAddress = () => process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
export const temporalNamespace = () => process.env.TEMPORAL_NAMESPACE ?? 'default';

/** A client for TEMPORAL_ADDRESS; with AB_UPGRADE_CODEC_KEY set, it encrypts and decrypts payloads (lib/codec.ts). */
export async function connectClient(): Promise<Client> {
  const address = temporalAddress();
  // Read before connecting, so a bad key file is reported as such.
  const dataConverter = configuredDataConverter();
  try {
    const connection = await Connection.connect({ address, connectTimeout: '5s' });
    return new Client({ connection, namespace: temporalNamespace(), ...(dataConverter ? { dataConverter } : {}) });
  } catch (e) {
    throw new Error(`cannot reach the Temporal server at ${address} (${(e as Error).message}); start it with ./temporal-dev.sh start`);
  }
}

/**
 * The latest status of a host's workflow: the live query while it runs, the result (or the
 * status carried by its failure) once it ended; null when this host never had one.
 */
export async function hostStatus(client: Client, host: string): Promise<WorkflowStatus | null> {
  const handle = client.workflow.getHandle(hostWorkflowId(host));
  let running: boolean;
  try {
    running = (await handle.describe()).status.name === 'RUNNING';
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return null;
    throw e;
  }
  if (running) return handle.query(statusQuery);
  try {
    return (await handle.result()) as WorkflowStatus;
  } catch (e) {
    const s = finalStatusFrom(e);
    if (s) return s;
    // Cancelled or terminated: the query still answers when a worker is up.
    return handle.query(statusQuery).catch(() => {
      throw new Error(`the workflow for ${host} ended without a status: ${(e as Error).message}`);
    });
  }
}

/** The profile the host's latest workflow ran with (its input, from the history). */
export async function lastProfile(client: Client, host: string): Promise<Profile | null> {
  try {
    const history = await client.workflow.getHandle(hostWorkflowId(host)).fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    return payload ? (await fromHistoryPayload<UpgradeInput>(client, payload)).profile : null;
  } catch (e) {
    // fetchHistory reports an unknown workflow as a raw gRPC NOT_FOUND (code 5).
    if (e instanceof WorkflowNotFoundError || (e as { code?: number }).code === 5) return null;
    throw e;
  }
}

/** A payload as stored in a history (histories are fetched undecoded), through the client's codecs and converter. */
async function fromHistoryPayload<T>(client: Client, payload: Payload): Promise<T> {
  const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
  let payloads = [payload];
  // Codecs decode in the reverse of their encoding order.
  for (const codec of [...payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  return payloadConverter.fromPayload<T>(payloads[0]!);
}
