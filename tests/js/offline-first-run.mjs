// The first run of a new user, with the official clients: sign up on a Rookery PDS started
// with no configuration, post, and resolve the new DID through the PDS's embedded PLC
// directory with @atproto/identity. Also checks that the public network is unreachable.
//
// Usage: $ROOKERY_NODE tests/js/offline-first-run.mjs PDS_URL PLC_URL HANDLE
// Prints one JSON line {"did", "uri", "doc", "atproto", "publicDirectory"} and exits 0, or
// names the failing step and exits 1.
import assert from 'node:assert/strict'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [service, plcUrl, handle] = process.argv.slice(2)
if (!service || !plcUrl || !handle) {
  console.error('usage: offline-first-run.mjs PDS_URL PLC_URL HANDLE')
  process.exit(2)
}
const { AtpAgent } = await load('@atproto/api')
const { IdResolver } = await load('@atproto/identity')

let step = 'start'
try {
  step = 'public directory unreachable'
  let publicDirectory
  try {
    const res = await fetch('https://plc.directory/_health', { signal: AbortSignal.timeout(5000) })
    publicDirectory = `reachable (HTTP ${res.status})`
  } catch (err) {
    publicDirectory = `unreachable: ${err.cause?.code ?? err.name}`
  }

  step = 'createAccount'
  const agent = new AtpAgent({ service })
  const password = 'correct horse battery staple'
  const created = await agent.createAccount({
    handle,
    email: `${handle.replace(/\./g, '-')}@example.com`,
    password,
  })
  const did = created.data.did
  assert.match(did, /^did:plc:[a-z2-7]{24}$/)

  step = 'post'
  const posted = await agent.post({ text: 'first post, offline', createdAt: new Date().toISOString() })
  assert.match(posted.uri, new RegExp(`^at://${did}/app\\.bsky\\.feed\\.post/`))

  step = 'getRecord'
  const got = await agent.com.atproto.repo.getRecord({
    repo: did,
    collection: 'app.bsky.feed.post',
    rkey: posted.uri.split('/').pop(),
  })
  assert.equal(got.data.value.text, 'first post, offline')

  step = 'resolve'
  // Loopback URLs: the default fetch refuses them (SSRF protection), so pass the plain one.
  const resolver = new IdResolver({ plcUrl, timeout: 10000, fetch: globalThis.fetch })
  const doc = await resolver.did.resolve(did, true)
  assert.ok(doc, 'the embedded directory does not know the new DID')
  const atproto = await resolver.did.resolveAtprotoData(did)
  console.log(JSON.stringify({ did, uri: posted.uri, doc, atproto, publicDirectory }))
} catch (err) {
  console.error(`offline-first-run: step ${step} failed:`, err)
  process.exit(1)
}
