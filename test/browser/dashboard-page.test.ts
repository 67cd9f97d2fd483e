// The dashboard in a real browser against the real server: it loads clean and stays on its origin,
// its numbers are /metrics's, its filters live in the URL, it is usable from the keyboard, and it
// follows /live.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openWatchedPage, type WatchedPage } from '../helpers/browser.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { makeEvent, postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  dashboardEvents,
  metricsAnswer,
  readPage,
  waitForSettled,
  waitForView,
} from './dashboard-reading.js';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let watched: WatchedPage;

beforeAll(async () => {
  db = await createTestDatabase();
  [server, browser] = await Promise.all([
    startTestServer(db.dsn, {
      INGEST_WORKERS: '1',
      METRICS_CACHE_TTL_MS: '0',
      RATE_LIMIT_METRICS_PER_MIN: '0',
    }),
    launchChromium(),
  ]);
  const events = dashboardEvents(Math.floor(Date.now() / 1000));
  for (let i = 0; i < events.length; i += 100) {
    const res = await postJson(`${server.url}/events/bulk`, { events: events.slice(i, i + 100) });
    expect(res.status).toBe(202);
  }
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await db?.close();
});

async function openDashboard(query: string, timezoneId = 'UTC'): Promise<Page> {
  watched = await openWatchedPage(browser, { timezoneId });
  await watched.page.goto(`${server.url}/dashboard${query}`);
  await waitForView(watched.page, 1);
  return watched.page;
}

describe('the dashboard in chromium', () => {
  it('loads with no console error and requests nothing outside its own origin', async () => {
    const page = await openDashboard('?range=7d');
    await watched.screenshot('dashboard-7d');
    const origin = new URL(server.url);
    const outside = watched.requests.filter((url) => new URL(url).host !== origin.host);
    expect({ errors: watched.errors, outside }).toEqual({ errors: [], outside: [] });
    expect(watched.requests.length).toBeGreaterThan(3);
    await page.context().close();
  });

  it('shows the totals, the table view and the breakdowns that /metrics answers for its window', async () => {
    const page = await openDashboard('?range=7d&group_by=day&tz=UTC');
    const shown = await readPage(page);
    const answer = await metricsAnswer(server.url, watched.requests, 'group_by');
    expect(shown.totals).toEqual([answer.totals.count, answer.totals.unique_users]);
    expect(shown.table).toEqual(answer.buckets.map((b) => [b.count, b.unique_users]));
    const byName = await metricsAnswer(server.url, watched.requests, 'breakdown=event_name');
    expect(shown.byEventName).toEqual([
      ...byName.breakdown.values.map((v) => [v.value, v.count, v.unique_users]),
    ]);
    expect(shown.totals[0]).toBeGreaterThan(0);
    await page.context().close();
  });

  it('puts a changed granularity, time zone and event name into its URL and shows their numbers', async () => {
    const page = await openDashboard('?range=7d&group_by=day&tz=UTC');
    const before = await readPage(page);
    await page.selectOption('#group-by', 'hour');
    await waitForView(page, 2);
    await page.selectOption('#tz', 'America/New_York');
    await waitForView(page, 3);
    await page.fill('#event-name', 'buy');
    await page.press('#event-name', 'Enter');
    await waitForSettled(page);
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toEqual({
      range: '7d',
      group_by: 'hour',
      tz: 'America/New_York',
      event_name: 'buy',
    });
    const after = await readPage(page);
    const answer = await metricsAnswer(server.url, watched.requests, 'group_by=hour');
    expect(new URL(answer.url).searchParams.get('tz')).toBe('America/New_York');
    expect(after.totals).toEqual([answer.totals.count, answer.totals.unique_users]);
    expect(after.table).toEqual(answer.buckets.map((b) => [b.count, b.unique_users]));
    expect(after.totals[0]).toBeLessThan(before.totals[0]!);
    await watched.screenshot('dashboard-hour-kathmandu-buy');
    await page.reload();
    await waitForView(page, 1);
    expect(await readPage(page)).toEqual(after);
    await page.context().close();
  });

  it("cuts buckets in the browser's time zone unless the URL names one", async () => {
    const page = await openDashboard('?range=30d', 'Asia/Tokyo');
    expect(new URL(page.url()).searchParams.get('tz')).toBe('Asia/Tokyo');
    const answer = await metricsAnswer(server.url, watched.requests, 'group_by');
    expect(new URL(answer.url).searchParams.get('tz')).toBe('Asia/Tokyo');
    expect((await readPage(page)).table).toEqual(
      answer.buckets.map((b) => [b.count, b.unique_users]),
    );
    await page.context().close();
  });

  it('shows a custom range typed into its from and to fields, and keeps it in the URL', async () => {
    const page = await openDashboard('?range=7d&group_by=day&tz=UTC');
    const now = Math.floor(Date.now() / 1000);
    const [from, to] = [now - 3 * 86_400, now - 86_400];
    const local = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 19);
    await page.selectOption('#range', 'custom');
    await waitForView(page, 2);
    await page.fill('#from', local(from));
    await page.fill('#to', local(to));
    await page.press('#to', 'Enter');
    await waitForSettled(page);
    expect(Object.fromEntries(new URL(page.url()).searchParams)).toEqual({
      range: 'custom',
      from: String(from),
      to: String(to),
      group_by: 'day',
      tz: 'UTC',
    });
    const answer = await metricsAnswer(server.url, watched.requests, `to=${to}`);
    expect((await readPage(page)).totals).toEqual([
      answer.totals.count,
      answer.totals.unique_users,
    ]);
    expect(answer.totals.count).toBeGreaterThan(0);
    await page.context().close();
  });

  it('changes the range preset with the keyboard alone', async () => {
    const page = await openDashboard('?range=7d');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('range');
    await page.keyboard.press('ArrowDown');
    await waitForView(page, 2);
    expect(new URL(page.url()).searchParams.get('range')).toBe('30d');
    await page.context().close();
  });

  it('shows an event posted while it is open in the live panel and the totals within 3 s', async () => {
    const page = await openDashboard('?range=24h');
    await page.waitForFunction(() => document.getElementById('live-count')?.textContent !== '–');
    const before = (await readPage(page)).totals[0]!;
    const event = makeEvent({
      event_name: 'live_check',
      user_id: 'live-user',
      timestamp: Math.floor(Date.now() / 1000) - 5,
    });
    const posted = performance.now();
    expect((await postJson(`${server.url}/events`, event)).status).toBe(202);
    await page.waitForFunction(
      () => document.getElementById('live-events')?.textContent?.includes('live_check'),
      undefined,
      { timeout: 3000 },
    );
    await page.waitForFunction(
      (count) =>
        document.getElementById('total-count')?.textContent === count.toLocaleString('en-US'),
      before + 1,
      { timeout: Math.max(1, 3000 - (performance.now() - posted)) },
    );
    await watched.screenshot('dashboard-live');
    await page.context().close();
  });
});
