// The reference PDS (npm @atproto/pds, installed by scripts/refpds-deps.sh) as a test peer,
// configured from the environment with its own PDS_* variables, listening on 127.0.0.1 only.
//
// Usage: $ROOKERY_NODE tests/refpds/serve.mjs   (PDS_PORT and the other PDS_* set by the caller)
//   Prints exactly one line on stdout once it accepts connections:
//     REFPDS_URL=http://127.0.0.1:<port>
//   Logs go to stderr. Exits when stdin reaches EOF, so a parent holding a pipe to our stdin
//   cleans us up just by dropping it, and on SIGTERM/SIGINT.
import { once } from 'node:events'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const major = Number(process.versions.node.split('.')[0])
if (!(major >= 22)) throw new Error(`Node >= 22 required, running ${process.version}`)

const cache = process.env.ROOKERY_TEST_CACHE || join(homedir(), '.cache', 'rookery-test')
const modules = process.env.ROOKERY_REFPDS || join(cache, 'refpds', 'node_modules')
const pdsModule = await import(pathToFileURL(join(modules, '@atproto/pds/dist/index.js')).href)
const { PDS, envToCfg, envToSecrets, readEnv } = pdsModule

const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
// What PDS.start() does, but bound to loopback (start() listens on every interface).
await pds.ctx.sequencer.start()
const server = pds.app.listen(env.port, '127.0.0.1')
pds.server = server
await once(server, 'listening')
process.stdout.write(`REFPDS_URL=http://127.0.0.1:${server.address().port}\n`)

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  server.closeAllConnections?.()
  server.close()
  try {
    await pds.ctx.destroy()
  } finally {
    process.exit(0)
  }
}
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
