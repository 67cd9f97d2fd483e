// The dashboard on a server that needs keys: it asks for a read key once the API refuses, uses the
// key typed (kept in sessionStorage, never in the URL), and says so when a key is refused.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjectWithKeys } from '../helpers/admin-api.js';
import { launchChromium, openWatchedPage, type WatchedPage } from '../helpers/browser.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { postJson } from '../helpers/events.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { dashboardEvents, metricsAnswer, readPage, waitForView } from './dashboard-reading.js';

const rootKey = 'dashboard-root-key';
let db: TestDatabase;
let server: TestServer;
let browser: Browser;
let shop: Awaited<ReturnType<typeof createProjectWithKeys>>;

beforeAll(async () => {
  db = await createTestDatabase();
  [server, browser] = await Promise.all([
    startTestServer(db.dsn, {
      INGEST_WORKERS: '1',
      API_KEYS: rootKey,
      RATE_LIMIT_METRICS_PER_MIN: '0',
    }),
    launchChromium(),
  ]);
  shop = await createProjectWithKeys(server.url, rootKey, 'shop');
  const events = dashboardEvents(Math.floor(Date.now() / 1000)).slice(0, 100);
  const res = await postJson(`${server.url}/events/bulk`, { events }, { 'x-api-key': shop.write });
  expect(res.status).toBe(202);
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await db?.close();
});

async function openAskingForKey(): Promise<{ watched: WatchedPage; page: Page; keys: string[] }> {
  const watched = await openWatchedPage(browser);
  const keys: string[] = [];
  watched.page.on('request', (request) => {
    if (request.url().includes('/metrics?')) keys.push(request.headers()['x-api-key'] ?? '');
  });
  await watched.page.goto(`${server.url}/dashboard?range=7d`);
  await watched.page.locator('#key-input').waitFor({ state: 'visible' });
  return { watched, page: watched.page, keys };
}

async function typeKey(page: Page, key: string): Promise<void> {
  await page.fill('#key-input', key);
  await page.press('#key-input', 'Enter');
}

describe('the dashboard on a server with keys', () => {
  it('asks for a read key after a 401 and shows the numbers of the key typed', async () => {
    const { watched, page, keys } = await openAskingForKey();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('key-input');
    await watched.screenshot('dashboard-key-prompt');
    await typeKey(page, shop.read);
    await waitForView(page, 1);
    // The live panel subscribes with the same key once it is typed.
    await page.waitForFunction(
      () => document.getElementById('live-state')?.textContent === 'connected',
    );
    await page.waitForFunction(() => document.getElementById('live-count')?.textContent === '100');
    const answer = await metricsAnswer(server.url, watched.requests, 'group_by', {
      'x-api-key': shop.read,
    });
    expect({
      totals: (await readPage(page)).totals,
      promptShown: await page.isVisible('#key-form'),
      stored: await page.evaluate(() => sessionStorage.getItem('pulse.readKey')),
      keyInUrl: page.url().includes(shop.read),
      cookies: await page.context().cookies(),
      keysSentLast: keys.slice(-3),
    }).toEqual({
      totals: [answer.totals.count, answer.totals.unique_users],
      promptShown: false,
      stored: shop.read,
      keyInUrl: false,
      cookies: [],
      keysSentLast: [shop.read, shop.read, shop.read],
    });
    expect([keys[0], answer.totals.count]).toEqual(['', 100]);
    await watched.close();
  });

  it('reports an unknown key and a key without read scope in the page, and keeps asking', async () => {
    const { watched, page } = await openAskingForKey();
    await typeKey(page, 'not-a-key');
    await page.locator('#key-error', { hasText: 'not accepted' }).waitFor();
    await typeKey(page, shop.write);
    await page.locator('#key-error', { hasText: 'no read scope' }).waitFor();
    await watched.screenshot('dashboard-key-refused');
    expect(await page.isVisible('#key-form')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('pulse.readKey'))).toBeNull();
    await watched.close();
  });
});
