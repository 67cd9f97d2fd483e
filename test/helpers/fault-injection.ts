// The environment that switches test-only faults on: FAULT_INJECTION alone stops start-up.
import { faultInjectionSwitch } from '../../src/config.js';

export function faultInjectionEnv(faults: string): Record<string, string> {
  return { FAULT_INJECTION: faults, [faultInjectionSwitch.name]: faultInjectionSwitch.value };
}
