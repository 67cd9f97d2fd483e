// The built server started as a user without privileges, so a test sees that it needs none. As
// root that is uid/gid 65534 (nobody) running a world-readable copy of what `npm start` runs: the
// checkout itself may sit where only root can enter (a home directory, mktemp -d). Run by another
// user, the checkout's own build runs as that user. Anything else throws, saying why.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnBuiltServer, type ChaosServer } from '../chaos/lib/server-process.js';
import { launchServer } from './server-process.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const builtMain = join('dist', 'src', 'main.js');
const nobody = 65_534;

export interface UnprivilegedServer extends ChaosServer {
  readonly uid: number;
  /** Deletes the copy, if one was made. */
  removeCopy(): void;
}

export async function spawnUnprivilegedServer(
  dsn: string,
  env: Record<string, string> = {},
): Promise<UnprivilegedServer> {
  const ownUid = process.getuid?.();
  if (ownUid === undefined) throw new Error('running as an unprivileged user needs a POSIX uid');
  if (ownUid !== 0) {
    const server = await spawnBuiltServer(dsn, env);
    return { ...server, uid: ownUid, removeCopy: () => {} };
  }
  if (!existsSync(join(projectRoot, builtMain)))
    throw new Error(`${builtMain} is missing: run \`npm run build\` first (npm test does)`);
  const root = copyBuiltServer();
  try {
    const main = join(root, builtMain);
    const probe = spawnSync(
      process.execPath,
      ['-e', `require('fs').accessSync(process.argv[1], 4)`, main],
      { cwd: root, uid: nobody, gid: nobody, encoding: 'utf8' },
    );
    if (probe.error !== undefined || probe.status !== 0)
      throw new Error(
        `cannot run ${process.execPath} on ${main} as uid/gid ${nobody}: ` +
          `${probe.error?.message ?? probe.stderr.trim()}. Root needs CAP_SETUID/CAP_SETGID, node ` +
          `must be executable by others, and ${tmpdir()} (TMPDIR) reachable by them.`,
      );
    const server = await launchServer({
      entry: { script: main },
      cwd: root,
      dsn,
      env,
      uid: nobody,
      gid: nobody,
    });
    const removeCopy = () => rmSync(root, { recursive: true, force: true });
    return { ...server, uid: nobody, removeCopy };
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
}

/** dist/, migrations/, package.json and the production dependencies (what `npm ci --omit=dev`
 *  installs) in a fresh 0755 directory; files are hard-linked where the link is readable by all. */
function copyBuiltServer(): string {
  const root = mkdtempSync(join(tmpdir(), 'pulse-unprivileged-'));
  chmodSync(root, 0o755);
  for (const entry of ['dist', 'migrations', 'package.json'])
    copyReadable(join(projectRoot, entry), join(root, entry));
  const pending = [{ dir: '.', names: dependencyNames('.') }];
  const copied = new Set<string>();
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const name of next.names) {
      const dir = resolvePackage(next.dir, name);
      if (dir === undefined || copied.has(dir)) continue; // an optional dependency not installed
      copied.add(dir);
      makeReadableDirs(root, dirname(dir));
      copyReadable(join(projectRoot, dir), join(root, dir), 'node_modules');
      pending.push({ dir, names: dependencyNames(dir) });
    }
  }
  return root;
}

/** mkdir -p of `dir` under `root`, each new directory 0755 whatever the umask. */
function makeReadableDirs(root: string, dir: string): void {
  if (dir === '.' || existsSync(join(root, dir))) return;
  makeReadableDirs(root, dirname(dir));
  mkdirSync(join(root, dir));
  chmodSync(join(root, dir), 0o755);
}

/** Where Node finds `name` from package `from` (a path relative to the project root). */
function resolvePackage(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(projectRoot, candidate, 'package.json'))) return candidate;
    if (dir === '.') return undefined;
  }
}

function dependencyNames(packageDir: string): string[] {
  const manifest = JSON.parse(
    readFileSync(join(projectRoot, packageDir, 'package.json'), 'utf8'),
  ) as Record<'dependencies' | 'optionalDependencies' | 'peerDependencies', object | undefined>;
  return [manifest.dependencies, manifest.optionalDependencies, manifest.peerDependencies].flatMap(
    (deps) => Object.keys(deps ?? {}),
  );
}

/** Copies a tree leaving out a top-level `skip` entry; a file others cannot read is copied and
 *  made readable, any other is hard-linked (or copied across file systems). */
function copyReadable(from: string, to: string, skip?: string): void {
  const stat = lstatSync(from);
  if (stat.isSymbolicLink()) return symlinkSync(readlinkSync(from), to);
  if (stat.isDirectory()) {
    mkdirSync(to);
    chmodSync(to, 0o755);
    for (const entry of readdirSync(from))
      if (entry !== skip) copyReadable(join(from, entry), join(to, entry));
    return;
  }
  if ((stat.mode & 0o004) !== 0) {
    try {
      return linkSync(from, to);
    } catch {
      // EXDEV: another file system; copy instead
    }
  }
  copyFileSync(from, to);
  chmodSync(to, (stat.mode & 0o111) !== 0 ? 0o755 : 0o644);
}
