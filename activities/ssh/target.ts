// Where and as whom to connect: the SSH part of a host profile.
import type { Profile } from '../../lib/profile.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFile?: string;
  /** true: the agent at $SSH_AUTH_SOCK; a string: that agent socket. */
  agent?: boolean | string;
  /** `SHA256:...` fingerprint or an OpenSSH public key / known_hosts line (several lines allowed). */
  hostKey: string;
  become: 'root' | 'sudo';
  /** Handshake bound (ssh2 readyTimeout). Default 15 s. */
  connectTimeoutMs?: number;
  /** SSH keepalive interval; the connection is declared dead after 3 unanswered ones. Default 5 s. */
  keepaliveIntervalMs?: number;
  /** Concurrent channels on this connection; further execs queue. Default 4. */
  maxChannels?: number;
  /** Cipher preference, most preferred first (default: ssh2's, AES-GCM first on AES-NI machines). */
  ciphers?: string[];
}

export function targetFromProfile(p: Profile): SshTarget {
  const t: SshTarget = { host: p.host, port: p.port, user: p.user, hostKey: p.hostKey, become: p.become };
  if (p.auth.identityFile !== undefined) t.identityFile = p.auth.identityFile;
  if (p.auth.agent !== undefined && p.auth.agent !== false) t.agent = p.auth.agent;
  return t;
}
