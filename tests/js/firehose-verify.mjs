// Subscribes to a PDS's firehose with the official consumer (`Firehose` from @atproto/sync),
// which validates every message against the lexicon and authenticates every commit (its
// signature against the DID document's key, the MST proofs of each op), and reports what it
// received.
//
// Usage: $ROOKERY_NODE tests/js/firehose-verify.mjs WS_BASE PLC_URL COUNT
// Subscribes from cursor 0, waits for COUNT events (or 90 s), then prints one JSON line
// {"events": [...], "errors": [...]} and exits 0 (1 on timeout). Each event is
// {event, seq, did} plus `active` (account) or `path` (record ops).
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [service, plcUrl, countText] = process.argv.slice(2)
const count = Number(countText)
if (!service || !plcUrl || !(count > 0)) {
  console.error('usage: firehose-verify.mjs WS_BASE PLC_URL COUNT')
  process.exit(2)
}
const { Firehose } = await load('@atproto/sync')
const { IdResolver } = await load('@atproto/identity')

// Loopback URLs: the default fetch refuses them (SSRF protection), so pass the plain one.
const idResolver = new IdResolver({ plcUrl, fetch: globalThis.fetch, timeout: 2000 })
const events = []
const errors = []
let done
const finished = new Promise((resolve) => (done = resolve))
let cursorGiven = false

const firehose = new Firehose({
  service,
  idResolver,
  // Cursor 0 on the first connection; a reconnection would resume after the last event.
  getCursor: () => {
    if (!cursorGiven) {
      cursorGiven = true
      return 0
    }
    return events.length ? events[events.length - 1].seq : 0
  },
  handleEvent: (evt) => {
    const out = { event: evt.event, seq: evt.seq, did: evt.did }
    if (evt.event === 'account') out.active = evt.active
    if (evt.event === 'create' || evt.event === 'update' || evt.event === 'delete') {
      out.path = `${evt.collection}/${evt.rkey}`
    }
    events.push(out)
    if (events.length >= count) done()
  },
  onError: (err) => {
    errors.push(`${err.message}: ${err.cause?.message ?? err.cause ?? ''}`)
  },
})
firehose.start()
const timer = setTimeout(() => done('timeout'), 90_000)
const outcome = await finished
clearTimeout(timer)
await firehose.destroy()
console.log(JSON.stringify({ events, errors }))
process.exit(outcome === 'timeout' ? 1 : 0)
