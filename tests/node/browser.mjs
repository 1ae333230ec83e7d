// Headless Debian Chromium for the sign-in pages (the PW items of acceptance.md), and what every
// browser test does with it: fill the login form as a person would, and catch where the STS
// finally sends the browser.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Why browser tests cannot run here, or undefined. Outside CI a missing Chromium skips them;
 * in CI it does not, and launchBrowser() fails instead.
 */
export function browserMissing() {
  if (existsSync(chromiumPath) || process.env.CI === 'true') return undefined;
  return `no Chromium at ${chromiumPath} (scripts/test installs Debian's chromium; or set CHROMIUM_PATH)`;
}

/**
 * Launches headless Chromium. `hostRules` replaces the default host resolver rules (a test
 * that maps names of its own to loopback must still map the rest to nothing); `args` are
 * further switches.
 */
export async function launchBrowser({ hostRules = 'MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', args = [] } = {}) {
  if (!existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: apt-get install chromium, or set CHROMIUM_PATH`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    // Root in a container has no user namespace for Chromium's sandbox. Every host name but
    // loopback resolves to nothing, so a redirect to a client's https URI fails at once and no
    // request leaves the machine.
    args: ['--no-sandbox', `--host-resolver-rules=${hostRules}`, ...args],
  });
}

/** Fills the login form through its labels and presses the button, as a person would. */
export async function signIn(page, { username, password }) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Whether `url` is `redirectUri` with any query (scheme, host, port and path equal). */
function sameEndpoint(url, redirectUri) {
  const a = new URL(url);
  const b = new URL(redirectUri);
  return a.protocol === b.protocol && a.host === b.host && a.pathname === b.pathname;
}

/**
 * Resolves with the URL the browser is next sent to at `redirectUri` (any query). It watches
 * requests rather than routing them: Chromium's redirect hops, which is how our 303s reach a
 * client, bypass Playwright's routes, while the request event sees every hop. The client need
 * not be there: a hop to an unserved URI just ends on an error page (see launchBrowser).
 */
export async function captureRedirect(page, redirectUri) {
  const request = await page.waitForRequest((r) => r.isNavigationRequest() && sameEndpoint(r.url(), redirectUri));
  return new URL(request.url());
}

/**
 * Keeps the page's browser from sending any request whose URL matches `pattern` (a glob of the
 * DevTools protocol: `*` is any run of characters, `?` any one), redirect hops included: the request fails
 * (net::ERR_BLOCKED_BY_CLIENT) and the server never sees it, while the page's request event
 * still shows its URL. Playwright's routes cannot stop a hop; the protocol's Fetch domain can.
 */
export async function blockRequests(page, pattern) {
  const cdp = await page.context().newCDPSession(page);
  cdp.on('Fetch.requestPaused', ({ requestId }) => {
    cdp.send('Fetch.failRequest', { requestId, errorReason: 'BlockedByClient' }).catch(() => {});
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: pattern, requestStage: 'Request' }] });
}

/**
 * Sends the page to `authorizationUrl` and walks the pages a person would until the browser is
 * sent to `redirectUri`: the login page (only when `user` is given) and the consent page (only
 * when `consent` is 'Allow' or 'Deny'). Any other page, or one that is not expected, fails.
 * Returns the callback URL and the pages shown, in order (e.g. ['login', 'consent']).
 */
export async function authorizeInBrowser(page, authorizationUrl, redirectUri, { user, consent } = {}) {
  const issuer = new URL(authorizationUrl).origin;
  let callback;
  // A walk that ends on an unexpected page reports that page; the unmet wait is moot then.
  captureRedirect(page, redirectUri).then((url) => (callback = url), () => {});
  const shown = [];
  // Runs `action`, then waits for the next page load: one of our pages, or whatever ends the
  // hop to the client (its page, or Chromium's error page for an unserved URI). Waiting for that
  // load, not just the redirect, keeps the next navigation from being cut off by it.
  const settle = async (action) => {
    const loaded = page.waitForEvent('load');
    await action().catch((error) => {
      // A navigation that ends at the client's unserved URI fails; that is expected.
      if (!/net::ERR_/.test(error.message)) throw error;
    });
    await loaded;
  };
  await settle(() => page.goto(String(authorizationUrl)));
  while (!callback) {
    const here = new URL(page.url());
    const where = here.origin === issuer ? here.pathname : page.url();
    if (where === '/login' && user && !shown.includes('login')) {
      shown.push('login');
      await settle(() => signIn(page, user));
    } else if (where === '/consent' && consent && !shown.includes('consent')) {
      shown.push('consent');
      await settle(() => page.getByRole('button', { name: consent }).click());
    } else {
      const alert = await page.getByRole('alert').textContent({ timeout: 100 }).catch(() => '');
      throw new Error(`unexpected page ${page.url()} after ${JSON.stringify(shown)} ${alert ?? ''}`);
    }
  }
  return { callback, shown };
}

/**
 * Runs `fn(page, context)` in a browser context of its own (its own cookie jar, so each call
 * is another person's browser), closed afterwards. `options` go to `browser.newContext`.
 */
export async function inNewContext(browser, fn, { timeout = 15_000, ...options } = {}) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(timeout);
  try {
    return await fn(await context.newPage(), context);
  } finally {
    await context.close();
  }
}
