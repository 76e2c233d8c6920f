// End-to-end self-test of the PLC harness with the official libraries.
//
// Usage: $ROOKERY_NODE tests/js/plc-smoke.mjs PLC_URL   (or PLC_URL in the env)
// Prints "plc smoke: ok" and exits 0, or names the failing check and exits 1.
//
// Keys come from @atproto/crypto, operations are built and signed by
// @did-plc/lib, posted to the directory over HTTP, and read back through
// @atproto/identity's DidResolver / IdResolver (which must accept the
// documents plc-server.mjs serves).
import assert from 'node:assert/strict'
import { assertNodeVersion, load, loadCjs } from './deps.mjs'

assertNodeVersion()

const plcUrl = process.argv[2] ?? process.env.PLC_URL
if (!plcUrl) {
  console.error('usage: plc-smoke.mjs PLC_URL')
  process.exit(2)
}

const crypto = await load('@atproto/crypto')
const { DidResolver, IdResolver } = await load('@atproto/identity')
const plc = await loadCjs('@did-plc/lib')

// @atproto/identity's default fetch is SSRF-guarded and refuses
// http://127.0.0.1:<port>; tests against a local directory must inject one.
const resolverOpts = { plcUrl, timeout: 5000, fetch: globalThis.fetch }

let step = 'start'
const check = async (name, fn) => {
  step = name
  await fn()
}

async function post(did, op) {
  const res = await fetch(`${plcUrl}/${encodeURIComponent(did)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(op),
  })
  return { status: res.status, text: await res.text() }
}

async function getJson(path) {
  const res = await fetch(`${plcUrl}${path}`)
  const text = await res.text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, type: res.headers.get('content-type'), body }
}

const CTX_DID = 'https://www.w3.org/ns/did/v1'
const CTX_MULTIKEY = 'https://w3id.org/security/multikey/v1'
const CTX_K256 = 'https://w3id.org/security/suites/secp256k1-2019/v1'
const CTX_P256 = 'https://w3id.org/security/suites/ecdsa-2019/v1'

function expectedDoc({ did, handle, signingKey, pds, suite }) {
  return {
    '@context': [CTX_DID, CTX_MULTIKEY, suite],
    id: did,
    alsoKnownAs: [`at://${handle}`],
    verificationMethod: [
      {
        id: `${did}#atproto`,
        type: 'Multikey',
        controller: did,
        publicKeyMultibase: signingKey.slice('did:key:'.length),
      },
    ],
    service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: pds }],
  }
}

try {
  const rotationKey = await crypto.Secp256k1Keypair.create()
  const signingKey = await crypto.Secp256k1Keypair.create()
  const strangerKey = await crypto.Secp256k1Keypair.create()
  const handle = 'alice.test'
  const pds = 'https://pds.alice.test'

  let did, genesis
  await check('build and sign genesis op', async () => {
    ;({ op: genesis, did } = await plc.createOp({
      signingKey: signingKey.did(),
      handle,
      pds,
      rotationKeys: [rotationKey.did()],
      signer: rotationKey,
    }))
    assert.match(did, /^did:plc:[a-z2-7]{24}$/)
    assert.equal(genesis.type, 'plc_operation')
    assert.equal(genesis.prev, null)
  })

  await check('unknown DID is 404 before registration', async () => {
    const r = await getJson(`/${did}`)
    assert.equal(r.status, 404)
    assert.deepEqual(r.body, { message: `DID not registered: ${did}` })
    assert.equal(await new DidResolver(resolverOpts).resolve(did), null)
  })

  await check('POST genesis op', async () => {
    const r = await post(did, genesis)
    assert.equal(r.status, 200, r.text)
  })

  await check('GET /<did> serves the current DID document format', async () => {
    const r = await getJson(`/${did}`)
    assert.equal(r.status, 200)
    assert.equal(r.type, 'application/did+ld+json; charset=utf-8')
    assert.deepEqual(
      r.body,
      expectedDoc({ did, handle, signingKey: signingKey.did(), pds, suite: CTX_K256 }),
    )
  })

  await check('DidResolver reads handle, signing key and PDS', async () => {
    const resolver = new DidResolver(resolverOpts)
    const data = await resolver.resolveAtprotoData(did)
    assert.deepEqual(data, { did, signingKey: signingKey.did(), handle, pds })
    assert.equal(await resolver.resolveAtprotoKey(did), signingKey.did())
  })

  await check('IdResolver.did verifies a signature with the resolved key', async () => {
    const idr = new IdResolver(resolverOpts)
    const msg = new TextEncoder().encode('rookery plc harness')
    const sig = await signingKey.sign(msg)
    assert.equal(await idr.did.verifySignature(did, msg, sig), true)
    const other = await strangerKey.sign(msg)
    assert.equal(await idr.did.verifySignature(did, msg, other), false)
  })

  await check('pass-through routes answer from the real server', async () => {
    const data = await getJson(`/${did}/data`)
    assert.equal(data.status, 200)
    assert.deepEqual(data.body, {
      did,
      verificationMethods: { atproto: signingKey.did() },
      rotationKeys: [rotationKey.did()],
      alsoKnownAs: [`at://${handle}`],
      services: { atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: pds } },
    })
    const log = await getJson(`/${did}/log`)
    assert.equal(log.status, 200)
    assert.deepEqual(log.body, [genesis])
    const last = await getJson(`/${did}/log/last`)
    assert.deepEqual(last.body, genesis)
    const audit = await getJson(`/${did}/log/audit`)
    assert.equal(audit.body.length, 1)
    assert.equal(audit.body[0].did, did)
    assert.equal(audit.body[0].nullified, false)
    assert.deepEqual(audit.body[0].operation, genesis)
    const health = await getJson('/_health')
    assert.equal(health.status, 200)
    assert.equal(typeof health.body.version, 'string')
  })

  await check('genesis signed by a key outside rotationKeys is rejected', async () => {
    const { sig: _sig, ...unsigned } = (
      await plc.createOp({
        signingKey: signingKey.did(),
        handle: 'mallory.test',
        pds,
        rotationKeys: [rotationKey.did()],
        signer: rotationKey,
      })
    ).op
    const bad = await plc.addSignature(unsigned, strangerKey)
    const badDid = await plc.didForCreateOp(bad)
    const r = await post(badDid, bad)
    assert.equal(r.status, 400, r.text)
    assert.match(JSON.parse(r.text).message, /^Invalid signature on op/)
    assert.equal((await getJson(`/${badDid}`)).status, 404)
  })

  await check('genesis altered after signing is rejected', async () => {
    const tampered = { ...genesis, alsoKnownAs: ['at://mallory.test'] }
    const tamperedDid = await plc.didForCreateOp(tampered)
    const r = await post(tamperedDid, tampered)
    assert.equal(r.status, 400, r.text)
    assert.match(JSON.parse(r.text).message, /^Invalid signature on op/)
  })

  await check('update signed by a non-rotation key is rejected', async () => {
    const bad = await plc.updateHandleOp(genesis, signingKey, 'mallory.test')
    const r = await post(did, bad)
    assert.equal(r.status, 400, r.text)
    assert.match(JSON.parse(r.text).message, /^Invalid signature on op/)
    const data = await new DidResolver(resolverOpts).resolveAtprotoData(did)
    assert.equal(data.handle, handle)
  })

  await check('valid handle update is visible to the resolver', async () => {
    const update = await plc.updateHandleOp(genesis, rotationKey, 'alice2.test')
    const r = await post(did, update)
    assert.equal(r.status, 200, r.text)
    const data = await new DidResolver(resolverOpts).resolveAtprotoData(did)
    assert.deepEqual(data, { did, signingKey: signingKey.did(), handle: 'alice2.test', pds })
  })

  await check('P-256 signing key resolves with the ecdsa-2019 context', async () => {
    const p256 = await crypto.P256Keypair.create()
    const { op, did: pDid } = await plc.createOp({
      signingKey: p256.did(),
      handle: 'bob.test',
      pds,
      rotationKeys: [rotationKey.did()],
      signer: rotationKey,
    })
    assert.equal((await post(pDid, op)).status, 200)
    const r = await getJson(`/${pDid}`)
    assert.deepEqual(
      r.body,
      expectedDoc({ did: pDid, handle: 'bob.test', signingKey: p256.did(), pds, suite: CTX_P256 }),
    )
    const data = await new DidResolver(resolverOpts).resolveAtprotoData(pDid)
    assert.equal(data.signingKey, p256.did())
  })

  await check('tombstoned DID answers 410 like the current directory', async () => {
    const audit = await getJson(`/${did}/log/audit`)
    const prev = audit.body.at(-1).cid
    const tomb = await plc.tombstoneOp(prev, rotationKey)
    const r = await post(did, tomb)
    assert.equal(r.status, 200, r.text)
    const doc = await getJson(`/${did}`)
    assert.equal(doc.status, 410)
    assert.deepEqual(doc.body, { message: `DID not available: ${did}` })
    await assert.rejects(new DidResolver(resolverOpts).resolve(did), (err) => err.status === 410)
    const last = await getJson(`/${did}/log/last`)
    assert.equal(last.body.type, 'plc_tombstone')
  })
} catch (err) {
  console.error(`plc smoke: FAILED at "${step}"`)
  console.error(err)
  process.exit(1)
}

console.log('plc smoke: ok')
