// Blobs with the official TypeScript client, @atproto/api: log in, upload an image, post it
// as an image embed, read it back with com.atproto.sync.getBlob and list it.
//
// Usage: $ROOKERY_NODE tests/js/api-blobs.mjs PDS_URL HANDLE PASSWORD
// Prints one JSON line {"did", "uri", "cid", "size"} and exits 0, or names the failing step,
// exits 1.
import assert from 'node:assert/strict'
import { assertNodeVersion, load } from './deps.mjs'

assertNodeVersion()
const [service, handle, password] = process.argv.slice(2)
if (!service || !handle || !password) {
  console.error('usage: api-blobs.mjs PDS_URL HANDLE PASSWORD')
  process.exit(2)
}
const { AtpAgent } = await load('@atproto/api')

let step = 'start'
try {
  step = 'login'
  const agent = new AtpAgent({ service })
  await agent.login({ identifier: handle, password })
  const did = agent.session.did

  step = 'uploadBlob'
  const bytes = new Uint8Array(5000)
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  for (let i = 8; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff
  const uploaded = await agent.uploadBlob(bytes, { encoding: 'image/png' })
  const blob = uploaded.data.blob
  assert.equal(blob.mimeType, 'image/png')
  assert.equal(blob.size, bytes.length)

  step = 'post'
  const posted = await agent.post({
    text: 'a picture',
    createdAt: new Date().toISOString(),
    embed: { $type: 'app.bsky.embed.images', images: [{ image: blob, alt: 'noise' }] },
  })

  step = 'getBlob'
  const cid = blob.ref.toString()
  const got = await agent.com.atproto.sync.getBlob({ did, cid })
  assert.equal(got.headers['content-type'], 'image/png')
  assert.deepEqual(new Uint8Array(got.data), bytes)

  step = 'listBlobs'
  const listed = await agent.com.atproto.sync.listBlobs({ did })
  assert.deepEqual(listed.data.cids, [cid])

  console.log(JSON.stringify({ did, uri: posted.uri, cid, size: blob.size }))
} catch (err) {
  console.error(`api-blobs: step ${step} failed:`, err)
  process.exit(1)
}
