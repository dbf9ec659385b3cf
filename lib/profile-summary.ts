// A compact view of a resolved profile (after a template, inventory variables and overrides were
// merged): where and how the controller connects, the slots, the release, the checks. Profiles
// hold references to secrets only (key and password file paths, agent sockets); so does this.
import { formatDurationMs as d } from './duration.js';
import type { ImageRelease, Profile } from './profile.js';
import { formatRate } from './rate.js';

/** Where the host connects to pull the image (release.pull). */
export function pullSummary(pull: NonNullable<ImageRelease['pull']>): string {
  return `pulled by the host from ${pull.connectAddress ?? pull.listenAddress} port ${pull.connectPort ?? (pull.listenPort || 'chosen per attempt')}`;
}

/** How hard the install presses on the serving host (install): its priority there, and an image's cap. */
export function installSummary(i: Profile['install'], release: Profile['release']): string {
  const io = { low: 'I/O best-effort at its lowest level', idle: 'I/O only when the disk is idle', normal: 'I/O priority unchanged' }[i.io];
  const cap = release.source !== 'image' ? '' : i.maxRate ? `, the image at most ${formatRate(i.maxRate)}` : ', the image uncapped';
  return `nice ${i.nice}, ${io}${cap}`;
}

export function profileSummary(p: Profile): string[] {
  const auth = [p.auth.identityFile && `key ${p.auth.identityFile}`, p.auth.agent === true ? 'agent $SSH_AUTH_SOCK' : p.auth.agent ? `agent ${p.auth.agent}` : undefined].filter(Boolean);
  const slots = p.slots === 'auto' ? 'auto' : `a ${p.slots.a}, b ${p.slots.b}`;
  const r = p.release;
  const release = r.source === 'debootstrap' ? `debootstrap ${r.suite} from ${r.mirror}${r.packages.length ? ` + ${r.packages.join(' ')}` : ''}` : `image ${r.url} (${r.signature ? 'signed' : 'unsigned'}${r.pull ? `; ${pullSummary(r.pull)}` : ''})`;
  const power = p.power.driver === 'none' ? 'none' : p.power.driver === 'qmp' ? `qmp ${p.power.socket}` : `${p.power.driver} ${'address' in p.power ? p.power.address : p.power.url} (password file ${p.power.passwordFile})`;
  const h = p.health;
  const t = p.timings;
  return [
    `profile ${p.name}: ${p.user}@${p.host}:${p.port}, become ${p.become}, auth ${auth.join(' + ')}`,
    `  host key  ${p.hostKey}`,
    `  slots     ${slots}; data ${p.data.device} on ${p.data.mountPoint}`,
    `  release   ${release}`,
    `  reboot    ${p.reboot}${p.kernelArgs ? ` (kernel args: ${p.kernelArgs})` : ''}; power ${power}`,
    `  install   ${installSummary(p.install, p.release)}`,
    `  carry     ${p.carry.defaults ? 'Debian defaults' : 'no defaults'}${p.carry.files.length ? ` + ${p.carry.files.join(' ')}` : ''}${p.carry.exclude.length ? ` − ${p.carry.exclude.join(' ')}` : ''}`,
    `  health    units [${h.units.join(' ')}], ports [${h.tcpPorts.join(' ')}], ${h.commands.length} command(s)`,
    `  timings   approval ${d(t.approvalTimeout)}, comeback ${d(t.comebackDeadline)}, poll ${d(t.pollInterval)}, health ${d(t.healthTimeout)}`,
  ];
}
