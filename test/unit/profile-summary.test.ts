// The compact profile view (plan --fleet and the inventory's `show`): how the release reaches the host.
import { describe, expect, it } from 'vitest';
import { profileSummary } from '../../lib/profile-summary.js';
import { minimalProfile } from '../helpers/unit-fixtures.js';

const releaseLine = (release: object) => profileSummary(minimalProfile({ release })).find((l) => l.startsWith('  release'));
const image = { source: 'image', url: '/srv/trixie.tar.zst', sha256: 'ab'.repeat(32), allowUnsigned: true };

describe('profileSummary: the release line', () => {
  it('a debootstrap release, and an image streamed over SSH', () => {
    expect(releaseLine({ source: 'debootstrap', suite: 'trixie', packages: ['nginx'] })).toBe('  release   debootstrap trixie from http://deb.debian.org/debian + nginx');
    expect(releaseLine(image)).toBe('  release   image /srv/trixie.tar.zst (unsigned)');
  });

  it('an image pulled by the host: where it connects, or that the port is chosen per attempt', () => {
    expect(releaseLine({ ...image, pull: { listenAddress: '10.0.0.5' } })).toBe('  release   image /srv/trixie.tar.zst (unsigned; pulled by the host from 10.0.0.5 port chosen per attempt)');
    expect(releaseLine({ ...image, pull: { listenAddress: '0.0.0.0', listenPort: 7070, connectAddress: 'ctl.example.net', connectPort: 17070 } })).toBe(
      '  release   image /srv/trixie.tar.zst (unsigned; pulled by the host from ctl.example.net port 17070)',
    );
    expect(releaseLine({ ...image, pull: { listenAddress: '10.0.0.5', listenPort: 7070 } })).toBe('  release   image /srv/trixie.tar.zst (unsigned; pulled by the host from 10.0.0.5 port 7070)');
  });
});

describe('profileSummary: the install line', () => {
  const installLine = (over: Record<string, unknown>) => profileSummary(minimalProfile(over)).find((l) => l.startsWith('  install'));
  it('the default priority, and a cap on the image', () => {
    expect(installLine({ release: image })).toBe('  install   nice 10, I/O best-effort at its lowest level, the image uncapped');
    expect(installLine({ release: image, install: { nice: 15, maxRate: '50MB/s' } })).toBe('  install   nice 15, I/O best-effort at its lowest level, the image at most 50 MB/s');
  });
});
