// The dashboard's built files (dashboard/ bundled by `npm run build` into dist/dashboard/), read
// once at start-up and kept in memory with their gzip form and ETag: serving one costs no disk
// read and no compression.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { projectRoot } from '../project-root.js';

export interface PageAsset {
  readonly contentType: string;
  readonly body: Buffer;
  readonly gzipped: Buffer;
  readonly etag: string;
}

/** URL path → asset. */
export type DashboardPage = ReadonlyMap<string, PageAsset>;

export const dashboardDir = join(projectRoot, 'dist', 'dashboard');

/** Each file: its URL path, its name in the build, its type, and what /openapi.yaml says of it. */
export const pageFiles = [
  {
    path: '/dashboard',
    file: 'index.html',
    mediaType: 'text/html',
    summary: 'The dashboard page (needs no key; it asks for a read key when /metrics does)',
  },
  {
    path: '/dashboard/app.js',
    file: 'app.js',
    mediaType: 'text/javascript',
    summary: "The dashboard's script",
  },
  {
    path: '/dashboard/app.css',
    file: 'app.css',
    mediaType: 'text/css',
    summary: "The dashboard's stylesheet",
  },
] as const;

/** The page, or what is missing: a build without it is a broken package, so start-up refuses. */
export function loadDashboardPage(
  dir: string = dashboardDir,
): { ok: true; page: DashboardPage } | { ok: false; missing: string } {
  const page = new Map<string, PageAsset>();
  for (const { path, file, mediaType } of pageFiles) {
    let body: Buffer;
    try {
      body = readFileSync(join(dir, file));
    } catch {
      return { ok: false, missing: join(dir, file) };
    }
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
    const contentType = `${mediaType}; charset=utf-8`;
    page.set(path, { contentType, body, gzipped: gzipSync(body, { level: 9 }), etag: `"${hash}"` });
  }
  return { ok: true, page };
}
