// The npm republish of uWebSockets.js silently swaps in a slow pure-JS server when its native
// binary fails to load (wrong Node ABI, old glibc, or UWS_USE_FALLBACK set). We refuse to run on it.
import { createRequire } from 'node:module';
import type * as uwsTypes from 'uWebSockets.js';

export type Uws = typeof uwsTypes;

export function loadNativeUws(): Uws {
  const require = createRequire(import.meta.url);
  const uws = require('uWebSockets.js') as Uws;
  if (!isNativeUws(uws)) {
    throw new Error(
      'uWebSockets.js did not load its native binary and fell back to its JS server; refusing to start. ' +
        `This build needs Node 20 (ABI 115) on linux/darwin/win32 x64 or arm64 with glibc >= 2.36 (running Node ${process.version}, ` +
        `ABI ${process.versions.modules}, ${process.platform}/${process.arch}). Unset UWS_USE_FALLBACK if it is set.`,
    );
  }
  return uws;
}

/** The native module's App is a C++ function and carries getParts; the fallback's is plain JS. */
export function isNativeUws(uws: Uws): boolean {
  return (
    typeof (uws as { getParts?: unknown }).getParts === 'function' &&
    /\[native code\]/.test(String(uws.App))
  );
}
