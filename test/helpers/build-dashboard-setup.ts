// The in-process test servers run src/ through tsx but serve the dashboard's built files, which
// only the bundler makes; building them here keeps a test run independent of `npm run build`.
import { buildDashboard } from '../../scripts/build-dashboard.js';

export default async function setup() {
  await buildDashboard();
}
