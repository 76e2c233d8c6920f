// A real did:plc directory for tests: the published `@did-plc/server` with its
// in-memory `Database.mock()`, listening on 127.0.0.1 only.
//
// Usage: $ROOKERY_NODE tests/js/plc-server.mjs [PORT] [--ignore-stdin]
//   PORT defaults to 0 (any free port).
//   Prints exactly one line on stdout once it accepts connections:
//     PLC_URL=http://127.0.0.1:<port>
//   Everything else goes to stderr. Exits on SIGTERM/SIGINT and when stdin
//   reaches EOF (so a parent holding a pipe to our stdin cleans us up just by
//   dropping it), unless --ignore-stdin is given.
//
// One route is answered here rather than by the package: GET /<did>.
// The published release (0.0.1) renders DID documents in a legacy key format
// (type EcdsaSecp256k1VerificationKey2019, raw uncompressed key bytes) that
// current @atproto/identity cannot read. We build the document the way the
// current directory does, from the package's own GET /<did>/data answer:
//   - verificationMethod: id "<did>#<name>", type "Multikey",
//     publicKeyMultibase = the did:key without its "did:key:" prefix
//   - @context: did/v1, multikey/v1, then one suite context per key type
//     (secp256k1-2019 for K-256, ecdsa-2019 for P-256), first-seen order
//   - service: id "#<name>", type, serviceEndpoint
//   - 404 {"message":"DID not registered: <did>"} for unknown DIDs,
//     410 {"message":"DID not available: <did>"} for tombstoned DIDs.
// Every other route (POST /<did>, /<did>/data, /<did>/log, /<did>/log/audit,
// /<did>/log/last, /export, /_health) is the package's own handler, unchanged.
import http from 'node:http'
import { assertNodeVersion, load, loadCjs } from './deps.mjs'

assertNodeVersion()

const args = process.argv.slice(2)
const ignoreStdin = args.includes('--ignore-stdin')
const portArg = args.find((a) => !a.startsWith('--')) ?? '0'
const port = Number(portArg)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`plc-server: bad port ${JSON.stringify(portArg)}`)
  process.exit(2)
}

// The package logs through pino to stdout when LOG_ENABLED is set; stdout is
// reserved for the PLC_URL line, so send any logs to stderr.
if (process.env.LOG_ENABLED && !process.env.LOG_DESTINATION) {
  process.env.LOG_DESTINATION = '/dev/stderr'
}

const { PlcServer, Database } = await loadCjs('@did-plc/server')
const crypto = await load('@atproto/crypto')

const DID_CONTEXT = 'https://www.w3.org/ns/did/v1'
const MULTIKEY_CONTEXT = 'https://w3id.org/security/multikey/v1'
const SUITE_CONTEXT = {
  [crypto.SECP256K1_JWT_ALG]: 'https://w3id.org/security/suites/secp256k1-2019/v1',
  [crypto.P256_JWT_ALG]: 'https://w3id.org/security/suites/ecdsa-2019/v1',
}

class HttpError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

/** The current directory's DID document for a /<did>/data answer. */
function formatDidDoc(data) {
  const context = [DID_CONTEXT, MULTIKEY_CONTEXT]
  const verificationMethod = []
  for (const [name, key] of Object.entries(data.verificationMethods ?? {})) {
    let jwtAlg
    try {
      jwtAlg = crypto.parseDidKey(key).jwtAlg
    } catch (err) {
      throw new HttpError(400, `Unsupported key type ${key}: ${err}`)
    }
    const suite = SUITE_CONTEXT[jwtAlg]
    if (!suite) {
      throw new HttpError(400, `Unsupported key type ${key}: Unsupported key type: ${jwtAlg}`)
    }
    if (!context.includes(suite)) context.push(suite)
    verificationMethod.push({
      id: `${data.did}#${name}`,
      type: 'Multikey',
      controller: data.did,
      publicKeyMultibase: key.replace(/^did:key:/, ''),
    })
  }
  const service = Object.entries(data.services ?? {}).map(([name, svc]) => ({
    id: `#${name}`,
    type: svc.type,
    serviceEndpoint: svc.endpoint,
  }))
  return {
    '@context': context,
    id: data.did,
    alsoKnownAs: data.alsoKnownAs,
    verificationMethod,
    service,
  }
}

const plc = PlcServer.create({ db: Database.mock(), port })
const app = plc.app
let baseUrl // set once listening

function send(res, status, contentType, body, head) {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Access-Control-Allow-Origin': '*', // as the package's cors() does
  })
  res.end(head ? undefined : body)
}

async function serveDidDoc(did, res, head) {
  const enc = encodeURIComponent(did)
  const dataRes = await fetch(`${baseUrl}/${enc}/data`)
  const dataText = await dataRes.text()
  if (dataRes.status === 200) {
    let doc
    try {
      doc = formatDidDoc(JSON.parse(dataText))
    } catch (err) {
      if (!(err instanceof HttpError)) throw err
      return send(res, err.status, 'application/json; charset=utf-8', JSON.stringify({ message: err.message }), head)
    }
    return send(res, 200, 'application/did+ld+json; charset=utf-8', JSON.stringify(doc), head)
  }
  if (dataRes.status === 404) {
    // The package answers 404 both for unknown and for tombstoned DIDs;
    // the current directory answers 410 for a tombstone.
    const lastRes = await fetch(`${baseUrl}/${enc}/log/last`)
    const last = lastRes.ok ? await lastRes.json() : null
    if (last?.type === 'plc_tombstone') {
      return send(res, 410, 'application/json; charset=utf-8', JSON.stringify({ message: `DID not available: ${did}` }), head)
    }
  }
  return send(res, dataRes.status, dataRes.headers.get('content-type') ?? 'application/json; charset=utf-8', dataText, head)
}

// Single-segment GET paths that the package routes to something other than /:did.
const OWN_ROUTES = new Set(['_health', 'export'])

function didDocTarget(req) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return null
  const path = new URL(req.url, 'http://x').pathname
  const m = /^\/([^/]+)\/?$/.exec(path)
  if (!m) return null
  let seg
  try {
    seg = decodeURIComponent(m[1])
  } catch {
    return null // let the package answer malformed encodings
  }
  return OWN_ROUTES.has(seg.toLowerCase()) ? null : seg
}

const server = http.createServer((req, res) => {
  const did = didDocTarget(req)
  if (did === null) return app(req, res)
  serveDidDoc(did, res, req.method === 'HEAD').catch((err) => {
    console.error('plc-server: GET /<did> failed:', err)
    if (!res.headersSent) {
      send(res, 500, 'application/json; charset=utf-8', JSON.stringify({ message: 'Internal Server Error' }), false)
    } else {
      res.destroy()
    }
  })
})

let stopping = false
function stop(code) {
  if (stopping) return
  stopping = true
  server.close(() => process.exit(code))
  server.closeAllConnections()
  // Never hang on shutdown.
  setTimeout(() => process.exit(code), 2000).unref()
}
process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))

server.on('error', (err) => {
  console.error(`plc-server: ${err.message}`)
  process.exit(1)
})

server.listen(port, '127.0.0.1', () => {
  const addr = server.address()
  baseUrl = `http://127.0.0.1:${addr.port}`
  process.stdout.write(`PLC_URL=${baseUrl}\n`)
  if (!ignoreStdin) {
    process.stdin.on('end', () => stop(0))
    process.stdin.on('close', () => stop(0))
    process.stdin.on('error', () => stop(0))
    process.stdin.resume()
  }
})
