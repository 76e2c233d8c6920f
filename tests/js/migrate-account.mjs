// Account migration between two PDSes with the official TypeScript client, @atproto/api,
// following the documented steps (atproto.com "Account Migration"), checked with the
// official verifying firehose consumer (@atproto/sync) on the new host.
//
// Usage:
//   $ROOKERY_NODE tests/js/migrate-account.mjs seed '{"service","handle","email","password","records","blobs"}'
//     Creates the account on `service`, writes `records` posts (applyWrites, 200 a call),
//     `blobs` images each embedded in one more post, a profile and preferences. Prints one
//     line RESULT={"did", "records", "blobs": [cid…]}.
//   $ROOKERY_NODE tests/js/migrate-account.mjs move '{"old","new","plcUrl","identifier","password","newHandle","email"}'
//     Moves the account from `old` to `new`. Prints NEED_PLC_TOKEN when the old host has mailed
//     its PLC operation token and reads the token from one stdin line. Prints one line
//     RESULT={…} with what it checked (see the end of this file); exits 1 naming the step on
//     any failure.
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [mode, argText] = process.argv.slice(2)
const args = JSON.parse(argText ?? '{}')
const { AtpAgent } = await load('@atproto/api')

let step = 'start'
const fail = (err) => {
  console.error(`migrate-account: ${mode}: step ${step} failed:`, err?.stack ?? err)
  process.exit(1)
}

// Large lines to a pipe are written asynchronously: wait for them before process.exit.
const emit = (line) => new Promise((resolve) => process.stdout.write(`${line}\n`, resolve))

function png(seed, size) {
  const bytes = new Uint8Array(size)
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  for (let i = 8; i < size; i++) bytes[i] = (i * 31 + seed * 101) & 0xff
  return bytes
}

async function seed() {
  const { service, handle, email, password, records, blobs } = args
  const agent = new AtpAgent({ service })
  step = 'createAccount'
  await agent.createAccount({ handle, email, password })
  const did = agent.session.did
  step = 'applyWrites'
  const createdAt = new Date().toISOString()
  for (let start = 0; start < records; start += 200) {
    const writes = []
    for (let i = start; i < Math.min(records, start + 200); i++) {
      writes.push({
        $type: 'com.atproto.repo.applyWrites#create',
        collection: 'app.bsky.feed.post',
        value: { $type: 'app.bsky.feed.post', text: `post ${i}`, createdAt },
      })
    }
    await agent.com.atproto.repo.applyWrites({ repo: did, writes })
  }
  step = 'uploadBlob'
  const cids = []
  for (let b = 0; b < blobs; b++) {
    const { data } = await agent.com.atproto.repo.uploadBlob(png(b, 3000 + b * 1000), {
      encoding: 'image/png',
    })
    cids.push(data.blob.ref.toString())
    await agent.com.atproto.repo.createRecord({
      repo: did,
      collection: 'app.bsky.feed.post',
      record: {
        $type: 'app.bsky.feed.post',
        text: `image ${b}`,
        createdAt,
        embed: {
          $type: 'app.bsky.embed.images',
          images: [{ image: data.blob, alt: `image ${b}` }],
        },
      },
    })
  }
  step = 'profile'
  await agent.com.atproto.repo.putRecord({
    repo: did,
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    record: { $type: 'app.bsky.actor.profile', displayName: 'Mover' },
  })
  step = 'putPreferences'
  await agent.app.bsky.actor.putPreferences({
    preferences: [
      { $type: 'app.bsky.actor.defs#adultContentPref', enabled: false },
      { $type: 'app.bsky.actor.defs#personalDetailsPref', birthDate: '1990-01-01T00:00:00.000Z' },
    ],
  })
  await emit(`RESULT=${JSON.stringify({ did, records: records + blobs + 1, blobs: cids })}`)
}

/** Every record of `did` on `agent`'s host: {uri: cid}. */
async function allRecords(agent, did) {
  const out = {}
  const { data: described } = await agent.com.atproto.repo.describeRepo({ repo: did })
  for (const collection of described.collections) {
    let cursor
    do {
      const { data } = await agent.com.atproto.repo.listRecords({
        repo: did,
        collection,
        limit: 100,
        cursor,
      })
      for (const r of data.records) out[r.uri] = r.cid
      cursor = data.records.length ? data.cursor : undefined
    } while (cursor)
  }
  return out
}

async function move() {
  const { old, plcUrl, identifier, password, newHandle, email } = args
  const oldAgent = new AtpAgent({ service: old })
  const newAgent = new AtpAgent({ service: args.new })
  step = 'login on the old host'
  await oldAgent.login({ identifier, password })
  const did = oldAgent.session.did
  step = 'read the old host'
  const recordsBefore = await allRecords(oldAgent, did)
  const { data: oldPrefs } = await oldAgent.app.bsky.actor.getPreferences()

  // 1. The account on the new host, authorised by a service token from the old one.
  step = 'describeServer (new)'
  const { data: newServer } = await newAgent.com.atproto.server.describeServer()
  step = 'getServiceAuth (old)'
  const { data: serviceAuth } = await oldAgent.com.atproto.server.getServiceAuth({
    aud: newServer.did,
    lxm: 'com.atproto.server.createAccount',
  })
  step = 'createAccount with did (new)'
  await newAgent.com.atproto.server.createAccount(
    { handle: newHandle, email, password, did },
    { headers: { authorization: `Bearer ${serviceAuth.token}` }, encoding: 'application/json' },
  )
  step = 'login on the new host'
  await newAgent.login({ identifier: newHandle, password })
  assert.equal(newAgent.session.did, did)

  // 2. The repository, 3. the blobs, 4. the preferences.
  step = 'getRepo (old) → importRepo (new)'
  const { data: car } = await oldAgent.com.atproto.sync.getRepo({ did })
  await newAgent.com.atproto.repo.importRepo(car, { encoding: 'application/vnd.ipld.car' })
  step = 'listMissingBlobs → getBlob → uploadBlob'
  const movedBytes = {}
  let cursor
  do {
    const { data } = await newAgent.com.atproto.repo.listMissingBlobs({ limit: 100, cursor })
    for (const { cid } of data.blobs) {
      const blob = await oldAgent.com.atproto.sync.getBlob({ did, cid })
      movedBytes[cid] = Buffer.from(blob.data)
      await newAgent.com.atproto.repo.uploadBlob(blob.data, {
        encoding: blob.headers['content-type'] ?? 'application/octet-stream',
      })
    }
    cursor = data.blobs.length ? data.cursor : undefined
  } while (cursor)
  step = 'preferences'
  await newAgent.app.bsky.actor.putPreferences({ preferences: oldPrefs.preferences })
  step = 'checkAccountStatus before activation (new)'
  const { data: statusBefore } = await newAgent.com.atproto.server.checkAccountStatus()

  // 5. The identity: the old host signs a PLC operation the new host recommends.
  step = 'getRecommendedDidCredentials (new)'
  const { data: credentials } = await newAgent.com.atproto.identity.getRecommendedDidCredentials()
  step = 'requestPlcOperationSignature (old)'
  await oldAgent.com.atproto.identity.requestPlcOperationSignature()
  await emit('NEED_PLC_TOKEN')
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const token = (await lines.next()).value?.trim()
  step = 'signPlcOperation (old)'
  const { data: signed } = await oldAgent.com.atproto.identity.signPlcOperation({
    token,
    ...credentials,
  })
  step = 'submitPlcOperation (new)'
  await newAgent.com.atproto.identity.submitPlcOperation({ operation: signed.operation })

  // The verifying firehose consumer on the new host, from the start of its log.
  const { Firehose } = await load('@atproto/sync')
  const { IdResolver } = await load('@atproto/identity')
  const idResolver = new IdResolver({ plcUrl, fetch: globalThis.fetch, timeout: 5000 })
  const seen = []
  const firehoseErrors = []
  const otherErrorDids = new Set()
  let gotAll
  const allSeen = new Promise((resolve) => (gotAll = resolve))
  const wanted = () =>
    seen.some((e) => e.event === 'identity') &&
    seen.some((e) => e.event === 'account' && e.active) &&
    seen.some((e) => e.event === 'sync')
  const firehose = new Firehose({
    service: args.new.replace(/^http/, 'ws'),
    idResolver,
    getCursor: () => 0,
    handleEvent: (evt) => {
      if (evt.did !== did) return
      const out = { event: evt.event, seq: evt.seq }
      if (evt.event === 'account') out.active = evt.active
      seen.push(out)
      if (wanted()) gotAll()
    },
    onError: (err) => {
      // Errors about other accounts are reported apart: an account that moved away from
      // this host leaves commits signed with its old key, which no longer verify.
      const raw = err.event ?? err.value
      const about = raw?.repo ?? raw?.did
      const text = `${err.message}: ${err.cause?.message ?? err.cause ?? ''}`
      if (about && about !== did) otherErrorDids.add(about)
      else firehoseErrors.push(text)
    },
  })
  firehose.start()

  // 6. Activate on the new host, deactivate on the old.
  step = 'activateAccount (new)'
  await newAgent.com.atproto.server.activateAccount()
  step = 'deactivateAccount (old)'
  await oldAgent.com.atproto.server.deactivateAccount({})

  step = 'firehose: #identity, #account and #sync on the new host'
  const timer = setTimeout(() => gotAll('timeout'), 60_000)
  const outcome = await allSeen
  clearTimeout(timer)
  await firehose.destroy()
  assert.notEqual(outcome, 'timeout', `firehose events seen: ${JSON.stringify(seen)}`)

  step = 'checks on the new host'
  const doc = await idResolver.did.resolveAtprotoData(did, true)
  const recordsAfter = await allRecords(newAgent, did)
  const { data: prefsAfter } = await newAgent.app.bsky.actor.getPreferences()
  const blobsServed = []
  for (const [cid, bytes] of Object.entries(movedBytes)) {
    const { data } = await newAgent.com.atproto.sync.getBlob({ did, cid })
    assert.deepEqual(Buffer.from(data), bytes, `blob ${cid} on the new host`)
    blobsServed.push(cid)
  }
  const { data: statusAfter } = await newAgent.com.atproto.server.checkAccountStatus()
  step = 'checks on the old host'
  const { data: oldStatus } = await oldAgent.com.atproto.server.checkAccountStatus()
  const { data: oldRepoStatus } = await oldAgent.com.atproto.sync.getRepoStatus({ did })
  await emit(
    `RESULT=${JSON.stringify({
      did,
      pds: doc.pds,
      handle: doc.handle,
      signingKey: doc.signingKey,
      blobsServed,
      statusBefore,
      statusAfter,
      recordsBefore,
      recordsAfter,
      prefsBefore: oldPrefs.preferences,
      prefsAfter: prefsAfter.preferences,
      oldStatus,
      oldRepoStatus,
      firehose: seen,
      firehoseErrors,
      otherErrorDids: [...otherErrorDids],
    })}`,
  )
}

try {
  if (mode === 'seed') await seed()
  else if (mode === 'move') await move()
  else throw new Error(`unknown mode ${mode}`)
  process.exit(0)
} catch (err) {
  fail(err)
}
