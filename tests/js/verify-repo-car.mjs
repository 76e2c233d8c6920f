// Verifies a repository CAR with the official @atproto/repo consumer (`verifyRepoCar`):
// every block, the MST, every record, the commit signature against the signing did:key.
//
// Usage: $ROOKERY_NODE tests/js/verify-repo-car.mjs FILE.car DID SIGNING_DID_KEY
// Prints one JSON line {"rev", "records"} and exits 0, or the error and exits 1. (The DID is
// checked by verifyRepoCar itself: it throws when the commit is for another DID.)
import { readFileSync } from 'node:fs'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [file, did, key] = process.argv.slice(2)
if (!file || !did || !key) {
  console.error('usage: verify-repo-car.mjs FILE.car DID SIGNING_DID_KEY')
  process.exit(2)
}
const { verifyRepoCar } = await load('@atproto/repo')
try {
  const verified = await verifyRepoCar(new Uint8Array(readFileSync(file)), did, key)
  console.log(
    JSON.stringify({
      rev: verified.commit.rev,
      records: verified.creates.length,
    }),
  )
} catch (err) {
  console.error('verifyRepoCar failed:', err)
  process.exit(1)
}
