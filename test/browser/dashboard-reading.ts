// Reading the dashboard as a test sees it, and the /metrics answers it should match.
import type { Page } from 'playwright-core';
import { makeEvent, type TestEvent } from '../helpers/events.js';

/** Six days of events before `now`: three names, two channels and none, 37 users. */
export function dashboardEvents(now: number): TestEvent[] {
  return Array.from({ length: 300 }, (_, i) => {
    const event = makeEvent({
      event_name: ['view', 'view', 'buy', 'signup'][i % 4]!,
      user_id: `u${i % 37}`,
      timestamp: now - 3600 - i * 1700,
      channel: ['web', 'ios', ''][i % 3]!,
    });
    if (event.channel === '') delete event.channel;
    return event;
  });
}

/** Resolves once the page has drawn its nth view since it loaded. */
export async function waitForView(page: Page, n: number): Promise<void> {
  await page.waitForFunction((view) => Number(document.body.dataset.loaded) >= view, n);
}

/** Resolves once the page has drawn the last view it started. */
export async function waitForSettled(page: Page): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.loaded === document.body.dataset.shown);
}

const count = (text: string | null) => Number((text ?? '').replace(/,/g, ''));

export interface PageNumbers {
  readonly totals: number[];
  /** Events and unique users of each row of the chart's table view. */
  readonly table: number[][];
  /** Value, events, unique users of each top event name. */
  readonly byEventName: (string | number)[][];
}

export async function readPage(page: Page): Promise<PageNumbers> {
  const cells = (selector: string) =>
    page.$$eval(selector, (rows) =>
      rows.map((row) => [...row.children].map((cell) => cell.textContent ?? '')),
    );
  const totals = [
    count(await page.textContent('#total-count')),
    count(await page.textContent('#total-users')),
  ];
  const table = (await cells('#series-table tbody tr')).map((row) => row.slice(1).map(count));
  const byEventName = (await cells('#by-event-name tbody tr'))
    .filter((row) => row[0] !== '(all other values)')
    .map(([value = '', ...numbers]) => [value, ...numbers.map(count)]);
  return { totals, table, byEventName };
}

interface Counts {
  count: number;
  unique_users: number;
}
export interface RecordedAnswer {
  readonly url: string;
  readonly totals: Counts;
  readonly buckets: (Counts & { bucket_start: number })[];
  readonly breakdown: { values: (Counts & { value: string | null })[] };
}

/** The newest /metrics request the page made whose query contains `marker`, asked again. */
export async function metricsAnswer(
  base: string,
  requests: readonly string[],
  marker: string,
  headers: Record<string, string> = {},
): Promise<RecordedAnswer> {
  const url = requests.findLast((u) => u.includes('/metrics?') && u.includes(marker));
  if (url === undefined) throw new Error(`the page made no /metrics request with ${marker}`);
  const path = url.slice(url.indexOf('/metrics'));
  const res = await fetch(`${base}${path}`, { headers });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as Omit<RecordedAnswer, 'url'>;
  return { ...body, url };
}
