// ab-upgrade: the operator's command line. Every command exits non-zero on failure and prints
// errors as sentences; --json gives machine-readable output where it makes sense.
import { Command, Option } from 'commander';
import { assessHost, presentPaths } from '../activities/inspect.js';
import { gatherPreflight } from '../activities/preflight.js';
import { basePackages } from '../activities/release.js';
import { checkRelease } from '../activities/release-image.js';
import { closeAllHosts, SshHost, targetFromProfile } from '../activities/ssh.js';
import { carryList } from '../lib/carry.js';
import { formatStatus } from '../lib/format-status.js';
import { renderPlan } from '../lib/plan.js';
import { preflight } from '../lib/preflight.js';
import { hostWorkflowId, ProfileError, revalidateProfile, type Profile } from '../lib/profile.js';
import {
  approveUpdate,
  hostRecoveredSignal,
  isFinalState,
  rejectUpdate,
  statusQuery,
  type WorkflowStatus,
} from '../lib/workflow-api.js';
import { labCommand } from '../lab/command.js';
import { campaignCommand } from './campaign.js';
import { campaignReportCommand, reportCommand } from './report.js';
import { releaseCommand } from './release-build.js';
import { loadProfile } from './profile-file.js';
import type { InventoryOptions } from './campaign-file.js';
import { loadInventoryProfiles, withInventoryOptions } from './inventory-file.js';
import { DEFAULT_PLAN_PARALLEL, parseParallel, planFleet, type CheckRelease, type HostPlan } from './plan-fleet.js';
import { AlreadyRunningError, follow, me, startHostWorkflow } from './follow.js';
import { formatLiveStatus } from './progress-format.js';
import { withLive } from './progress.js';
import { addConnectionFlags, connectClient, hostStatus, lastProfile } from './temporal.js';
import { access } from 'node:fs/promises';
import { CODEC_KEY_ENV, configuredCodec } from '../lib/codec.js';
import { DEFAULT_UI_ORIGINS, startCodecServer } from './codec-server.js';

/** Exit codes: 0 ok, 1 the operation failed or was refused, 2 bad input, 3 rolled back/rejected. */
class CliError extends Error {
  constructor(message: string, public readonly code = 1) {
    super(message);
  }
}

/** `plan`: read-only facts, the plan and its pre-flight report; not ok when inspect refuses or an inhibitor is found. */
export async function planHost(profile: Profile, checkReleaseOf: CheckRelease = checkRelease): Promise<HostPlan> {
  // On the controller, alongside the host's inspection: the image's signature (or sha256), as the install checks it.
  const releaseCheck = checkReleaseOf(profile.release);
  const h = await SshHost.connect(targetFromProfile(profile)).catch(async (e: unknown) => {
    await releaseCheck;
    throw e;
  });
  try {
    const assessment = await assessHost(h, profile);
    const present = await presentPaths(h, carryList(profile));
    const g = await gatherPreflight(h, profile);
    const release = await releaseCheck;
    const report = preflight({
      profile,
      assessment,
      present,
      ...g,
      basePackages: basePackages(assessment.ok ? assessment.facts.bootMode : 'bios'),
      release,
    });
    const localUnits = carryList(profile, g.localUnits.carry).filter((p) => g.localUnits.carry.includes(p));
    return {
      text: renderPlan(profile, assessment, present, { preflight: report, localUnits, release }),
      ok: assessment.ok && report.inhibitors === 0,
      json: { ...assessment, carryPresent: [...present], localUnits, release, preflight: report },
    };
  } finally {
    h.close();
  }
}

/**
 * The profile `rollback <host-or-profile>` uses, validated like `upgrade`'s (a ProfileError:
 * exit 2): a file is read before the server is contacted; a host name reuses the profile of its
 * last workflow, validated again since the schema may have grown stricter since. A target with
 * a "/" is always a file, so a mistyped path is not looked up as a host.
 */
export async function rollbackProfile(target: string, lastProfileOf: (host: string) => Promise<unknown>): Promise<Profile> {
  const isFile = target.includes('/') || (await access(target).then(() => true, () => false));
  if (isFile) return loadProfile(target);
  const last = await lastProfileOf(target);
  if (!last) throw new CliError(`${target} is neither a profile file nor a host that ab-upgrade has upgraded`);
  try {
    return revalidateProfile(last);
  } catch (e) {
    if (!(e instanceof ProfileError)) throw e;
    throw new ProfileError([...e.problems, `(the profile of ${target}'s last upgrade; give a profile file instead)`]);
  }
}

function exitFor(s: WorkflowStatus): number {
  return s.state === 'committed' ? 0 : s.state === 'rolled-back' || s.state === 'rejected' ? 3 : 1;
}

export function buildCli(): Command {
  const program = new Command('ab-upgrade')
    .description('Upgrade Debian hosts onto their spare A/B root slot, with a trial boot and a guaranteed way back.')
    .addOption(
      new Option('--codec-key <files>', 'encrypt workflow payloads with the key in <files> (the first encrypts, all decrypt; comma-separated; see README)').env(CODEC_KEY_ENV),
    )
    .showHelpAfterError();
  addConnectionFlags(program);
  // Every command (and the worker, the lab) reads the keys from the variable: the option sets it.
  program.hook('preAction', () => {
    const files = program.opts<{ codecKey?: string }>().codecKey;
    if (files) process.env[CODEC_KEY_ENV] = files;
  });

  program
    .command('worker')
    .description('run a worker: executes the upgrade workflows and their SSH activities')
    .option('--metrics <ip:port>', 'serve Prometheus metrics at http://<ip:port>/metrics, e.g. 127.0.0.1:9464 (env AB_UPGRADE_METRICS; default off)')
    .option('--workflow-bundle <file>', 'run the workflows from a bundle made by bundle-workflows instead of bundling them at start (env AB_UPGRADE_WORKFLOW_BUNDLE)')
    .option('--max-cached-workflows <n>', "workflows kept in memory between their tasks; set it above a campaign wave's size when the heap is capped (env AB_UPGRADE_MAX_CACHED_WORKFLOWS; default: the SDK's, from the heap limit)")
    .action(async (o: { metrics?: string; workflowBundle?: string; maxCachedWorkflows?: string }) => {
      const { runWorker } = await import('../worker/main.js');
      await runWorker({ metrics: o.metrics, workflowBundle: o.workflowBundle, maxCachedWorkflows: o.maxCachedWorkflows });
    });

  program
    .command('bundle-workflows')
    .description("bundle the workflows once into <file> (and <file>.json) for `worker --workflow-bundle`: faster worker starts, less memory; with --codec-key when the worker has one")
    .argument('<file>', 'where to write the bundle')
    .action(async (file: string) => {
      const { buildWorkflowBundle } = await import('../worker/workflow-bundle.js');
      const record = await buildWorkflowBundle(file, { encodedFailures: configuredCodec() !== undefined });
      console.log(`workflow bundle ${file} (sources ${record.sources.slice(0, 12)}, ${record.encodedFailures ? 'for a worker with a codec key' : 'for a worker without a codec key'})`);
    });

  program
    .command('codec-server')
    .description('serve /encode and /decode for the Temporal Web UI, so it shows payloads encrypted with --codec-key')
    .addOption(new Option('--port <n>', 'TCP port on 127.0.0.1').default('8888'))
    .option('--cors-origin <url>', `a Web UI origin allowed to call it; repeat for more (default: ${DEFAULT_UI_ORIGINS.join(' and ')})`, (v: string, all: string[] = []) => [...all, v])
    .action(async (o: { port: string; corsOrigin?: string[] }) => {
      const codec = configuredCodec();
      if (!codec) throw new CliError(`codec-server needs the key files: --codec-key FILE or ${CODEC_KEY_ENV}`);
      if (!/^\d+$/.test(o.port) || Number(o.port) > 65535) throw new CliError(`--port must be a TCP port number, not ${o.port}`);
      const corsOrigins = o.corsOrigin ?? DEFAULT_UI_ORIGINS;
      const s = await startCodecServer({ codec, port: Number(o.port), corsOrigins });
      console.log(`codec server on ${s.url} (keys ${codec.keyIds.join(', ')}; encrypts with ${codec.currentKeyId}) for the Web UI at ${corsOrigins.join(', ')}`);
      console.log(`point the UI at it: temporal server start-dev --ui-codec-endpoint ${s.url}, or the UI's codec server setting`);
      await new Promise<void>((resolve) => {
        const stop = () => void s.close().then(resolve, resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  program.addCommand(labCommand());
  program.addCommand(campaignCommand().addCommand(campaignReportCommand()));
  program.addCommand(reportCommand());
  program.addCommand(releaseCommand());

  withInventoryOptions(program
    .command('plan [profile]')
    .description('inspect the host read-only and print exactly what an upgrade would do and every reason it would fail (writes nothing; exits 1 on an inhibitor)')
    .option('--json', 'machine-readable output'), 'to plan each of its hosts instead of one profile file')
    .option('--parallel <n>', `with --inventory: hosts planned at once (default ${DEFAULT_PLAN_PARALLEL}, like Ansible's forks); output stays in inventory order`)
    .action(async (file: string | undefined, o: { json?: boolean; parallel?: string } & InventoryOptions) => {
      if ((file === undefined) === (o.inventory === undefined)) throw new CliError('give a profile file or --inventory (not both)', 2);
      if (o.inventory === undefined && (o.template !== undefined || o.limit !== undefined)) throw new CliError('--template and --limit go with --inventory', 2);
      if (o.inventory === undefined && o.parallel !== undefined) throw new CliError('--parallel goes with --inventory', 2);
      let parallel: number;
      try {
        parallel = parseParallel(o.parallel);
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      if (o.inventory === undefined) {
        const plan = await planHost(await loadProfile(file!));
        console.log(o.json ? JSON.stringify(plan.json, null, 2) : plan.text);
        if (!plan.ok) process.exitCode = 1;
        return;
      }
      const profiles = await loadInventoryProfiles({ inventory: o.inventory, template: o.template, limit: o.limit });
      const ok = await planFleet(profiles, { parallel, json: !!o.json, planOne: planHost, print: (s) => console.log(s) });
      if (!ok) process.exitCode = 1;
    });

  program
    .command('upgrade <profile>')
    .description('start the upgrade workflow for the host in <profile>')
    .option('-y, --yes', 'approve the reboot in advance (no approval wait)')
    .option('--follow', 'show the phases live until the upgrade ends or waits for approval')
    .option('--json', 'print the final status as JSON (with --follow)')
    .action(async (file: string, o: { yes?: boolean; follow?: boolean; json?: boolean }) => {
      const profile = await loadProfile(file);
      const client = await connectClient();
      const handle = await startHostWorkflow(client, 'upgradeHost', profile, !!o.yes);
      console.log(`started ${hostWorkflowId(profile.name)} (run ${handle.firstExecutionRunId}); Web UI: http://127.0.0.1:8233/namespaces/default/workflows/${encodeURIComponent(handle.workflowId)}`);
      if (!o.follow) return;
      const s = await follow(async () => withLive(client, profile.name, await handle.query(statusQuery)), console.log, false);
      if (s.state === 'awaiting-approval') {
        console.log(`approve with: ab-upgrade approve ${profile.name}   (or reject with: ab-upgrade reject ${profile.name} --reason ...)`);
        return;
      }
      const final = (await hostStatus(client, profile.name)) ?? s;
      console.log(o.json ? JSON.stringify(final, null, 2) : formatStatus(final));
      process.exitCode = exitFor(final);
    });

  for (const [name, update] of [['approve', approveUpdate], ['reject', rejectUpdate]] as const) {
    program
      .command(`${name} <host>`)
      .description(`${name} the pending reboot of <host>`)
      .option('--by <who>', 'who decides', me())
      .option('--reason <text>', 'why')
      .option('--follow', 'show the phases live until the workflow ends')
      .action(async (host: string, o: { by: string; reason?: string; follow?: boolean }) => {
        const client = await connectClient();
        const handle = client.workflow.getHandle(hostWorkflowId(host));
        try {
          await handle.executeUpdate(update, { args: [{ by: o.by, ...(o.reason ? { reason: o.reason } : {}) }] });
        } catch (e) {
          throw new CliError(`could not ${name} ${host}: ${(e as Error).message}`);
        }
        console.log(`${name}d ${host} (by ${o.by})`);
        if (o.follow) {
          const s = await follow(async () => withLive(client, host, await handle.query(statusQuery)), console.log);
          console.log(formatStatus(s));
          process.exitCode = exitFor(s);
        }
      });
  }

  program
    .command('recovered <host>')
    .description('tell a rollback waiting for an operator that <host> was reset by hand')
    .option('--by <who>', 'who did it', me())
    .option('--note <text>', 'what was done')
    .action(async (host: string, o: { by: string; note?: string }) => {
      const client = await connectClient();
      await client.workflow.getHandle(hostWorkflowId(host)).signal(hostRecoveredSignal, { by: o.by, ...(o.note ? { note: o.note } : {}) });
      console.log(`told the workflow of ${host} that the host was recovered`);
    });

  program
    .command('status <host>')
    .description('phase, timeline, downtime and outcome of the latest upgrade or rollback of <host>')
    .option('--json', 'machine-readable output')
    .option('--follow', 'keep printing until the workflow ends')
    .action(async (host: string, o: { json?: boolean; follow?: boolean }) => {
      const client = await connectClient();
      const first = await hostStatus(client, host);
      if (!first) throw new CliError(`no upgrade or rollback has run for ${host}`);
      const live = async () => withLive(client, host, (await hostStatus(client, host))!);
      // Running: with its pending activities' attempts, last errors and progress (client/progress.ts).
      const s = isFinalState(first.state) ? first : o.follow ? await follow(live, console.log) : await withLive(client, host, first);
      console.log(o.json ? JSON.stringify(s, null, 2) : formatLiveStatus(s));
      if (isFinalState(s.state)) process.exitCode = exitFor(s);
    });

  program
    .command('rollback <host-or-profile>')
    .description('return a committed host to its previous slot (asks for approval unless --yes); a host name reuses the profile of its last upgrade')
    .option('-y, --yes', 'approve in advance')
    .option('--follow', 'show the phases live')
    .option('--carry-back', "first copy the current slot's carried files, accounts and enabled services onto the previous slot")
    .action(async (target: string, o: { yes?: boolean; follow?: boolean; carryBack?: boolean }) => {
      let connected: Awaited<ReturnType<typeof connectClient>> | undefined;
      const connect = async () => (connected ??= await connectClient());
      const profile = await rollbackProfile(target, async (host) => lastProfile(await connect(), host));
      const handle = await startHostWorkflow(await connect(), 'rollbackHost', profile, !!o.yes, o.carryBack ? { carryBack: true } : {});
      console.log(`started rollback ${handle.workflowId}`);
      if (o.follow) {
        const client = await connect();
        const s = await follow(async () => withLive(client, profile.name, await handle.query(statusQuery)), console.log, false);
        if (!isFinalState(s.state)) return void console.log(`approve with: ab-upgrade approve ${profile.name}`);
        console.log(formatStatus(s));
        process.exitCode = exitFor(s);
      }
    });

  program
    .command('list')
    .description('recent upgrades and rollbacks')
    .addOption(new Option('--limit <n>', 'how many').default('20'))
    .option('--json', 'machine-readable output')
    .action(async (o: { limit: string; json?: boolean }) => {
      const client = await connectClient();
      const rows: { workflowId: string; type: string; status: string; start: string }[] = [];
      for await (const w of client.workflow.list({ query: "WorkflowId STARTS_WITH 'ab-upgrade/'" })) {
        rows.push({ workflowId: w.workflowId, type: w.type, status: w.status.name, start: w.startTime.toISOString() });
        if (rows.length >= Number(o.limit)) break;
      }
      if (o.json) console.log(JSON.stringify(rows, null, 2));
      else for (const r of rows) console.log(`${r.start}  ${r.status.padEnd(11)} ${r.type.padEnd(13)} ${r.workflowId.replace(/^ab-upgrade\//, '')}`);
    });

  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    if (e instanceof ProfileError) {
      console.error(e.message);
      process.exitCode = 2;
    } else if (e instanceof AlreadyRunningError) {
      console.error(`ab-upgrade: ${e.message}`);
      process.exitCode = 1;
    } else if (e instanceof CliError) {
      console.error(`ab-upgrade: ${e.message}`);
      process.exitCode = e.code;
    } else {
      console.error(`ab-upgrade: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  } finally {
    closeAllHosts();
  }
}
