// Connecting to Temporal and finding a host's workflow.
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { Option, type Command } from 'commander';
import { configuredDataConverter } from '../lib/codec.js';
import { CONNECTION_SETTINGS as S, configuredConnection, connectionOptions, connectionError, setConnectionFlags, type ConnectionFlags } from '../lib/temporal-connection.js';
import type { Profile } from '../lib/profile.js';
import type { UpgradeInput } from '../lib/workflow-api.js';
import { hostWorkflowId } from '../lib/profile.js';
import { finalStatusFrom, statusQuery, type WorkflowStatus } from '../lib/workflow-api.js';

/**
 * Adds the global connection flags to the CLI; before each command they are recorded for
 * connectClient() and the worker (they override the TEMPORAL_* variables, listed in the help).
 */
export function addConnectionFlags(program: Command): Command {
  const env = (k: keyof typeof S) => `(env ${S[k].env.join(' or ')})`;
  program
    .addOption(new Option(`${S.address.flag} <host:port>`, `Temporal frontend address, default 127.0.0.1:7233 ${env('address')}`))
    .addOption(new Option(`${S.namespace.flag} <name>`, `Temporal namespace, default "default" ${env('namespace')}`))
    .addOption(new Option(S.tls.flag, `connect with TLS (on by default with any TLS file, server name or API key) ${env('tls')}`))
    .addOption(new Option('--no-tls', 'connect in plaintext even with an API key'))
    .addOption(new Option(`${S.tlsCertPath.flag} <file>`, `client certificate (PEM) for mutual TLS ${env('tlsCertPath')}`))
    .addOption(new Option(`${S.tlsKeyPath.flag} <file>`, `private key (PEM) of the client certificate ${env('tlsKeyPath')}`))
    .addOption(new Option(`${S.tlsCaPath.flag} <file>`, `CA certificate (PEM) the server's certificate must chain to; default: the system's ${env('tlsCaPath')}`))
    .addOption(new Option(`${S.tlsServerName.flag} <name>`, `name to expect in the server's certificate (and send as SNI) ${env('tlsServerName')}`))
    .addOption(new Option(S.tlsDisableHostVerification.flag, `refused: not supported by the worker's connection; use ${S.tlsServerName.flag} ${env('tlsDisableHostVerification')}`).hideHelp())
    .addOption(new Option(`${S.apiKey.flag} <key>`, `API key, sent as "authorization: Bearer"; prefer the variable, a command line is visible to other users ${env('apiKey')}`));
  program.hook('preAction', () => {
    const o = program.opts<ConnectionFlags>();
    setConnectionFlags({
      address: o.address,
      namespace: o.namespace,
      tls: o.tls,
      tlsCertPath: o.tlsCertPath,
      tlsKeyPath: o.tlsKeyPath,
      tlsCaPath: o.tlsCaPath,
      tlsServerName: o.tlsServerName,
      tlsDisableHostVerification: o.tlsDisableHostVerification,
      apiKey: o.apiKey,
    });
  });
  return program;
}

/**
 * A client for the configured server (lib/temporal-connection.ts: the CLI's flags, else the
 * TEMPORAL_* variables); with AB_UPGRADE_CODEC_KEY set, it encrypts and decrypts payloads
 * (lib/codec.ts).
 */
export async function connectClient(): Promise<Client> {
  // Read before connecting, so a bad key or certificate file is reported as such.
  const dataConverter = configuredDataConverter();
  const target = configuredConnection();
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(target), connectTimeout: '5s' });
  } catch (e) {
    throw await connectionError(target, e);
  }
  return new Client({ connection, namespace: target.namespace, ...(dataConverter ? { dataConverter } : {}) });
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
