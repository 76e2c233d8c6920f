// Verifies repository CARs with the official @atproto/repo consumer (`verifyRepoCar`):
// every block, the MST, every record, the commit signature against the signing did:key.
//
// Usage: $ROOKERY_NODE tests/js/verify-repo-car.mjs FILE.car DID SIGNING_DID_KEY [FILE DID KEY …]
// Prints one JSON line {"rev", "records"} per repository, in the order given, and exits 0;
// or the first refusal, naming its DID, and exits 1. (The DID is checked by verifyRepoCar
// itself: it throws when the commit is for another DID.) Several repositories in one call
// share one Node start.
import { readFileSync } from 'node:fs'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const args = process.argv.slice(2)
if (args.length === 0 || args.length % 3 !== 0) {
  console.error('usage: verify-repo-car.mjs FILE.car DID SIGNING_DID_KEY [FILE DID KEY …]')
  process.exit(2)
}
const { verifyRepoCar } = await load('@atproto/repo')
for (let i = 0; i < args.length; i += 3) {
  const [file, did, key] = args.slice(i, i + 3)
  try {
    const verified = await verifyRepoCar(new Uint8Array(readFileSync(file)), did, key)
    console.log(
      JSON.stringify({
        rev: verified.commit.rev,
        records: verified.creates.length,
      }),
    )
  } catch (err) {
    console.error(`verifyRepoCar failed for ${did}:`, err)
    process.exit(1)
  }
}
