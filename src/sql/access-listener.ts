// The one connection per process that LISTENs for access changes. It is a plain client, not a
// pool member: a LISTEN belongs to its session. Lost, it reconnects; the poll covers the gap.
import pg from 'pg';
import type { Logger } from 'pino';
import { accessChannel } from './access-rows.js';
import type { PoolOptions } from './create-pool.js';

export interface AccessListener {
  close(): Promise<void>;
}

export function openAccessListener(
  options: PoolOptions,
  onChange: () => void,
  log: Pick<Logger, 'warn'>,
): AccessListener {
  let client: pg.Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    const next = new pg.Client({
      connectionString: options.connectionString,
      application_name: options.applicationName,
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: true,
    });
    next.on('notification', onChange);
    next.on('error', (err) => lost(next, err));
    next.on('end', () => lost(next));
    client = next;
    try {
      await next.connect();
      await next.query(`LISTEN ${accessChannel}`);
      if (closed) await next.end();
      // Changes made while no one listened are caught up now, not at the next poll.
      else onChange();
    } catch (err) {
      lost(next, err as Error);
    }
  };
  const lost = (which: pg.Client, err?: Error) => {
    if (client !== which || closed) return;
    client = null;
    if (err) log.warn({ err: err.message }, 'access listener lost; reconnecting');
    which.end().catch(() => undefined);
    retry = setTimeout(() => void connect(), options.connectTimeoutMs);
  };
  void connect();
  return {
    close: async () => {
      closed = true;
      clearTimeout(retry);
      const open = client;
      client = null;
      await open?.end().catch(() => undefined);
    },
  };
}
