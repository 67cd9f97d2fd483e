// Which uWebSockets.js build serves in this environment (Node 20 on glibc 2.36: 20.30; Node 22+
// or glibc 2.38+: 20.57), for the tests that pin a uWS behaviour per build.
import { loadNativeUws } from '../../src/http/load-uws.js';

export const servingUwsBuild = loadNativeUws().build;

export type UwsBuildLine = '20.30' | '20.57';

/** The expectation for the build serving here; a build with no expectation fails the test, so an
 *  upgrade cannot slip through unpinned. */
export function perUwsBuild<T>(expected: Readonly<Record<UwsBuildLine, T>>): T {
  const line = servingUwsBuild.version.split('.').slice(0, 2).join('.');
  if (!(line in expected))
    throw new Error(`no expectation pinned for uWebSockets.js ${servingUwsBuild.version}`);
  return expected[line as UwsBuildLine];
}
