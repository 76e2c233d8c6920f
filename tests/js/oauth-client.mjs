// The official OAuth client (@atproto/oauth-client-node) as a loopback development client of
// a PDS on loopback, with in-memory state and session stores; shared by oauth-flow.mjs and
// oauth-browser.mjs.
import { load } from './deps.mjs'

/** A store of the shape the client wants; `map` exposes what it holds. */
export function memoryStore() {
  const map = new Map()
  return {
    map,
    async get(key) {
      return map.get(key)
    },
    async set(key, value) {
      map.set(key, value)
    },
    async del(key) {
      map.delete(key)
    },
  }
}

/** The redirect URI of the loopback client: nothing listens there. */
export const REDIRECT = 'http://127.0.0.1/callback'

/** A client for `scope` against the PDS `pds` and the PLC directory `plc`. */
export async function loopbackClient(pds, plc, scope, sessionStore = memoryStore()) {
  const { NodeOAuthClient } = await load('@atproto/oauth-client-node')
  const clientId =
    `http://localhost?redirect_uri=${encodeURIComponent(REDIRECT)}` +
    `&scope=${encodeURIComponent(scope)}`
  return new NodeOAuthClient({
    clientMetadata: {
      client_id: clientId,
      redirect_uris: [REDIRECT],
      scope,
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      dpop_bound_access_tokens: true,
    },
    stateStore: memoryStore(),
    sessionStore,
    handleResolver: pds,
    plcDirectoryUrl: plc,
    allowHttp: true,
  })
}
