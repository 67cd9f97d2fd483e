// Two builds of uWebSockets.js, because no single one runs on every Node pulse supports: the newer
// needs glibc 2.38, the older has binaries for Node 20 and earlier only. The older one silently
// swaps in a slow pure-JS server when its binary fails to load; we refuse to run on that.
// The types come from the newer build; test/integration/uws-builds.test.ts checks that the older
// one answers the calls pulse makes the same way.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as uwsTypes from 'uWebSockets.js';

export type Uws = typeof uwsTypes;

export interface UwsBuildSpec {
  /** The dependency's alias in package.json. */
  readonly module: string;
  /** Where its binaries load, for the refusal message. */
  readonly runsOn: string;
}

/** Newest first: the first that loads natively serves. */
export const uwsBuilds: readonly UwsBuildSpec[] = [
  {
    module: 'uWebSockets.js',
    runsOn: 'Node 20, 22, 24 or 25 with glibc >= 2.38 (Debian 13, Ubuntu 24.04 or later)',
  },
  { module: 'uws-20.30', runsOn: 'Node 20 with glibc >= 2.36 (Debian 12)' },
];

export interface UwsBuild {
  readonly module: string;
  /** The npm package behind the alias and its version, e.g. @btc-vision/uwebsockets.js 20.57.0. */
  readonly packageName: string;
  readonly version: string;
}

export interface LoadedUws {
  readonly uws: Uws;
  readonly build: UwsBuild;
}

export function loadNativeUws(builds: readonly UwsBuildSpec[] = uwsBuilds): LoadedUws {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const spec of builds) {
    let uws: Uws;
    try {
      uws = require(spec.module) as Uws;
    } catch (error) {
      failures.push(`${spec.module}: ${lastLine(error)}`);
      continue;
    }
    if (isNativeUws(uws)) return { uws, build: describeBuild(spec.module, require) };
    failures.push(`${spec.module}: fell back to its JS server`);
  }
  throw new Error(
    'No uWebSockets.js build loads its native binary here; refusing to start on a JS fallback. ' +
      `Running Node ${process.version} (ABI ${process.versions.modules}) on ${process.platform}/${process.arch}, ` +
      `glibc ${glibcVersion() ?? 'none'}. Builds and where they run (x64 or arm64): ` +
      builds.map((b) => `${b.module} on ${b.runsOn}`).join('; ') +
      `. Unset UWS_USE_FALLBACK if it is set. Tried: ${failures.join('; ')}.`,
  );
}

/** The native module's App is a C++ function and carries getParts; the fallback's is plain JS. */
export function isNativeUws(uws: Uws): boolean {
  return (
    typeof (uws as { getParts?: unknown }).getParts === 'function' &&
    /\[native code\]/.test(String(uws.App))
  );
}

/** The package.json nearest the module's entry file: the newer build's `exports` hides its own. */
function describeBuild(module: string, require: NodeJS.Require): UwsBuild {
  let dir = dirname(require.resolve(module));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  return { module, packageName: manifest.name, version: manifest.version };
}

function glibcVersion(): string | undefined {
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report.header?.glibcVersionRuntime;
}

function lastLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error)
    .split('\n')
    .findLast((line) => line.trim() !== '')!
    .trim();
}
