// Resolves DIDs with the official resolver, @atproto/identity, from a PLC directory.
//
// Usage: $ROOKERY_NODE tests/js/resolve-did.mjs PLC_URL DID...
// Prints one JSON line per DID: {"did", "doc", "atproto"} where doc is the DID document
// (null when the directory answers 404) and atproto is resolveAtprotoData's
// {did, signingKey, handle, pds}, or {"did", "error", "status"} when resolution throws.
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [plcUrl, ...dids] = process.argv.slice(2)
if (!plcUrl || dids.length === 0) {
  console.error('usage: resolve-did.mjs PLC_URL DID...')
  process.exit(2)
}
const { IdResolver } = await load('@atproto/identity')
// Loopback URLs: the default fetch refuses them (SSRF protection), so pass the plain one.
const resolver = new IdResolver({ plcUrl, timeout: 10000, fetch: globalThis.fetch })
for (const did of dids) {
  try {
    const doc = await resolver.did.resolve(did, true)
    const atproto = doc ? await resolver.did.resolveAtprotoData(did) : null
    console.log(JSON.stringify({ did, doc, atproto }))
  } catch (err) {
    console.log(JSON.stringify({ did, error: String(err.message), status: err.status ?? null }))
  }
}
