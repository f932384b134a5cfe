// The local broker's object store: s3rver, plus the conditional writes of S3 that it lacks.
//
// tansu's durable log keeps each partition's offsets in a small object that it updates with
// optimistic concurrency: `If-None-Match: *` to create it, `If-Match: <etag>` to replace it,
// retrying after a 412. s3rver ignores both headers and overwrites, so a restarted tansu that
// has not read a partition yet "creates" its offsets afresh from 0 and writes new records over
// old ones (seen: 514 records acknowledged, 205 readable after one kill -9). This middleware
// answers those two preconditions as S3 does, one write at a time per object. It also answers
// conditional GETs itself (see below), which s3rver leaks a file descriptor on.
//
// Usage: node server.js <directory> <address> <port> <bucket>
'use strict';

const S3rver = require('s3rver');

const [directory, address, port, bucket] = process.argv.slice(2);
if (!directory || !address || !port || !bucket) {
  console.error('usage: node server.js <directory> <address> <port> <bucket>');
  process.exit(2);
}

const server = new S3rver({
  directory,
  address,
  port: Number(port),
  silent: true,
  configureBuckets: [{ name: bucket, configs: [] }],
});

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
  const path = decodeURIComponent(ctx.path.replace(/^\//, ''));
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
  const path = decodeURIComponent(ctx.path.replace(/^\//, ''));
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
