// A page the victim visits cannot spend the victim's budget of new sign-ins (issue 19, item 1):
// it fires <img> tags at /authorize from the victim's real Chromium; none starts an interaction,
// so the victim's own sign-in from the same address right after still reaches the login page.
// One STS with a budget of 5 new sign-ins per minute per address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startSts } from './sts.mjs';
import { browserMissing, launchBrowser } from './browser.mjs';

const noBrowser = browserMissing();
let sts;
let browser;

before(async () => {
  process.env.SIGNET_INTERACTIONS_PER_MINUTE = '5';
  sts = await startSts();
  delete process.env.SIGNET_INTERACTIONS_PER_MINUTE;
  if (!noBrowser) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await sts?.stop();
});

/** An authorization request of the example web app (PKCE S256), as a URL. */
function authorizeUrl(state) {
  const url = new URL('/authorize', sts.issuer);
  url.search = new URLSearchParams({
    client_id: 'default.web-app',
    redirect_uri: 'https://app.example.com/callback',
    response_type: 'code',
    scope: 'openid',
    state,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  return url.href;
}

test('issue 19: <img> tags on a page the victim visits start no sign-in and leave the victim\'s budget whole', { skip: noBrowser }, async () => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // Chromium blocks the answers from the page (ORB), but each request reaches the STS.
    let ended = 0;
    const done = (r) => r.url().startsWith(`${sts.issuer}/authorize`) && (ended += 1);
    page.on('requestfinished', done);
    page.on('requestfailed', done);
    const images = Array.from({ length: 10 }, (_, i) => `<img src="${authorizeUrl(`img-${i}`)}">`).join('');
    // The attacker's page, on another origin (another port of loopback).
    const attacker = createServer((_, res) => res.setHeader('content-type', 'text/html').end(`<!doctype html><title>a page the victim visits</title>${images}`));
    await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    await page.goto(`http://127.0.0.1:${attacker.address().port}/`);
    attacker.close();
    // Every image request went out and ended (the page shows no image).
    await page.waitForFunction(() => [...document.images].every((img) => img.complete));
    assert.equal(ended, 10, 'ten image requests reached the STS');

    // The victim's own sign-in, from the same browser and address, still works.
    await page.goto(authorizeUrl('mine'));
    assert.equal(new URL(page.url()).pathname, '/login', `the login page, not ${page.url()}`);
  } finally {
    await context.close();
  }
});
