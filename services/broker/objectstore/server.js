// The local broker's object store: s3rver, plus the conditional writes of S3 that it lacks.
//
// tansu's durable log keeps each partition's offsets in a small object that it updates with
// optimistic concurrency: `If-None-Match: *` to create it, `If-Match: <etag>` to replace it,
// retrying after a 412. s3rver ignores both headers and overwrites, so a restarted tansu that
// has not read a partition yet "creates" its offsets afresh from 0 and writes new records over
// old ones (seen: 514 records acknowledged, 205 readable after one kill -9). This middleware
// answers those two preconditions as S3 does, one write at a time per object. It also answers
// conditional GETs itself, which s3rver leaks a file descriptor on, and listings of one folder
// of objects, which s3rver makes cost three file reads per object listed (see each below).
// And it stores an object only once its whole body has arrived, in one rename, as S3 does:
// s3rver stored the part of a PUT cut off by a kill -9 of tansu (an empty batch, or an empty
// offsets file, that tansu then failed to read on every fetch: consumers stalled for good). A
// PUT in progress is listed all the same, and a GET of it waits for it: tansu writes batches of
// a partition concurrently (two producers), and one it cannot see yet would be skipped.
//
// Usage: node server.js <directory> <address> <port> <bucket>
'use strict';

const S3rver = require('s3rver');

const [directory, address, port, bucket] = process.argv.slice(2);
if (!directory || !address || !port || !bucket) {
  console.error('usage: node server.js <directory> <address> <port> <bucket>');
  process.exit(2);
}

const crypto = require('crypto');
const fs = require('fs');
const nodePath = require('path');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

const server = new S3rver({
  directory,
  address,
  port: Number(port),
  silent: true,
  configureBuckets: [{ name: bucket, configs: [] }],
});

// 'bucket/key' (or 'bucket' alone) of a path-style request, as tansu addresses objects.
function requestPath(ctx) {
  return decodeURIComponent(ctx.path.replace(/^\//, ''));
}

// Per object: the promise of the last conditional write queued for it.
const queues = new Map();

function oneAtATime(key, task) {
  const previous = queues.get(key) || Promise.resolve();
  const current = previous.then(task, task);
  const settled = current.catch(() => undefined);
  queues.set(key, settled);
  settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return current;
}

async function currentEtag(store, bucketName, key) {
  try {
    const metadata = await store.getMetadata(bucketName, key);
    return metadata.etag;
  } catch (error) {
    if (error.code === 'ENOENT') return null;
    throw error;
  }
}

function preconditionFailed(ctx) {
  ctx.status = 412;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
    '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>';
}

// A conditional GET that matches: 304 without opening the object. s3rver opens a read stream
// for it first and never closes it, one file descriptor per request: tansu refreshes each
// partition's offsets this way on every fetch, which took the store past 900 open files in
// two minutes of two cameras.
server.middleware.unshift(async (ctx, next) => {
  const ifNoneMatch = ctx.get('if-none-match');
  if (ctx.method !== 'GET' || !ifNoneMatch) return next();
  const path = requestPath(ctx);
  const slash = path.indexOf('/');
  if (slash < 0 || Object.keys(ctx.query).length) return next(); // a bucket listing, not an object
  const etag = await currentEtag(ctx.store, path.slice(0, slash), path.slice(slash + 1));
  if (etag !== null && (ifNoneMatch === '*' || ifNoneMatch === etag)) {
    ctx.status = 304;
    ctx.set('ETag', etag);
    return;
  }
  return next();
});

server.middleware.unshift(async (ctx, next) => {
  const ifNoneMatch = ctx.get('if-none-match');
  const ifMatch = ctx.get('if-match');
  if (ctx.method !== 'PUT' || (!ifNoneMatch && !ifMatch)) return next();
  // Path-style addressing, as tansu uses: /<bucket>/<key>
  const path = requestPath(ctx);
  const slash = path.indexOf('/');
  if (slash < 0) return next();
  const bucketName = path.slice(0, slash);
  const key = path.slice(slash + 1);
  return oneAtATime(path, async () => {
    const etag = await currentEtag(ctx.store, bucketName, key);
    const exists = etag !== null;
    if (ifNoneMatch === '*' && exists) return preconditionFailed(ctx);
    if (ifMatch && (!exists || (ifMatch !== '*' && ifMatch !== etag))) return preconditionFailed(ctx);
    await next();
  });
});

// A listing of one folder of objects (a partition's batches, which tansu lists on every fetch),
// answered from the folder itself: s3rver walks the bucket and reads three files per object
// listed, so a fetch from a partition of a few hundred batches cost thousands of file
// operations and 8 cameras' frames starved the detector. Here: one readdir, and a stat for
// each object not seen before (its size and time never change: objects are written once).
const OBJECT_SUFFIX = '._S3rver_object';
const METADATA_SUFFIX = '._S3rver_metadata.json';
const seen = new Map(); // object file path -> {size, modified}
const inProgress = new Map(); // 'bucket/key' of a PUT being received -> {size, modified, done}

function escapeXml(text) {
  return text.replace(/[<>&'"]/g, ch => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch]);
}

server.middleware.unshift(async (ctx, next) => {
  const query = ctx.query;
  if (ctx.method !== 'GET' || query['list-type'] !== '2' || query.delimiter || !query.prefix) return next();
  const bucketName = requestPath(ctx);
  const prefix = query.prefix;
  if (!bucketName || bucketName.includes('/') || !prefix.endsWith('/') || process.platform === 'win32') return next();
  const folder = nodePath.join(directory, bucketName, ...prefix.split('/').filter(Boolean));
  let names;
  try {
    names = fs.readdirSync(folder).filter(name => name.endsWith(OBJECT_SUFFIX)).sort();
  } catch (error) {
    if (error.code === 'ENOENT') names = [];
    else return next();
  }
  const after = query['continuation-token'] || query['start-after'] || '';
  const maxKeys = Math.min(Number(query['max-keys'] || 1000), 1000);
  const stored = new Map(names.map(name => [prefix + name.slice(0, -OBJECT_SUFFIX.length), name]));
  const receiving = new Map();
  for (const [path, upload] of inProgress) {
    const key = path.slice(bucketName.length + 1);
    if (path.startsWith(bucketName + '/') && key.startsWith(prefix) && !key.slice(prefix.length).includes('/')) {
      receiving.set(key, upload);
    }
  }
  const keys = [...new Set([...stored.keys(), ...receiving.keys()])].sort();
  const contents = [];
  let truncated = false;
  for (const key of keys) {
    if (key <= after) continue;
    if (contents.length >= maxKeys) {
      truncated = true;
      break;
    }
    const name = stored.get(key);
    const file = name && nodePath.join(folder, name);
    let known = file && seen.get(file);
    if (!known && file) {
      // Its metadata is written last: without it the object's write is under way (listed
      // below if so), or its writer was killed, and it is not an object.
      const metadata = file.slice(0, -OBJECT_SUFFIX.length) + METADATA_SUFFIX;
      try {
        if (fs.existsSync(metadata)) {
          const stat = fs.statSync(file);
          known = { size: stat.size, modified: stat.mtime.toISOString() };
          seen.set(file, known);
        }
      } catch (error) {
        // deleted meanwhile
      }
    }
    if (!known && receiving.has(key)) {
      const upload = receiving.get(key);
      known = { size: upload.size, modified: upload.modified };
    }
    if (known) contents.push({ key, ...known });
  }
  // Forget what is no longer in the folder (deleted batches), so the map stays bounded.
  if (seen.size > 4 * names.length + 10000) seen.clear();
  const last = contents.length ? contents[contents.length - 1].key : '';
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Name>${escapeXml(bucketName)}</Name><Prefix>${escapeXml(prefix)}</Prefix><KeyCount>${contents.length}</KeyCount>` +
    `<MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
    (truncated ? `<NextContinuationToken>${escapeXml(last)}</NextContinuationToken>` : '') +
    contents
      .map(
        item =>
          `<Contents><Key>${escapeXml(item.key)}</Key><LastModified>${item.modified}</LastModified>` +
          `<Size>${item.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      )
      .join('') +
    '</ListBucketResult>';
});

// A PUT of an object is stored only when its whole body arrived (Content-Length bytes), and then
// in one rename, so that no reader ever sees a part of it. S3 does the same; s3rver streamed the
// body into the object's file as it came, and kept what it had when the writer died.
function wholeBody(request, expected) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let received = 0;
    const incomplete = () => new Error(`${received} of the ${expected} bytes of the body arrived`);
    request.on('data', chunk => {
      chunks.push(chunk);
      received += chunk.length;
    });
    request.on('end', () => (received === expected ? resolve(Buffer.concat(chunks, received)) : reject(incomplete())));
    request.on('error', reject);
    request.on('close', () => reject(incomplete())); // after 'end' this changes nothing
  });
}

server.middleware.unshift(async (ctx, next) => {
  const length = ctx.get('content-length');
  const path = requestPath(ctx);
  // Uploads of parts and sub-resources (?uploadId, ?tagging...) and bodies without a length
  // stay s3rver's own.
  if (ctx.method !== 'PUT' || !length || Object.keys(ctx.query).length || path.indexOf('/') < 0) return next();
  let finished;
  const upload = { size: Number(length), modified: new Date().toISOString() };
  upload.done = new Promise(resolve => (finished = resolve));
  inProgress.set(path, upload);
  try {
    try {
      ctx.req = await wholeBody(ctx.req, Number(length)); // s3rver's putObject takes a Buffer as is
    } catch (error) {
      ctx.status = 400;
      ctx.type = 'application/xml';
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>IncompleteBody</Code>' +
        `<Message>${escapeXml(error.message)}</Message></Error>`;
      return;
    }
    return await next();
  } finally {
    if (inProgress.get(path) === upload) inProgress.delete(path);
    finished();
  }
});

// A GET (or HEAD) of an object being received waits until it is stored (or its PUT failed).
server.middleware.unshift(async (ctx, next) => {
  if (ctx.method === 'GET' || ctx.method === 'HEAD') {
    const upload = inProgress.get(requestPath(ctx));
    if (upload && !Object.keys(ctx.query).length) await upload.done;
  }
  return next();
});

let partials = 0;
const streamedPutObject = FilesystemStore.prototype.putObject;
FilesystemStore.prototype.putObject = async function putObject(object) {
  if (!Buffer.isBuffer(object.content)) return streamedPutObject.call(this, object);
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  // Not named ..._S3rver_object: listings never show it; left behind only by a kill -9 here.
  const partial = `${objectPath}.${process.pid}-${partials++}.partial`;
  await fs.promises.mkdir(nodePath.dirname(objectPath), { recursive: true });
  await fs.promises.writeFile(partial, object.content);
  await fs.promises.rename(partial, objectPath);
  const md5 = crypto.createHash('md5').update(object.content).digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: object.content.length, md5 };
};

// A kill -9 of this store mid-write leaves that write's `.partial` file. At start no write is
// in progress (one store owns the directory), so every one found is such a leftover.
function removeLeftoverPartials(root) {
  if (!fs.existsSync(root)) return 0;
  const leftovers = fs.readdirSync(root, { recursive: true }).filter(name => name.endsWith('.partial'));
  for (const name of leftovers) fs.rmSync(nodePath.join(root, name), { force: true });
  return leftovers.length;
}

const removed = removeLeftoverPartials(directory);
if (removed) console.log(`removed ${removed} partial object file(s) a killed store left in ${directory}`);

server.run().then(
  () => console.log(`object store listening on ${address}:${port}, bucket ${bucket}, in ${directory}`),
  error => {
    console.error(`object store failed to start: ${error.message}`);
    process.exit(1);
  },
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close().finally(() => process.exit(0)));
}
