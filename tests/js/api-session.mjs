// A full session with the official TypeScript client, @atproto/api, against a Rookery PDS:
// create an account, log in, post, read the post back, list it, refresh the session, log out.
//
// Usage: $ROOKERY_NODE tests/js/api-session.mjs PDS_URL HANDLE
// Prints one JSON line {"did", "uri", "cid"} and exits 0, or names the failing step, exits 1.
import assert from 'node:assert/strict'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [service, handle] = process.argv.slice(2)
if (!service || !handle) {
  console.error('usage: api-session.mjs PDS_URL HANDLE')
  process.exit(2)
}
const { AtpAgent } = await load('@atproto/api')

let step = 'start'
try {
  const password = 'correct horse battery staple'
  const email = `${handle.replace(/\./g, '-')}@example.com`

  step = 'createAccount'
  const signup = new AtpAgent({ service })
  const created = await signup.createAccount({ handle, email, password })
  assert.equal(created.data.handle, handle)
  assert.match(created.data.did, /^did:plc:[a-z2-7]{24}$/)
  const did = created.data.did

  step = 'login'
  const agent = new AtpAgent({ service })
  await agent.login({ identifier: handle, password })
  assert.equal(agent.session.did, did)
  assert.equal(agent.session.handle, handle)
  // The client now talks to the PDS named in the account's DID document.
  assert.equal(agent.pdsUrl?.origin, new URL(service).origin)

  step = 'post'
  const text = 'Hello from the official atproto client 👋'
  const posted = await agent.post({ text, createdAt: new Date().toISOString() })
  assert.match(posted.uri, new RegExp(`^at://${did}/app\\.bsky\\.feed\\.post/`))

  step = 'getRecord'
  const rkey = posted.uri.split('/').pop()
  const got = await agent.com.atproto.repo.getRecord({
    repo: did,
    collection: 'app.bsky.feed.post',
    rkey,
  })
  assert.equal(got.data.uri, posted.uri)
  assert.equal(got.data.cid, posted.cid)
  assert.equal(got.data.value.text, text)

  step = 'listRecords'
  const listed = await agent.com.atproto.repo.listRecords({
    repo: handle,
    collection: 'app.bsky.feed.post',
  })
  assert.deepEqual(
    listed.data.records.map((r) => r.uri),
    [posted.uri],
  )

  step = 'refreshSession'
  const before = agent.session.refreshJwt
  await agent.sessionManager.refreshSession()
  assert.notEqual(agent.session.refreshJwt, before)
  const session = await agent.com.atproto.server.getSession()
  assert.equal(session.data.did, did)

  step = 'logout'
  const refreshJwt = agent.session.refreshJwt
  await agent.logout()
  assert.equal(agent.hasSession, false)
  // The refresh token of the ended session no longer works.
  const reuse = await fetch(`${service}/xrpc/com.atproto.server.refreshSession`, {
    method: 'POST',
    headers: { authorization: `Bearer ${refreshJwt}` },
  })
  assert.equal(reuse.status, 400)

  console.log(JSON.stringify({ did, uri: posted.uri, cid: posted.cid }))
} catch (err) {
  console.error(`api-session: ${step} failed:`, err)
  process.exit(1)
}
