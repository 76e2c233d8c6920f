// Drives Rookery's web pages in headless Chromium (Debian's, through puppeteer-core): the
// operator dashboard and the account page, in English on a desktop width and in Simplified
// Chinese on a phone width, submitting their forms as a person would; saves a screenshot of
// every page into OUT_DIR.
//
// Usage: $ROOKERY_NODE tests/js/web-pages.mjs PDS_URL ADMIN_PASSWORD HANDLE PASSWORD OUT_DIR
// Prints one JSON line of what it saw, for the Rust test to check against the XRPC API.
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [base, adminPassword, handle, password, outDir] = process.argv.slice(2)
if (!outDir) {
  console.error('usage: web-pages.mjs PDS_URL ADMIN_PASSWORD HANDLE PASSWORD OUT_DIR')
  process.exit(2)
}
const puppeteer = (await load('puppeteer-core')).default

const browser = await puppeteer.launch({
  executablePath: process.env.ROOKERY_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
})
const out = { shots: [] }

async function open(lang, width) {
  const context = await browser.createBrowserContext()
  const page = await context.newPage()
  await page.setExtraHTTPHeaders({ 'Accept-Language': lang })
  await page.setViewport({ width, height: width > 600 ? 800 : 844 })
  return page
}

async function shot(page, name) {
  await page.screenshot({ path: `${outDir}/${name}.png`, fullPage: true })
  out.shots.push(name)
}

// Submits the form holding `selector` (a button) and waits for the answer.
async function submit(page, selector) {
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)])
  return response
}

async function adminSignIn(page, pass) {
  await page.type('#password', pass)
  return submit(page, 'main button[type=submit]')
}

try {
  // The operator, in English on a desktop.
  let page = await open('en-GB,en;q=0.9', 1100)
  let response = await page.goto(`${base}/admin`)
  out.adminSignedOutStatus = response.status()
  await shot(page, 'admin-sign-in')
  response = await adminSignIn(page, 'not-the-password')
  out.wrongPasswordStatus = response.status()
  out.wrongPasswordText = (await page.content()).includes('Wrong password.')
  response = await adminSignIn(page, adminPassword)
  out.adminHomeStatus = response.status()
  await shot(page, 'admin-accounts')
  await page.type('#q', handle.slice(0, 3))
  await submit(page, 'form[role=search] button')
  out.searchFound = (await page.content()).includes(handle)
  await submit(page, 'table.accounts a')
  await shot(page, 'admin-account')
  const did = await page.$eval('dd code', (e) => e.textContent)
  const adminGet = (method) =>
    fetch(`${base}/xrpc/${method}?did=${encodeURIComponent(did)}`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` },
    }).then((r) => r.json())
  // Take down (the confirmation box ticked), then restore.
  out.confirmRequired = await page.$eval('form input[value=takedown] ~ label input', (e) => e.required)
  await page.click('form input[value=takedown] ~ label input')
  await submit(page, 'form input[value=takedown] ~ button')
  out.takedownDone = (await page.content()).includes('Done.')
  out.takenDown = (await adminGet('com.atproto.admin.getSubjectStatus')).takedown?.applied === true
  await shot(page, 'admin-account-taken-down')
  await submit(page, 'form input[value=restore] ~ button')
  // Deactivate, then reactivate.
  await page.click('form input[value=deactivate] ~ label input')
  await submit(page, 'form input[value=deactivate] ~ button')
  out.deactivated = typeof (await adminGet('com.atproto.admin.getAccountInfo')).deactivatedAt === 'string'
  await submit(page, 'form input[value=activate] ~ button')
  // Password, email and handle.
  await page.type('#new-password', 'browser-password-2')
  await submit(page, 'form input[value=password] ~ button')
  await page.$eval('#new-email', (e) => { e.value = '' })
  await page.type('#new-email', 'webuser-new@example.com')
  await submit(page, 'form input[value=email] ~ button')
  await page.$eval('#new-handle', (e) => { e.value = '' })
  await page.type('#new-handle', 'webuser2.test')
  await submit(page, 'form input[value=handle] ~ button')
  out.renamed = (await page.content()).includes('webuser2.test')
  await page.goto(`${base}/admin/invites`)
  await page.$eval('#count', (e) => { e.value = '2' })
  await submit(page, 'form input[value=create] ~ div ~ button')
  out.inviteRows = await page.$$eval('main table tbody tr', (rows) => rows.length)
  await shot(page, 'admin-invites')
  await submit(page, 'form input[value=disable] ~ button')
  // The moderation queue: approve and feature the first plugin.
  await page.goto(`${base}/admin/hub`)
  await shot(page, 'admin-hub')
  await submit(page, 'button[value=feature]')
  out.hubDone = (await page.content()).includes('Done.')
  // Delete the other account, its handle typed to confirm.
  await page.goto(`${base}/admin?q=another`)
  await submit(page, 'table.accounts a')
  await page.type('#confirm-delete', 'another.test')
  response = await submit(page, 'form input[value=delete] ~ button')
  out.deletedRedirect = new URL(response.url()).pathname
  await page.goto(`${base}/admin/server`)
  out.serverChart = (await page.$$('svg#events-chart rect')).length
  await shot(page, 'admin-server')
  await page.close()

  // The operator, in Simplified Chinese on a phone.
  page = await open('zh-CN,zh;q=0.9', 390)
  await page.goto(`${base}/admin`)
  await shot(page, 'admin-sign-in-zh-phone')
  await adminSignIn(page, adminPassword)
  out.chineseDashboard = (await page.content()).includes('账户')
  await shot(page, 'admin-accounts-zh-phone')
  await page.close()

  // The account's own page.
  page = await open('en', 1100)
  response = await page.goto(`${base}/account`)
  out.accountSignedOutStatus = response.status()
  await shot(page, 'account-sign-in')
  await page.type('#identifier', 'webuser2.test')
  await page.type('#password', 'browser-password-2')
  response = await submit(page, 'main button[type=submit]')
  out.accountStatus = response.status()
  await shot(page, 'account')
  await page.type('#app-name', 'to revoke')
  await submit(page, 'form input[value=create-app-password] ~ button')
  out.revokedAppPassword = await page.$eval('#new-app-password', (e) => e.textContent)
  await page.type('#app-name', 'browser test')
  await submit(page, 'form input[value=create-app-password] ~ button')
  out.appPassword = await page.$eval('#new-app-password', (e) => e.textContent)
  await shot(page, 'account-app-password')
  await submit(page, 'button[aria-label="Revoke to revoke"]')
  // A form whose CSRF field was removed is refused.
  await page.$$eval('form input[name=csrf]', (inputs) => inputs.forEach((i) => i.remove()))
  response = await submit(page, 'form input[value=deactivate] ~ button')
  out.missingCsrfStatus = response.status()
  // An account session is no operator session.
  response = await page.goto(`${base}/admin`)
  out.accountOnAdminStatus = response.status()
  // Deactivate from the page, then change the password (which signs this browser out).
  await page.goto(`${base}/account`)
  await submit(page, 'form input[value=deactivate] ~ p ~ button')
  await page.type('#current-password', 'browser-password-2')
  await page.type('#new-password', 'browser-password-3')
  await submit(page, 'form input[value=change-password] ~ button')
  out.passwordChanged = (await page.content()).includes('Password changed.')
  await page.close()

  // The account page in Simplified Chinese on a phone.
  page = await open('zh-CN', 390)
  await page.goto(`${base}/account`)
  await page.type('#identifier', 'webuser2.test')
  await page.type('#password', 'browser-password-3')
  await submit(page, 'main button[type=submit]')
  out.chineseAccount = (await page.content()).includes('应用专用密码')
  await shot(page, 'account-zh-phone')
  await page.close()
} catch (err) {
  console.error(err)
  console.log(JSON.stringify(out))
  await browser.close()
  process.exit(1)
}
await browser.close()
console.log(JSON.stringify(out))
