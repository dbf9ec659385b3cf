// The VM suite runs in two scopes. By default (CI, `npm run test:e2e`) a representative slice
// that fits CI's time on a slow emulating machine: BIOS upgrade and later rollback, the UEFI
// host laid out by its operator, and the never-comes-back rollback through a power reset.
// `AB_UPGRADE_E2E=full` (`npm run test:e2e:full`) adds the round trip, the health-failure and
// kexec rollbacks, the fleet campaign through the CLI, the lab's own boot checks and the
// debootstrap release mode: about three times as long.
export const fullE2e = process.env.AB_UPGRADE_E2E === 'full';
