// Bundles the dashboard (dashboard/) into dist/dashboard/: index.html, app.js (the page's code and
// uPlot, minified) and app.css. The server reads these three files at start-up.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { dashboardDir } from '../src/http/dashboard-page.js';
import { projectRoot } from '../src/project-root.js';

export async function buildDashboard(outDir: string = dashboardDir): Promise<void> {
  const source = join(projectRoot, 'dashboard');
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [
      { in: join(source, 'src', 'main.ts'), out: 'app' },
      { in: join(source, 'app.css'), out: 'app' },
    ],
    outdir: outDir,
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  await copyFile(join(source, 'index.html'), join(outDir, 'index.html'));
}

if (import.meta.url === `file://${process.argv[1]}`) await buildDashboard();
