// Drives the relay's setup page in a real Chromium: signs in through the form, checks
// that the checklist and stats are shown, that hostile message text stayed text, opens a
// contact's thread from the contact list, searches, switches to Russian, checks the
// conversation pages on a phone, and saves full-page screenshots.
//
// Env: RELAY_URL (http://127.0.0.1:PORT), RELAY_ADMIN_TOKEN, optional SCREENSHOT_DIR
// (default ../../target/screenshots) and CHROMIUM (default /usr/bin/chromium).
// Started by tests/integration/browser.rs, which first fills the relay with messages.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.RELAY_URL;
const token = process.env.RELAY_ADMIN_TOKEN;
assert.ok(base && token, 'set RELAY_URL and RELAY_ADMIN_TOKEN');
const shots = process.env.SCREENSHOT_DIR || resolve(here, '../../target/screenshots');
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Debian's chromium in a container: no sandbox, no GPU, and nothing that phones home.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // Containers often have a tiny /dev/shm; chromium crashes tabs when it fills.
    '--disable-dev-shm-usage',
  ],
});

const dialogs = [];
const pageErrors = [];
// Every request any page makes: none may leave for another host.
const requested = [];

/** Every page opened gets the same watchers: an alert() or a script error fails the test. */
function watch(page) {
  // CI machines are slow and shared; the default 30 s per action is not always enough.
  page.setDefaultTimeout(60_000);
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (r) => requested.push(r.url()));
  return page;
}

/** Nothing a message carried may have become markup or run. */
async function assertNoInjection(page, where) {
  const found = await page.evaluate(() => ({
    xss: typeof window.__xss,
    // The relay's own scripts (copy buttons, local times) are the only ones a page may have.
    scripts: [...document.querySelectorAll('script')].filter(
      (s) => !['/static/copy.js', '/static/local-time.js'].includes(
        new URL(s.src || 'inline:', location.href).pathname,
      ),
    ).length,
    handlers: document.querySelectorAll('[onerror],[onload],[onclick],[onmouseover]').length,
    jsLinks: [...document.querySelectorAll('a[href]')].filter((a) =>
      a.getAttribute('href').trim().toLowerCase().startsWith('javascript:'),
    ).length,
    svgs: [...document.querySelectorAll('svg')].filter((s) => !s.closest('figure.chart')).length,
  }));
  assert.deepEqual(
    found,
    { xss: 'undefined', scripts: 0, handlers: 0, jsLinks: 0, svgs: 0 },
    `injected markup on ${where}`,
  );
  assert.deepEqual(dialogs, [], `dialogs opened on ${where}`);
}

async function statValue(page, key) {
  return (await page.locator(`[data-stat="${key}"] .stat-value`).innerText()).trim();
}

try {
  const stats = await (
    await fetch(`${base}/instagram/stats`, { headers: { Authorization: `Bearer ${token}` } })
  ).json();

  const desktop = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
    timezoneId: 'Europe/Moscow',
  });
  const page = watch(await desktop.newPage());

  // Signed out, the dashboard sends the browser to the sign-in form.
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login$/);
  await page.screenshot({ path: join(shots, 'login-en.png'), fullPage: true });

  // A wrong token keeps the form, with an error.
  await page.fill('#token', 'not-the-token');
  await page.click('form.login-form button[type=submit]');
  await page.waitForSelector('.alert-error');
  assert.match(page.url(), /\/login$/);

  await page.fill('#token', token);
  await Promise.all([
    page.waitForURL(`${base}/`),
    page.click('form.login-form button[type=submit]'),
  ]);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');

  // The checklist: every row has a status badge with words and a title.
  const keys = await page.$$eval('.checks > li', (rows) => rows.map((r) => r.dataset.key));
  assert.ok(keys.includes('server') && keys.includes('public_url'), `checklist rows: ${keys}`);
  for (const key of keys) {
    const row = page.locator(`#check-${key}`);
    assert.ok((await row.locator('.badge').innerText()).trim().length > 0, `badge of ${key}`);
    assert.ok((await row.locator('h3').innerText()).trim().length > 0, `title of ${key}`);
  }
  // Secrets stay folded until asked for.
  for (const secret of await page.locator('details.secret').all()) {
    assert.equal(await secret.getAttribute('open'), null);
    await secret.locator('summary').click();
    assert.notEqual(await secret.getAttribute('open'), null);
    await secret.locator('summary').click();
  }

  // Every value to paste has a copy button that works (the clipboard API needs https, so
  // on this plain-http page the fallback copies).
  const copies = page.locator('#check-webhook_configured button[data-copy]');
  assert.ok((await copies.count()) >= 3, 'copy buttons for the URL, the header value and the body');
  for (const button of await copies.all()) {
    assert.ok(await button.isVisible(), 'a copy button is hidden');
  }
  const body = page.locator('#check-webhook_configured button[data-copy*="{{user_id}}"]');
  assert.equal(await body.count(), 1, 'the body template has a copy button');
  await body.click();
  await page.waitForFunction(
    () => document.querySelector('button[data-copy*="{{user_id}}"]').classList.contains('copied'),
  );
  assert.equal((await body.innerText()).trim(), 'Copied');

  // Stats match the JSON API.
  assert.equal(await statValue(page, 'total'), String(stats.total_messages));
  assert.equal(await statValue(page, 'contacts'), String(stats.unique_contacts));
  assert.equal(await statValue(page, 'duplicates'), String(stats.duplicates));
  assert.equal(await statValue(page, 'rejected'), String(stats.webhooks_rejected));
  assert.equal(await statValue(page, 'caught_up'), String(stats.caught_up));
  // The inbox row: connected, naming the member and the account; caught-up messages marked.
  const inboxRow = page.locator('#check-inbox');
  assert.equal(await inboxRow.getAttribute('data-status'), 'ok');
  assert.ok((await inboxRow.innerText()).includes('Aurora Shop'), 'the account is named');
  const caught = page.locator('#recent [data-source]');
  assert.ok((await caught.count()) >= 2, 'caught-up messages are marked');
  assert.equal((await caught.first().innerText()).trim(), 'from the inbox');
  assert.ok(stats.total_messages > 0, 'the test posted messages');
  assert.equal(await page.locator('figure.chart svg.chart-wide rect.bar').count(), 30);
  assert.ok((await page.locator('figure.chart svg title').first().textContent()).length > 0);

  // Messages: Cyrillic and emoji intact, hostile text shown as text.
  const recent = await page.locator('#recent').innerText();
  assert.ok(recent.includes('Здравствуйте, сколько стоит доставка?'), 'Cyrillic text');
  assert.ok(recent.includes('🎉'), 'emoji');
  assert.ok(recent.includes('<img src=x onerror="window.__xss=1">'), 'markup shown as text');
  assert.ok(recent.includes('<script>window.__xss=1</script>'), 'script shown as text');
  assert.ok(recent.includes('javascript:alert(1)'), 'javascript: URL shown as text');
  const attachmentLinks = await page.$$eval('#recent td.attachments a', (as) =>
    as.map((a) => [a.getAttribute('href'), a.getAttribute('rel'), a.hasAttribute('data-kept') || a.classList.contains('preview')]),
  );
  assert.ok(attachmentLinks.length > 0, 'the attachments are links');
  for (const [href, rel, kept] of attachmentLinks) {
    if (kept) {
      // The relay's own copy.
      assert.match(href, /^\/media\/[0-9a-f]{64}$/);
    } else {
      assert.match(href, /^https?:\/\//);
      assert.equal(rel, 'noopener noreferrer');
    }
  }

  // A photo sent through Chatrace shows from the relay's own copy, and it loads.
  const preview = page.locator('#recent td.attachments a.preview img');
  assert.ok((await preview.count()) > 0, 'an image preview');
  assert.match(await preview.first().getAttribute('src'), /^\/media\/[0-9a-f]{64}$/);
  await preview.first().scrollIntoViewIfNeeded();
  await page.waitForFunction(
    () => document.querySelector('#recent td.attachments a.preview img').naturalWidth === 48,
  );
  assert.ok((await page.locator('#recent').innerText()).includes('photo'), 'the kind in words');
  // The dead link shows why it was not kept.
  assert.ok(
    (await page.locator('#recent [data-not-kept]').first().innerText()).includes('expired'),
    'a link that expired says so',
  );

  // Problem requests: the unfilled variables and the wrong secret.
  assert.ok((await page.locator('#flagged tr[data-flag="unfilled_placeholders"]').count()) > 0);
  assert.ok((await page.locator('#rejected tr[data-reason="bad_secret"]').count()) > 0);
  assert.ok((await page.locator('#flagged').innerText()).includes('{{contact_id}}'));

  await assertNoInjection(page, 'the dashboard');
  await page.screenshot({ path: join(shots, 'dashboard-en.png'), fullPage: true });

  // The full message list.
  await page.click('nav.nav a[href="/messages"]');
  await page.waitForURL(`${base}/messages`);
  assert.ok((await page.locator('table.messages tbody tr').count()) >= 4);
  await assertNoInjection(page, 'the message list');
  await page.screenshot({ path: join(shots, 'messages-en.png'), fullPage: true });

  // Contacts, newest activity first; open the conversation caught up from the inbox.
  await page.click('nav.nav a[href="/contacts"]');
  await page.waitForURL(`${base}/contacts`);
  assert.ok((await page.locator('#contacts > li').count()) >= 4, 'contact rows');
  const maria = page.locator('#contacts li[data-contact="5718243390127745"]');
  // The photo she sent last (by webhook) waits for an answer.
  assert.equal(await maria.locator('[data-unanswered]').count(), 1, 'unanswered');
  await assertNoInjection(page, 'the contact list');
  await page.screenshot({ path: join(shots, 'contacts-en.png'), fullPage: true });
  await Promise.all([
    page.waitForURL(`${base}/contacts/5718243390127745`),
    maria.locator('a.contact-name').click(),
  ]);
  const bubbles = page.locator('#thread > li');
  assert.equal(await bubbles.count(), 3);
  assert.ok((await bubbles.nth(0).innerText()).includes('Можно оплатить картой при получении?'));
  assert.equal(await bubbles.nth(1).getAttribute('class'), 'bubble dir-out');
  assert.ok((await bubbles.nth(1).innerText()).includes('Доставка бесплатная'));
  assert.equal(await bubbles.nth(1).getAttribute('data-source'), 'inbox');
  assert.equal(await bubbles.nth(2).getAttribute('data-source'), 'webhook');
  assert.equal(await bubbles.nth(2).locator('img').count(), 1, 'the photo');
  // Times are shown in the browser's own zone, and the footer says which.
  assert.ok((await page.locator('#time-note').innerText()).includes('Europe/Moscow'));
  const shown = await page.locator('#thread time').first().innerText();
  assert.match(shown, /GMT\+3|MSK/, `a time in Moscow: ${shown}`);
  assert.ok(await page.locator('#reply form').isVisible(), 'the reply box under the thread');
  await assertNoInjection(page, 'a thread');
  await page.screenshot({ path: join(shots, 'thread-en.png'), fullPage: true });

  // Search: a Cyrillic word in another case, then the start of a word.
  await page.click('nav.nav a[href="/search"]');
  await page.fill('#search-q', 'ДОСТАВКА');
  await Promise.all([page.waitForURL(/\/search\?q=/), page.press('#search-q', 'Enter')]);
  const marks = await page.$$eval('#results mark', (ms) => ms.map((m) => m.textContent));
  assert.ok(marks.length >= 2 && marks.every((m) => m.toLowerCase() === 'доставка'), `${marks}`);
  await page.fill('#search-q', 'оплат');
  await Promise.all([page.waitForURL(/q=%D0%BE/), page.press('#search-q', 'Enter')]);
  assert.equal(await page.locator('#results > li').count(), 1);
  assert.equal(await page.locator('#results mark').innerText(), 'оплатить');
  await page.fill('#search-q', '"><img src=x onerror="window.__xss=1"> NEAR *');
  await page.press('#search-q', 'Enter');
  await page.waitForSelector('#results, #no-results');
  await assertNoInjection(page, 'a hostile search');
  await page.fill('#search-q', 'доставка');
  await Promise.all([page.waitForURL(/q=%D0%B4/), page.press('#search-q', 'Enter')]);
  await page.screenshot({ path: join(shots, 'search-en.png'), fullPage: true });
  await Promise.all([
    page.waitForURL(/\/contacts\/.+#message-/),
    page.locator('#results a[data-in-thread]').first().click(),
  ]);
  const target = new URL(page.url()).hash;
  assert.equal(await page.locator(`#thread > li${target}`).count(), 1, 'the found message');
  await page.goto(`${base}/messages`);

  // Switch to Russian with the header's link; the choice sticks.
  await page.click('.langs a[hreflang="ru"]');
  // Polls across the navigation, when there is briefly no document element at all.
  await page.waitForFunction(() => document.documentElement?.lang === 'ru');
  assert.match(page.url(), /\/messages$/);
  await page.goto(`${base}/`);
  assert.equal(await page.getAttribute('html', 'lang'), 'ru');
  assert.equal((await page.locator('#setup-title').innerText()).trim(), 'Настройка');
  assert.equal((await page.locator('#stats-title').innerText()).trim(), 'Статистика');
  assert.ok((await page.locator('#recent').innerText()).includes('Входящее'));
  assert.ok((await page.locator('#recent').innerText()).includes('из инбокса'));
  await assertNoInjection(page, 'the Russian dashboard');
  await page.screenshot({ path: join(shots, 'dashboard-ru.png'), fullPage: true });

  // A phone, signed in with the same cookies.
  const phone = await browser.newContext({
    storageState: await desktop.storageState(),
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'ru-RU',
  });
  const phonePage = watch(await phone.newPage());
  await phonePage.goto(`${base}/`);
  assert.equal(await phonePage.getAttribute('html', 'lang'), 'ru');
  const overflow = await phonePage.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  assert.ok(overflow <= 1, `the page scrolls sideways on a phone by ${overflow}px`);
  await phonePage.screenshot({ path: join(shots, 'dashboard-phone.png'), fullPage: true });
  // The conversation pages fit a phone too.
  for (const [path, name] of [
    ['/contacts', 'contacts-phone.png'],
    ['/contacts/5718243390127745', 'thread-phone.png'],
    ['/search?q=%D0%B4%D0%BE%D1%81%D1%82', 'search-phone.png'],
  ]) {
    await phonePage.goto(`${base}${path}`);
    const sideways = await phonePage.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(sideways <= 1, `${path} scrolls sideways on a phone by ${sideways}px`);
    await assertNoInjection(phonePage, `${path} on a phone`);
    await phonePage.screenshot({ path: join(shots, name), fullPage: true });
  }
  await phone.close();

  // Sign out: the session is gone.
  await Promise.all([page.waitForURL(`${base}/login`), page.click('form.logout button')]);
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login$/);

  const origin = new URL(base).origin;
  const elsewhere = requested.filter((u) => new URL(u).origin !== origin);
  assert.deepEqual(elsewhere, [], 'requests that left for another host');
  assert.ok(requested.some((u) => new URL(u).pathname.startsWith('/media/')), 'the photo was loaded');
  assert.deepEqual(pageErrors, [], 'script errors');
  assert.deepEqual(dialogs, [], 'dialogs');
  console.log(`browser test passed; screenshots in ${shots}`);
} finally {
  await browser.close();
}
