// The one connection per process that LISTENs (access changes, commits) and sends the commit
// notifications. It is a plain client, not a pool member: a LISTEN belongs to its session. Lost,
// it reconnects; onConnected lets a listener catch up on what it may have missed.
import pg from 'pg';
import type { Logger } from 'pino';
import { isConnectionLost } from './classify-pg-error.js';
import type { PoolOptions } from './create-pool.js';

export interface NotificationConnection {
  /** Settles once the first attempt to connect and LISTEN has succeeded or failed. */
  readonly firstAttempt: Promise<void>;
  /** Runs `send` on the connection; false when it is down (what it would have sent is lost). */
  send(send: (client: pg.Client) => Promise<void>): Promise<boolean>;
  close(): Promise<void>;
}

/** channels: channel name (a constant, never input) → what to do with each payload. */
export function openNotificationConnection(
  options: PoolOptions,
  channels: Readonly<Record<string, (payload: string) => void>>,
  onConnected: () => void,
  log: Pick<Logger, 'warn'>,
): NotificationConnection {
  let client: pg.Client | null = null;
  let ready = false;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    const next = new pg.Client({
      connectionString: options.connectionString,
      application_name: options.applicationName,
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: true,
    });
    next.on('notification', (n) => channels[n.channel]?.(n.payload ?? ''));
    next.on('error', (err) => lost(next, err));
    next.on('end', () => lost(next));
    client = next;
    try {
      await next.connect();
      // A notification is not data: its commit need not wait for the WAL to reach disk.
      await next.query('SET synchronous_commit = off');
      for (const channel of Object.keys(channels)) await next.query(`LISTEN ${channel}`);
      if (closed) await next.end();
      else {
        ready = true;
        onConnected();
      }
    } catch (err) {
      lost(next, err as Error);
    }
  };
  const lost = (which: pg.Client, err?: Error) => {
    if (client !== which || closed) return;
    client = null;
    ready = false;
    if (err) log.warn({ err: err.message }, 'notification connection lost; reconnecting');
    which.end().catch(() => undefined);
    retry = setTimeout(() => void connect(), options.connectTimeoutMs);
  };
  const firstAttempt = connect();
  return {
    firstAttempt,
    send: async (send) => {
      const current = client;
      if (!ready || current === null) return false;
      try {
        await send(current);
        return true;
      } catch (err) {
        if (isConnectionLost(err)) lost(current, err as Error);
        else log.warn({ err: (err as Error).message }, 'a notification could not be sent');
        return false;
      }
    },
    close: async () => {
      closed = true;
      clearTimeout(retry);
      const open = client;
      client = null;
      ready = false;
      await open?.end().catch(() => undefined);
    },
  };
}
