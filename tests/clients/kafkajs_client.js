#!/usr/bin/env node
// Round-trips records through a Kafka-protocol broker with kafkajs.
//
// Usage: node kafkajs_client.js BOOTSTRAP TOPIC_PREFIX [--count N] [--codecs none,gzip,...] [--expect-out FILE]
//
// For each codec (none, gzip, snappy, lz4, zstd) it creates a topic with the kafkajs admin client, produces N
// keyed records with headers and explicit timestamps (binary keys, a null key, empty, null, small and large
// values, duplicate and empty headers) in several sends to explicit partitions, and checks the base offsets the
// broker returns, the high watermarks (admin.fetchTopicOffsets) and an offset lookup by timestamp
// (admin.fetchTopicOffsetsByTimestamp).
//
// Reading back: kafkajs consumes only through consumer groups, which the broker does not implement yet
// (FindCoordinator, JoinGroup, ... are not advertised). So the read-back uses kafkajs's own connection and
// Fetch implementation below the consumer (Cluster -> Broker.fetch, the same call the group consumer makes
// after it has been assigned partitions), which decodes the batches and decompresses them with the codecs
// registered here. Every record must come back byte-exact and in order. With --expect-out, the records are also
// written as JSON lines so that another client (python_clients.py verify, with librdkafka) can read the same
// topics back.
//
// kafkajs ships gzip only; the other codecs are registered from npm packages that need no compiler:
// snappy: kafkajs-snappy (snappyjs), lz4: lz4js (LZ4 frame format, as Kafka uses), zstd: @bokuweb/zstd-wasm.
// Prints one line per codec; exits 1 on any failure.
'use strict'

const fs = require('fs')
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4js = require('lz4js')
const zstd = require('@bokuweb/zstd-wasm')

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']
const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}
const PARTITIONS = 3
const SEND_CHUNK = 50
const TIMEOUT_MS = 30000

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) {
    return Buffer.from(lz4js.compress(encoder.buffer))
  },
  async decompress(buffer) {
    return Buffer.from(lz4js.decompress(buffer))
  },
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    return Buffer.from(zstd.compress(encoder.buffer, 3))
  },
  async decompress(buffer) {
    return Buffer.from(zstd.decompress(buffer))
  },
})

// A small deterministic PRNG (xorshift32) seeded from a string, so runs are reproducible.
function prng(seedText) {
  let s = 2166136261
  for (const c of Buffer.from(seedText)) s = Math.imul(s ^ c, 16777619) >>> 0
  if (s === 0) s = 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s
  }
}

function randomBytes(next, n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = next() & 0xff
  return b
}

function makeRecords(n, seed) {
  const next = prng(seed)
  const baseTs = Date.now() - 60000
  const perPartition = new Array(PARTITIONS).fill(0)
  const records = []
  for (let i = 0; i < n; i++) {
    let key = Buffer.concat([Buffer.from(`key-${i}-`), randomBytes(next, i % 6)])
    if (i % 10 === 3) key = null
    let value
    if (i % 7 === 0) value = Buffer.alloc(0)
    else if (i % 50 === 11) value = null
    else if (i === 42) value = Buffer.concat(new Array(150).fill(randomBytes(next, 1000))) // 150 kB, compressible
    else {
      // Mostly compressible, so that every codec shrinks the batch, with some random bytes.
      const size = [1, 17, 100, 1000, 4000][i % 5]
      const text = Buffer.from(`ferrite ${i} `.repeat(Math.floor(size / 10) + 1))
      value = Buffer.concat([text.subarray(0, size - (size >> 3)), randomBytes(next, size >> 3)])
    }
    const headers =
      i % 5 === 4
        ? []
        : [
            ['i', Buffer.from(String(i))],
            ['bin', randomBytes(next, i % 9)],
            ['empty', Buffer.alloc(0)],
            ['dup', Buffer.from('first')],
            ['dup', Buffer.from('second')],
            ['cl\u00e9-\u00fc', Buffer.from('\u00e9t\u00e9')],
          ]
    const partition = i % PARTITIONS
    records.push({ partition, offset: perPartition[partition]++, key, value, headers, ts: baseTs + 10 * i })
  }
  return records
}

// kafkajs headers are an object; a repeated key takes an array of values, in order.
function toKafkajsHeaders(list) {
  const obj = {}
  for (const [k, v] of list) {
    if (k in obj) obj[k] = [].concat(obj[k], [v])
    else obj[k] = v
  }
  return obj
}

function fromKafkajsHeaders(obj) {
  const list = []
  for (const [k, v] of Object.entries(obj || {})) {
    for (const x of Array.isArray(v) ? v : [v]) list.push([k, x == null ? Buffer.alloc(0) : Buffer.from(x)])
  }
  return list
}

function show(b) {
  if (b == null) return String(b)
  if (Buffer.isBuffer(b) && b.length > 40) return `${b.subarray(0, 40).toString('hex')}...(${b.length} bytes)`
  return Buffer.isBuffer(b) ? `<${b.toString('hex')}>` : JSON.stringify(b)
}

function sameBytes(a, b) {
  if (a == null || b == null) return a == null && b == null
  return Buffer.compare(a, b) === 0
}

function sameHeaders(a, b) {
  return a.length === b.length && a.every(([k, v], j) => k === b[j][0] && sameBytes(v, b[j][1]))
}

class Checker {
  constructor(records) {
    this.records = records
    this.errors = []
  }

  fail(msg) {
    if (this.errors.length < 20) this.errors.push(msg)
  }

  expected(p) {
    return this.records.filter(r => r.partition === p)
  }
}

// The kafkajs Cluster (connections, metadata, API version negotiation) the producer and admin are built on.
function createCluster(kafka) {
  const sym = Object.getOwnPropertySymbols(kafka).find(s => s.toString() === 'Symbol(private:Kafka:createCluster)')
  if (!sym) throw new Error('kafkajs internals changed: no private:Kafka:createCluster')
  return kafka[sym]({ metadataMaxAge: 300000, allowAutoTopicCreation: false })
}

async function fetchAll(cluster, topic, chk) {
  await cluster.addTargetTopic(topic)
  await cluster.refreshMetadata()
  const want = Array.from({ length: PARTITIONS }, (_, p) => chk.expected(p).length)
  const next = new Array(PARTITIONS).fill(0)
  const got = Array.from({ length: PARTITIONS }, () => [])
  const deadline = Date.now() + TIMEOUT_MS
  while (next.some((n, p) => n < want[p]) && Date.now() < deadline) {
    const partitions = [...Array(PARTITIONS).keys()].filter(p => next[p] < want[p])
    const leaders = cluster.findLeaderForPartitions(topic, partitions)
    for (const [nodeId, ps] of Object.entries(leaders)) {
      const broker = await cluster.findBroker({ nodeId })
      const { responses } = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 200,
        minBytes: 1,
        maxBytes: 10 * 1024 * 1024,
        topics: [{ topic, partitions: ps.map(p => ({ partition: p, fetchOffset: String(next[p]), maxBytes: 1048576 })) }],
      })
      for (const { topicName, partitions: parts } of responses) {
        if (topicName !== topic) throw new Error(`Fetch answered for topic ${topicName}`)
        for (const part of parts) {
          if (part.errorCode !== 0) throw new Error(`Fetch partition ${part.partition}: error code ${part.errorCode}`)
          for (const m of part.messages) {
            const offset = Number(m.offset)
            // A reply may start at the beginning of a batch before the fetch offset: skip those records.
            if (offset < next[part.partition]) continue
            got[part.partition].push(m)
            next[part.partition] = offset + 1
          }
        }
      }
    }
  }
  return got
}

async function runCodec(kafka, admin, producer, cluster, topic, codec, chk) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
    timeout: TIMEOUT_MS,
  })
  if (!created) chk.fail(`createTopics(${topic}) answered false (topic already existed)`)

  // Several sends, so each partition holds several batches.
  for (let start = 0; start < chk.records.length; start += SEND_CHUNK) {
    const chunk = chk.records.slice(start, start + SEND_CHUNK)
    const result = await producer.send({
      topic,
      acks: -1,
      timeout: TIMEOUT_MS,
      compression: COMPRESSION[codec],
      messages: chunk.map(r => ({
        partition: r.partition,
        key: r.key,
        value: r.value,
        headers: toKafkajsHeaders(r.headers),
        timestamp: String(r.ts),
      })),
    })
    for (const md of result) {
      const first = chunk.find(r => r.partition === md.partition)
      if (md.errorCode !== 0) chk.fail(`send: partition ${md.partition} error code ${md.errorCode}`)
      if (!first) chk.fail(`send: unexpected partition ${md.partition} in the result`)
      else if (String(md.baseOffset) !== String(first.offset))
        chk.fail(`send: partition ${md.partition} base offset ${md.baseOffset}, expected ${first.offset}`)
    }
    const partitionsSent = new Set(chunk.map(r => r.partition))
    if (result.length !== partitionsSent.size)
      chk.fail(`send: ${result.length} partition results for ${partitionsSent.size} partitions`)
  }

  for (const o of await admin.fetchTopicOffsets(topic)) {
    const want = chk.expected(o.partition).length
    if (Number(o.high) !== want || Number(o.low) !== 0)
      chk.fail(`fetchTopicOffsets: partition ${o.partition} low ${o.low} high ${o.high}, expected 0 and ${want}`)
  }
  // A timestamp 5 ms before a record in the middle, which no record carries: the answer is that record's offset.
  // (Not the first record of a send, so not the first of a batch either.)
  const target = chk.records[Math.min(chk.records.length - 1, Math.floor(chk.records.length / 2) + 7)]
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, target.ts - 5)
  const hit = byTime.find(o => o.partition === target.partition)
  if (!hit || Number(hit.offset) !== target.offset)
    chk.fail(
      `fetchTopicOffsetsByTimestamp(${target.ts - 5}) partition ${target.partition}: ` +
        `${hit && hit.offset}, expected ${target.offset}`
    )

  const got = await fetchAll(cluster, topic, chk)
  for (let p = 0; p < PARTITIONS; p++) {
    const expected = chk.expected(p)
    if (got[p].length !== expected.length)
      chk.fail(`partition ${p}: fetched ${got[p].length} records, expected ${expected.length}`)
    for (let j = 0; j < Math.min(expected.length, got[p].length); j++) {
      const e = expected[j]
      const m = got[p][j]
      const where = `partition ${p} offset ${e.offset}`
      if (Number(m.offset) !== e.offset) chk.fail(`${where}: got offset ${m.offset} (out of order or missing)`)
      if (!sameBytes(m.key, e.key)) chk.fail(`${where}: key ${show(m.key)} != ${show(e.key)}`)
      if (!sameBytes(m.value, e.value)) chk.fail(`${where}: value ${show(m.value)} != ${show(e.value)}`)
      const headers = fromKafkajsHeaders(m.headers)
      if (!sameHeaders(headers, e.headers))
        chk.fail(`${where}: headers ${JSON.stringify(headers)} != ${JSON.stringify(e.headers)}`)
      if (Number(m.timestamp) !== e.ts) chk.fail(`${where}: timestamp ${m.timestamp} != ${e.ts}`)
    }
  }
}

function parseArgs(argv) {
  const args = { count: 200, codecs: CODECS, expectOut: null, positional: [] }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--count') args.count = Number(argv[++i])
    else if (argv[i] === '--codecs') args.codecs = argv[++i].split(',')
    else if (argv[i] === '--expect-out') args.expectOut = argv[++i]
    else args.positional.push(argv[i])
  }
  if (args.positional.length !== 2 || args.codecs.some(c => !CODECS.includes(c))) {
    console.error('usage: kafkajs_client.js BOOTSTRAP TOPIC_PREFIX [--count N] [--codecs none,gzip,...] [--expect-out FILE]')
    process.exit(2)
  }
  return args
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const [bootstrap, prefix] = args.positional
  await zstd.init()
  const version = require('kafkajs/package.json').version
  console.log(`kafkajs: kafkajs ${version}`)
  const kafka = new Kafka({
    clientId: 'ferrite-kafkajs-test',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    requestTimeout: TIMEOUT_MS,
    retry: { retries: 3 },
  })
  const admin = kafka.admin()
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
  const cluster = createCluster(kafka)
  await admin.connect()
  await producer.connect()
  await cluster.connect()
  const expectLines = []
  let failed = 0
  try {
    for (const codec of args.codecs) {
      const topic = `${prefix}-kafkajs-${codec}`
      const chk = new Checker(makeRecords(args.count, topic))
      const start = Date.now()
      try {
        await runCodec(kafka, admin, producer, cluster, topic, codec, chk)
      } catch (e) {
        chk.fail(`exception: ${(e && e.stack) || e}`)
      }
      const took = ((Date.now() - start) / 1000).toFixed(1)
      if (chk.errors.length) {
        failed++
        console.log(`FAIL kafkajs ${codec}: topic ${topic} (${took} s)`)
        for (const e of chk.errors) console.log(`    ${e.replace(/\n/g, '\n    ')}`)
      } else {
        console.log(
          `ok   kafkajs ${codec}: ${chk.records.length} records on ${PARTITIONS} partitions produced, ` +
            'fetched back (kafkajs Fetch, its consumer needs groups) byte-exact and in order, ' +
            `watermarks and time lookup right (${took} s)`
        )
      }
      for (const r of chk.records) {
        expectLines.push(
          JSON.stringify({
            topic,
            partition: r.partition,
            offset: r.offset,
            key: r.key && r.key.toString('base64'),
            value: r.value && r.value.toString('base64'),
            headers: r.headers.map(([k, v]) => [k, v.toString('base64')]),
            ts: r.ts,
          })
        )
      }
    }
  } finally {
    await Promise.allSettled([admin.disconnect(), producer.disconnect(), cluster.disconnect()])
  }
  if (args.expectOut) fs.writeFileSync(args.expectOut, expectLines.join('\n') + '\n')
  console.log(`${failed ? 'FAILED' : 'PASSED'}: ${failed} client/codec combinations failed`)
  return failed ? 1 : 0
}

main().then(
  code => process.exit(code),
  e => {
    console.error(`kafkajs_client.js: ${(e && e.stack) || e}`)
    process.exit(1)
  }
)
