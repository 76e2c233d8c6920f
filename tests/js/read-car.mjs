// Reads a CAR file with the official @atproto/repo reader (`readCar`), which is what
// consumers of `com.atproto.sync.getBlocks` use.
//
// Usage: $ROOKERY_NODE tests/js/read-car.mjs FILE.car
// Prints one JSON line {"roots": [CID…], "cids": [CID…]} (blocks in file order) and exits 0,
// or the error and exits 1.
import { readFileSync } from 'node:fs'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [file] = process.argv.slice(2)
if (!file) {
  console.error('usage: read-car.mjs FILE.car')
  process.exit(2)
}
const { readCar } = await load('@atproto/repo')
try {
  const { roots, blocks } = await readCar(new Uint8Array(readFileSync(file)))
  const cids = blocks.cids().map((cid) => cid.toString())
  console.log(JSON.stringify({ roots: roots.map((r) => r.toString()), cids }))
} catch (err) {
  console.error('readCar failed:', err)
  process.exit(1)
}
