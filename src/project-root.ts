// Files shipped beside the code (migrations/) are found from the project root, which is one level
// up from src/ when running the TypeScript and two levels up from dist/src/ when running the build.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const srcDir = dirname(fileURLToPath(import.meta.url));
export const projectRoot = srcDir.endsWith(join('dist', 'src'))
  ? join(srcDir, '..', '..')
  : join(srcDir, '..');
