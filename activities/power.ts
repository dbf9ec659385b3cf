// Out-of-band power control: the way back when a trial boot never answers over SSH.
//
// One small interface, one class per backend (QEMU's QMP for the lab, IPMI and Redfish for
// real servers). Every operation is bounded by a timeout. Secrets never travel in argv or in
// the profile: IPMI reads its password file itself (`ipmitool -f`), Redfish reads the file at
// call time.
//
// One file per concern in ./power/: the interface (driver.ts) and each backend.
import type { PowerConfig } from '../lib/profile.js';
import type { PowerDriver } from './power/driver.js';
import { IpmiPowerDriver } from './power/ipmi.js';
import { QmpPowerDriver } from './power/qmp.js';
import { RedfishPowerDriver } from './power/redfish.js';

export { PowerError, type PowerDriver, type PowerStatus } from './power/driver.js';
export { IpmiPowerDriver, type IpmiOptions } from './power/ipmi.js';
export { QmpConnection, QmpPowerDriver, type QmpEvent, type QmpReply } from './power/qmp.js';
export { RedfishPowerDriver, type RedfishOptions } from './power/redfish.js';

/** The driver for a profile's `power` section; `none` gives null. */
export function powerDriverFor(config: PowerConfig): PowerDriver | null {
  switch (config.driver) {
    case 'none':
      return null;
    case 'qmp':
      return new QmpPowerDriver(config.socket);
    case 'ipmi':
      return new IpmiPowerDriver({ address: config.address, user: config.user, passwordFile: config.passwordFile, interface: config.interface });
    case 'redfish':
      return new RedfishPowerDriver({
        url: config.url,
        user: config.user,
        passwordFile: config.passwordFile,
        systemId: config.systemId,
        insecureTls: config.insecureTls,
        allowHttp: config.allowHttp,
      });
  }
}
