// The OAuth sign-in and consent pages in a real browser: the official client
// (@atproto/oauth-client-node) starts the flow (PAR with PKCE and DPoP), headless Chromium
// (Debian's, through puppeteer-core) opens the authorization URL, a person's wrong and then
// right password is typed, the requested permissions are read off the consent page and
// allowed; the browser's redirect to the client is caught, the client exchanges the code and
// writes a record over the new session. A screenshot of every page goes to OUT_DIR.
//
// Usage: $ROOKERY_NODE tests/js/oauth-browser.mjs PDS_URL PLC_URL HANDLE PASSWORD SCOPE OUT_DIR
// Prints one JSON line of what it saw and exits 0, or names the failing step and exits 1.
import assert from 'node:assert/strict'
import { assertNodeVersion, load } from './deps.mjs'
import { REDIRECT, loopbackClient } from './oauth-client.mjs'

assertNodeVersion()
const [pds, plc, handle, password, scope, outDir] = process.argv.slice(2)
if (!outDir) {
  console.error('usage: oauth-browser.mjs PDS_URL PLC_URL HANDLE PASSWORD SCOPE OUT_DIR')
  process.exit(2)
}
const { Agent } = await load('@atproto/api')
const puppeteer = (await load('puppeteer-core')).default

const out = { shots: [] }
let step = 'start'
const browser = await puppeteer.launch({
  executablePath: process.env.ROOKERY_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
})
try {
  const client = await loopbackClient(pds, plc, scope)
  step = 'authorize'
  const url = await client.authorize(handle, { scope, state: 'browser-state' })

  const page = await browser.newPage()
  await page.setViewport({ width: 1000, height: 760 })
  // The redirect back to the client: caught here (nothing listens there), never loaded.
  let callback
  await page.setRequestInterception(true)
  page.on('request', (request) => {
    if (request.url().startsWith(REDIRECT)) {
      callback = new URL(request.url())
      request.respond({ status: 200, contentType: 'text/plain', body: 'back at the app' })
    } else {
      request.continue()
    }
  })
  const shot = async (name) => {
    await page.screenshot({ path: `${outDir}/${name}.png`, fullPage: true })
    out.shots.push(name)
  }
  const submit = (selector) => Promise.all([page.waitForNavigation(), page.click(selector)])

  step = 'sign-in page'
  let response = await page.goto(url.toString())
  out.signInStatus = response.status()
  out.prefilled = await page.$eval('#identifier', (e) => e.value)
  await shot('oauth-sign-in')

  step = 'wrong password'
  await page.type('#password', 'not the password')
  ;[response] = await submit('button[type=submit]')
  out.wrongPasswordStatus = response.status()
  out.wrongPasswordPage = await page.$('#password').then((e) => e !== null)
  await shot('oauth-sign-in-wrong-password')

  step = 'sign in'
  await page.$eval('#password', (e) => (e.value = ''))
  await page.type('#password', password)
  ;[response] = await submit('button[type=submit]')
  out.consentStatus = response.status()
  out.permissions = await page.$$eval('li code', (items) => items.map((e) => e.textContent))
  await shot('oauth-consent')

  step = 'allow'
  await submit('button[value=approve]')
  assert.ok(callback, 'the browser was sent back to the client')

  step = 'callback'
  const { session, state } = await client.callback(callback.searchParams)
  out.callbackState = state
  out.did = session.did
  step = 'createRecord'
  const agent = new Agent(session)
  const created = await agent.com.atproto.repo.createRecord({
    repo: session.did,
    collection: 'app.bsky.feed.post',
    record: { $type: 'app.bsky.feed.post', text: 'signed in with a browser', createdAt: new Date().toISOString() },
  })
  out.uri = created.data.uri
  console.log(JSON.stringify(out))
  await browser.close()
  process.exit(0)
} catch (err) {
  console.error(`oauth-browser: step ${step} failed:`, err?.stack ?? err)
  await browser.close()
  process.exit(1)
}
