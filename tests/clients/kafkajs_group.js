#!/usr/bin/env node
// Consumer groups through kafkajs against a Kafka-protocol broker.
//
// Usage: node kafkajs_group.js BOOTSTRAP TOPIC GROUP
//
// Creates TOPIC (4 partitions) and starts two kafkajs consumers of GROUP (fromBeginning, autoCommit off: each
// message's offset is committed with commitOffsets as it is processed), and waits until their assignments (from
// the GROUP_JOIN events) are disjoint and cover the topic. Then it produces 200 records (record i to partition
// i % 4, so at offset i // 4) and checks that together the consumers read every record exactly once, each only
// from partitions it owns, with no rebalance on the way, and that the group's committed offsets
// (admin.fetchOffsets) reach the log end offsets. While both are up, admin.describeGroups must show the group
// Stable with both members and the assignments they hold, and admin.listGroups must list it. Both leave; 100
// more records are produced and a third consumer of the group must read exactly those (it starts at the committed
// offsets), after which the committed offsets equal the log end offsets (admin.fetchTopicOffsets) and the group
// is Empty. Prints one line; exits 1 on any failure.
'use strict'

const { Kafka, AssignerProtocol, Partitioners, logLevel } = require('kafkajs')

const PARTITIONS = 4
const FIRST = 200
const SECOND = 100
const TIMEOUT_MS = 60000
const POLL_MS = 200

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const valueOf = i => `rec-${i}`
const indexOf = value => Number(String(value).split('-')[1])

class Failures {
  constructor() {
    this.errors = []
  }

  fail(msg) {
    if (this.errors.length < 30) this.errors.push(msg)
  }

  check(ok, msg) {
    if (!ok) this.fail(msg)
    return ok
  }
}

const sameSet = (a, b) => a.size === b.size && [...a].every(x => b.has(x))
const show = set => `{${[...set].sort((x, y) => x - y).join(',')}}`

// Calls probe() until it resolves to null (done); fails with its last complaint after `timeout`.
async function waitFor(what, f, probe, timeout = TIMEOUT_MS) {
  const deadline = Date.now() + timeout
  for (;;) {
    let complaint
    try {
      complaint = await probe()
    } catch (e) {
      complaint = `${e && e.name}: ${e && e.message}`
    }
    if (complaint === null) return true
    if (Date.now() > deadline) {
      f.fail(`${what}: not within ${timeout / 1000} s: ${complaint}`)
      return false
    }
    await sleep(POLL_MS)
  }
}

function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    requestTimeout: 30000,
    retry: { retries: 5 },
  })
}

// A group member: its latest assignment (from GROUP_JOIN), the assignments it has had, what it read, and errors.
async function startMember(bootstrap, topic, group, name) {
  const m = { name, clientId: `${group}-${name}`, assignment: new Set(), history: [], records: [], errors: [] }
  m.consumer = client(bootstrap, m.clientId).consumer({
    groupId: group,
    sessionTimeout: 10000,
    rebalanceTimeout: 20000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 500,
  })
  const { GROUP_JOIN, CRASH } = m.consumer.events
  m.consumer.on(GROUP_JOIN, e => {
    m.assignment = new Set(e.payload.memberAssignment[topic] || [])
    m.history.push(show(m.assignment))
  })
  m.consumer.on(CRASH, e => m.errors.push(`crash: ${e.payload.error && e.payload.error.stack}`))
  await m.consumer.connect()
  await m.consumer.subscribe({ topics: [topic], fromBeginning: true })
  await m.consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      m.records.push([partition, Number(message.offset), message.value.toString()])
      try {
        await m.consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }])
      } catch (e) {
        m.errors.push(`commitOffsets: ${e.name}: ${e.message}`)
      }
    },
  })
  return m
}

function memberProblems(members) {
  for (const m of members) if (m.errors.length) return `${m.name}: ${m.errors.join('; ')}`
  return null
}

function disjointCover(sets) {
  const seen = new Set()
  for (const [i, s] of sets.entries()) {
    if (s.size === 0) return `consumer ${i} owns nothing: ${sets.map(show)}`
    for (const p of s) {
      if (seen.has(p)) return `partition ${p} owned twice: ${sets.map(show)}`
      seen.add(p)
    }
  }
  return seen.size === PARTITIONS ? null : `${sets.map(show)} do not cover 0..${PARTITIONS - 1}`
}

async function produce(producer, topic, from, to, f) {
  const messages = []
  for (let i = from; i < to; i++) messages.push({ partition: i % PARTITIONS, key: `k${i}`, value: valueOf(i) })
  const result = await producer.send({ topic, acks: -1, timeout: 30000, messages })
  for (const r of result) {
    f.check(
      r.errorCode === 0 && Number(r.baseOffset) === from / PARTITIONS,
      `send: partition ${r.partition} error ${r.errorCode} base offset ${r.baseOffset}, want ${from / PARTITIONS}`
    )
  }
  f.check(result.length === PARTITIONS, `send answered for ${result.length} partitions`)
}

// got holds exactly the records from..to-1, each once, each at partition i % 4 offset i // 4.
function checkRecords(label, got, from, to, f) {
  const seen = new Map()
  for (const [p, o, v] of got) {
    const i = indexOf(v)
    seen.set(i, (seen.get(i) || 0) + 1)
    f.check(p === i % PARTITIONS && o === Math.floor(i / PARTITIONS), `${label}: record ${i} read at ${p}/${o}`)
  }
  const dups = [...seen].filter(([, n]) => n > 1).map(([i]) => i)
  f.check(dups.length === 0, `${label}: records read more than once: ${dups.slice(0, 20)}`)
  const missing = []
  for (let i = from; i < to; i++) if (!seen.has(i)) missing.push(i)
  f.check(missing.length === 0, `${label}: ${missing.length} records never read, e.g. ${missing.slice(0, 20)}`)
  const extra = [...seen.keys()].filter(i => i < from || i >= to)
  f.check(extra.length === 0, `${label}: records not expected here: ${extra.slice(0, 20)}`)
}

async function committed(admin, group, topic) {
  const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const out = {}
  for (const { partition, offset } of t.partitions) out[partition] = Number(offset)
  return out
}

function everywhere(offset) {
  const out = {}
  for (let p = 0; p < PARTITIONS; p++) out[p] = offset
  return out
}

async function waitCommitted(what, admin, group, topic, want, members, f) {
  await waitFor(what, f, async () => {
    const got = await committed(admin, group, topic)
    return memberProblems(members) || (JSON.stringify(got) === JSON.stringify(want) ? null : `committed ${JSON.stringify(got)}`)
  })
}

async function describe(admin, group, topic) {
  const { groups } = await admin.describeGroups([group])
  const g = groups.find(x => x.groupId === group)
  if (!g) return 'not described'
  const members = {}
  for (const m of g.members) {
    const a = m.memberAssignment && m.memberAssignment.length ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null
    members[m.clientId] = show(new Set((a && a.assignment[topic]) || []))
  }
  return JSON.stringify({ errorCode: g.errorCode, state: g.state, protocolType: g.protocolType, members })
}

async function firstRound(bootstrap, admin, producer, topic, group, f) {
  const members = [await startMember(bootstrap, topic, group, 'a'), await startMember(bootstrap, topic, group, 'b')]
  try {
    const split = await waitFor('two consumers sharing the topic', f, async () =>
      memberProblems(members) || disjointCover(members.map(m => m.assignment)), 2 * TIMEOUT_MS)
    if (!split) return
    const atSplit = members.map(m => m.history.length)
    console.log(`     assignments ${members.map(m => `${m.clientId}: ${show(m.assignment)}`).join(', ')}`)
    await produce(producer, topic, 0, FIRST, f)
    await waitFor('reading the first records', f, async () => {
      const total = members.reduce((n, m) => n + m.records.length, 0)
      return memberProblems(members) || (total >= FIRST ? null : `${total} of ${FIRST} records read`)
    })
    let everyone = []
    for (const [j, m] of members.entries()) {
      f.check(m.history.length === atSplit[j], `${m.name}: its assignment changed after the group settled: ${m.history}`)
      f.check(m.records.length > 0, `${m.name} read nothing`)
      const outside = [...new Set(m.records.map(([p]) => p))].filter(p => !m.assignment.has(p))
      f.check(outside.length === 0, `${m.name} read partitions ${outside} it does not own (${show(m.assignment)})`)
      everyone = everyone.concat(m.records)
    }
    checkRecords('the two consumers', everyone, 0, FIRST, f)
    await waitCommitted('committed offsets at the end of the first records', admin, group, topic,
      everywhere(FIRST / PARTITIONS), members, f)
    const want = {}
    for (const m of members) want[m.clientId] = show(m.assignment)
    const wanted = JSON.stringify({ errorCode: 0, state: 'Stable', protocolType: 'consumer', members: want })
    await waitFor('describeGroups while both are up', f, async () => {
      const got = await describe(admin, group, topic)
      return got === wanted ? null : `described as ${got}, want ${wanted}`
    })
    const { groups } = await admin.listGroups()
    const mine = groups.filter(g => g.groupId === group)
    f.check(mine.length === 1 && mine[0].protocolType === 'consumer', `listGroups: ${JSON.stringify(mine)}`)
  } finally {
    for (const m of members) await m.consumer.disconnect()
  }
  for (const m of members) f.check(m.errors.length === 0, `${m.name}: ${m.errors.join('; ')}`)
}

async function secondRound(bootstrap, admin, producer, topic, group, f) {
  await produce(producer, topic, FIRST, FIRST + SECOND, f)
  const later = await startMember(bootstrap, topic, group, 'c')
  const end = everywhere((FIRST + SECOND) / PARTITIONS)
  try {
    await waitFor('the later consumer reading the new records', f, async () =>
      memberProblems([later]) || (later.records.length >= SECOND ? null : `${later.records.length} of ${SECOND} records read`),
      2 * TIMEOUT_MS)
    checkRecords('the later consumer (it starts at the committed offsets)', later.records, FIRST, FIRST + SECOND, f)
    await waitCommitted('committed offsets at the log end', admin, group, topic, end, [later], f)
  } finally {
    await later.consumer.disconnect()
  }
  f.check(later.errors.length === 0, `${later.name}: ${later.errors.join('; ')}`)
  const high = {}
  for (const o of await admin.fetchTopicOffsets(topic)) high[o.partition] = Number(o.high)
  f.check(JSON.stringify(high) === JSON.stringify(end), `log end offsets ${JSON.stringify(high)}, want ${JSON.stringify(end)}`)
  const got = await committed(admin, group, topic)
  f.check(JSON.stringify(got) === JSON.stringify(high), `committed ${JSON.stringify(got)} != log end offsets`)
  const wanted = JSON.stringify({ errorCode: 0, state: 'Empty', protocolType: 'consumer', members: {} })
  await waitFor('describeGroups after every member left', f, async () => {
    const desc = await describe(admin, group, topic)
    return desc === wanted ? null : `described as ${desc}, want ${wanted}`
  })
}

async function main() {
  const args = process.argv.slice(2)
  if (args.length !== 3) {
    console.error('usage: kafkajs_group.js BOOTSTRAP TOPIC GROUP')
    process.exit(2)
  }
  const [bootstrap, topic, group] = args
  const version = require('kafkajs/package.json').version
  console.log(`kafkajs: kafkajs ${version}`)
  const kafka = client(bootstrap, `${group}-admin`)
  const admin = kafka.admin()
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
  const f = new Failures()
  const start = Date.now()
  await admin.connect()
  await producer.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 30000,
    })
    f.check(created, `createTopics(${topic}) answered false`)
    await firstRound(bootstrap, admin, producer, topic, group, f)
    await secondRound(bootstrap, admin, producer, topic, group, f)
  } catch (e) {
    f.fail(`exception: ${(e && e.stack) || e}`)
  } finally {
    await Promise.allSettled([admin.disconnect(), producer.disconnect()])
  }
  const took = ((Date.now() - start) / 1000).toFixed(1)
  if (f.errors.length) {
    console.log(`FAIL kafkajs share (${took} s)`)
    for (const e of f.errors) console.log(`    ${e.replace(/\n/g, '\n    ')}`)
    return 1
  }
  console.log(`ok   kafkajs share (${took} s)`)
  return 0
}

main().then(
  code => process.exit(code),
  e => {
    console.error(`kafkajs_group.js: ${(e && e.stack) || e}`)
    process.exit(1)
  }
)
