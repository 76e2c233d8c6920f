// Loads the pinned JS packages installed by scripts/test-deps.sh.
//
// The packages live in a cache dir outside the repo, so bare `import 'x'`
// from this directory would not find them (ESM ignores NODE_PATH). Instead we
// resolve each package from the cache's node_modules and import it by path.
//
// Where the packages are: $ROOKERY_JS, else ROOKERY_JS from
// ${ROOKERY_TEST_CACHE:-$HOME/.cache/rookery-test}/env.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const MIN_NODE_MAJOR = 22

export function assertNodeVersion() {
  const major = Number(process.versions.node.split('.')[0])
  if (!(major >= MIN_NODE_MAJOR)) {
    throw new Error(
      `Node >= ${MIN_NODE_MAJOR} required (running ${process.version}); ` +
        'use ROOKERY_NODE from scripts/test-deps.sh',
    )
  }
}

function readEnvFile() {
  const cache =
    process.env.ROOKERY_TEST_CACHE || join(homedir(), '.cache', 'rookery-test')
  const file = join(cache, 'env')
  let text
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new Error(
      `cannot read ${file} (${err.code ?? err.message}); run scripts/test-deps.sh first`,
    )
  }
  const vars = {}
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return vars
}

export function jsDir() {
  const dir = process.env.ROOKERY_JS || readEnvFile().ROOKERY_JS
  if (!dir) throw new Error('ROOKERY_JS is not set and not found in the env file')
  return dir
}

let requireFromCache
function cacheRequire() {
  // A require() anchored in the cache dir resolves <cache>/node_modules/<pkg>.
  requireFromCache ??= createRequire(join(jsDir(), '..', 'package.json'))
  return requireFromCache
}

/** Absolute path of a package entry (or subpath) inside the cache. */
export function resolvePkg(name) {
  return cacheRequire().resolve(name)
}

/** Imports a pinned package by name; works for ESM and CommonJS packages. */
export async function load(name) {
  return import(pathToFileURL(resolvePkg(name)).href)
}

/** Like load(), but unwraps a CommonJS module's exports object. */
export async function loadCjs(name) {
  const mod = await load(name)
  return mod.default ?? mod
}
