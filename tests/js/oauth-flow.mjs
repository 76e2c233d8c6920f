// The whole OAuth flow with the official client, @atproto/oauth-client-node, against a
// Rookery PDS: authorize() (PAR with PKCE and DPoP), the sign-in and consent pages submitted
// as a browser would (plain form posts with the CSRF cookie), the callback (code exchange),
// then an Agent on the OAuth session writes, reads and deletes a record with DPoP; the
// session is refreshed and finally signed out (revocation).
//
// Usage: $ROOKERY_NODE tests/js/oauth-flow.mjs PDS_URL PLC_URL HANDLE PASSWORD SCOPE MODE
//   MODE "full":   create/read/delete a post, refresh, sign out
//   MODE "scoped": create a post (allowed), then a like and a profile update (both refused)
// Prints one JSON line (tokens, the DPoP key, outcomes) and exits 0, or names the failing
// step and exits 1.
import assert from 'node:assert/strict'
import { assertNodeVersion, load } from './deps.mjs'
import { REDIRECT, loopbackClient, memoryStore } from './oauth-client.mjs'

assertNodeVersion()
const [pds, plc, handle, password, scope, mode] = process.argv.slice(2)
if (!mode) {
  console.error('usage: oauth-flow.mjs PDS_URL PLC_URL HANDLE PASSWORD SCOPE MODE')
  process.exit(2)
}
const { Agent } = await load('@atproto/api')

const hidden = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`))
  assert.ok(m, `no ${name} field in page`)
  return m[1]
}

let step = 'start'
try {
  const sessionStore = memoryStore()
  const client = await loopbackClient(pds, plc, scope, sessionStore)

  step = 'authorize'
  const url = await client.authorize(handle, { scope, state: 'test-state' })
  assert.equal(url.origin, new URL(pds).origin)
  assert.equal(url.pathname, '/oauth/authorize')

  step = 'sign-in page'
  let res = await fetch(url, { redirect: 'manual' })
  assert.equal(res.status, 200)
  const cookie = res.headers.get('set-cookie').split(';')[0]
  let html = await res.text()
  assert.equal(hidden(html, 'identifier'), handle, 'login_hint prefilled')
  const csrf = hidden(html, 'csrf')
  const requestId = hidden(html, 'request_id')

  step = 'sign-in submit'
  res = await fetch(new URL('/oauth/authorize/sign-in', pds), {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, request_id: requestId, identifier: handle, password }),
    redirect: 'manual',
  })
  html = await res.text()
  assert.equal(res.status, 200, html)
  assert.match(html, /Authorize/)
  const listed = [...html.matchAll(/<li>([^<]*) <code>([^<]*)<\/code><\/li>/g)].map((m) => m[2])
  assert.deepEqual(listed, scope.split(' '))

  step = 'consent submit'
  res = await fetch(new URL('/oauth/authorize/consent', pds), {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      csrf,
      request_id: hidden(html, 'request_id'),
      secret: hidden(html, 'secret'),
      decision: 'approve',
    }),
    redirect: 'manual',
  })
  assert.equal(res.status, 303)
  const callbackUrl = new URL(res.headers.get('location'))
  assert.equal(callbackUrl.origin + callbackUrl.pathname, REDIRECT)

  step = 'callback'
  const { session, state } = await client.callback(callbackUrl.searchParams)
  assert.equal(state, 'test-state')
  const did = session.did
  const agent = new Agent(session)
  const stored = () => structuredClone(sessionStore.map.get(did))
  const first = stored()
  const out = { did, scope: first.tokenSet.scope, first: first.tokenSet, dpopJwk: first.dpopJwk }
  step = 'getSession'
  const own = await agent.com.atproto.server.getSession()
  out.sessionEmail = own.data.email ?? null

  if (mode === 'full') {
    step = 'createRecord'
    const created = await agent.com.atproto.repo.createRecord({
      repo: did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text: 'hello over oauth', createdAt: new Date().toISOString() },
    })
    const rkey = created.data.uri.split('/').pop()
    out.uri = created.data.uri

    step = 'getRecord'
    const got = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
    assert.equal(got.data.value.text, 'hello over oauth')

    step = 'deleteRecord'
    await agent.com.atproto.repo.deleteRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
    const list = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post' })
    assert.equal(list.data.records.length, 0)

    step = 'getServiceAuth'
    const serviceAuth = await agent.com.atproto.server.getServiceAuth({
      aud: 'did:web:api.bsky.app',
      lxm: 'app.bsky.feed.getTimeline',
    })
    assert.ok(serviceAuth.data.token)

    step = 'refresh'
    await session.getTokenInfo(true)
    const second = stored()
    assert.notEqual(second.tokenSet.access_token, first.tokenSet.access_token)
    assert.notEqual(second.tokenSet.refresh_token, first.tokenSet.refresh_token)
    out.second = second.tokenSet
    const after = await agent.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post' })
    assert.equal(after.data.records.length, 0)

    step = 'signOut'
    await session.signOut()
  } else {
    step = 'scoped createRecord (post)'
    const created = await agent.com.atproto.repo.createRecord({
      repo: did,
      collection: 'app.bsky.feed.post',
      record: { $type: 'app.bsky.feed.post', text: 'scoped post', createdAt: new Date().toISOString() },
    })
    out.uri = created.data.uri
    out.refused = {}
    step = 'scoped createRecord (like)'
    try {
      await agent.com.atproto.repo.createRecord({
        repo: did,
        collection: 'app.bsky.feed.like',
        record: {
          $type: 'app.bsky.feed.like',
          subject: { uri: created.data.uri, cid: created.data.cid },
          createdAt: new Date().toISOString(),
        },
      })
      out.refused.like = null
    } catch (err) {
      out.refused.like = { status: err.status, error: err.error }
    }
    step = 'scoped putRecord (profile)'
    try {
      await agent.com.atproto.repo.putRecord({
        repo: did,
        collection: 'app.bsky.actor.profile',
        rkey: 'self',
        record: { $type: 'app.bsky.actor.profile', displayName: 'Scoped' },
      })
      out.refused.profile = null
    } catch (err) {
      out.refused.profile = { status: err.status, error: err.error }
    }
    step = 'scoped getServiceAuth'
    try {
      await agent.com.atproto.server.getServiceAuth({
        aud: 'did:web:api.bsky.app',
        lxm: 'app.bsky.feed.getTimeline',
      })
      out.refused.serviceAuth = null
    } catch (err) {
      out.refused.serviceAuth = { status: err.status, error: err.error }
    }
  }
  console.log(JSON.stringify(out))
} catch (err) {
  console.error(`oauth-flow failed at step "${step}":`, err)
  process.exit(1)
}
