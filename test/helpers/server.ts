// Starting the real server for tests: in this process (fast, most suites) or as a child process
// (for kill -9 and SIGTERM, through ./server-process.ts), always over real HTTP on 127.0.0.1.
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/service.js';
import { watchResponses, type OpenApiDocument } from './contract.js';
import { launchServer, type ServerProcess } from './server-process.js';

export { runMainToExit, type ServerProcess } from './server-process.js';

export interface TestServer {
  readonly url: string;
  readonly service: Service;
  stop(): Promise<void>;
}

export async function startTestServer(
  dsn: string,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    POSTGRES_DSN: dsn,
    ...env,
  });
  const service = await startService(config, pino({ level: config.logLevel }));
  const url = `http://127.0.0.1:${service.port}`;
  // Every fetch to this server is checked against the document it serves (test/helpers/contract.ts);
  // stop() throws if any response broke it.
  const document = parseYaml(await (await fetch(`${url}/openapi.yaml`)).text()) as OpenApiDocument;
  const unwatch = watchResponses(url, document);
  return {
    url,
    service,
    stop: async () => {
      await service.shutdown();
      unwatch();
    },
  };
}

/** Runs src/main.ts in its own process; resolves once it logs that it is listening. */
export function spawnServer(dsn: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  return launchServer({ entry: 'source', dsn, env });
}
