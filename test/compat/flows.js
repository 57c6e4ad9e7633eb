'use strict'
// Drives a running eventsource server through the example flows of the
// original Node README (@superhero/eventsource), the way a Node service of
// that time did: with the npm `redis` client only, JSON.stringify to publish
// and JSON.parse to read.
//
// Environment:
//   REDIS_URL           redis://127.0.0.1:6379
//   FETCH_CHANNEL       fetch
//   PERSIST_CHANNEL     persist
//   FETCH_NEXT_CHANNEL  fetch-next
//   PID                 the pid to persist and fetch (default: a fresh one);
//                       the fetch flows expect exactly the 4 rows that the
//                       persist flows store under it
//   FLOW_TIMEOUT_MS     time limit of each flow (10000)
//
// Prints "N passed, 0 failed" and exits 0 when every flow passes; otherwise
// prints what failed to stderr and exits 1.

const crypto = require('node:crypto')
const { isDeepStrictEqual, inspect } = require('node:util')
const { createClient } = require('redis')

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const FETCH = process.env.FETCH_CHANNEL || 'fetch'
const PERSIST = process.env.PERSIST_CHANNEL || 'persist'
const FETCH_NEXT = process.env.FETCH_NEXT_CHANNEL || 'fetch-next'
const PID = process.env.PID || `compat-${crypto.randomBytes(6).toString('hex')}`
const FLOW_TIMEOUT_MS = Number(process.env.FLOW_TIMEOUT_MS) || 10000
const QUIET_MS = 300 // how long "no further row" is watched for

const ROW_KEYS = ['timestamp', 'pid', 'domain', 'name', 'data', 'id']
const OK_KEYS = ['fieldCount', 'affectedRows', 'insertId', 'serverStatus', 'warningCount', 'message', 'protocol41', 'changedRows']
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,6}Z$/

const show = (v) => inspect(v, { depth: 6, breakLength: Infinity })

class Timeout extends Error {}

function check (ok, message) {
  if (!ok) throw new Error(message)
}

// withTimeout rejects when promise has not settled within ms.
function withTimeout (promise, ms, what) {
  let timer
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Timeout(`${what}: no result within ${ms} ms`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

let pub, sub

// Inbox queues what arrives on one response channel, parsed.
class Inbox {
  constructor (channel) {
    this.channel = channel
    this.queue = []
    this.waiter = null
  }

  push (raw) {
    let msg
    try {
      msg = { value: JSON.parse(raw) }
    } catch (err) {
      msg = { error: new Error(`message on ${this.channel} is not JSON: ${show(raw)}`) }
    }
    if (this.waiter) {
      const waiter = this.waiter
      this.waiter = null
      waiter(msg)
    } else {
      this.queue.push(msg)
    }
  }

  // next resolves with the next parsed message, or rejects with Timeout when
  // none arrives before deadline (a Date.now() value).
  next (deadline, what) {
    const take = (msg) => {
      if (msg.error) throw msg.error
      return msg.value
    }
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift()).then(take)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null
        reject(new Timeout(`waited in vain for ${what} on ${this.channel}`))
      }, Math.max(0, deadline - Date.now()))
      this.waiter = (msg) => {
        clearTimeout(timer)
        resolve(msg)
      }
    }).then(take)
  }

  // nextIgnoring is next, skipping the string messages in ignore (the
  // client's own messages, which it hears as a subscriber too).
  async nextIgnoring (deadline, what, ignore) {
    for (;;) {
      const value = await this.next(deadline, what)
      if (!(typeof value === 'string' && ignore.includes(value))) return value
    }
  }
}

// open subscribes a fresh response channel and resolves once SUBSCRIBE is
// confirmed, so nothing the server sends can be missed.
async function open (label) {
  const inbox = new Inbox(`${PID}-${label}-${crypto.randomBytes(4).toString('hex')}`)
  await sub.subscribe(inbox.channel, (message) => inbox.push(message))
  return inbox
}

async function close (inbox) {
  try {
    await withTimeout(sub.unsubscribe(inbox.channel), 2000, `unsubscribe ${inbox.channel}`)
  } catch (err) {
    // Best effort: the flow's verdict is already made.
  }
}

const publish = (channel, value) => pub.publish(channel, JSON.stringify(value))

// serverLeft waits until the server has unsubscribed from the response
// channel (both sides unsubscribe once the channel has ended), so that only
// this client's subscription is left.
async function serverLeft (inbox, deadline) {
  const until = Math.min(deadline, Date.now() + 2000)
  for (;;) {
    const count = (await pub.pubSubNumSub(inbox.channel))[inbox.channel]
    if (count <= 1) return
    check(Date.now() < until, `the server is still subscribed to ${inbox.channel} after the channel ended (${count} subscribers)`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// Documents the persist flows stored under PID, in order.
const persisted = []

function checkOK (msg, affected) {
  check(msg !== null && typeof msg === 'object' && !Array.isArray(msg), `expected the OK object, got ${show(msg)}`)
  check(msg.affectedRows === affected, `expected affectedRows: ${affected}, got ${show(msg)}`)
  check(msg.protocol41 === true, `expected protocol41: true, got ${show(msg)}`)
  const missing = OK_KEYS.filter((k) => !(k in msg))
  check(missing.length === 0, `OK object lacks ${missing.join(', ')}: ${show(msg)}`)
}

async function expectEnd (inbox, deadline, ignore = []) {
  const msg = await inbox.nextIgnoring(deadline, '"end"', ignore)
  check(msg === 'end', `expected "end", got ${show(msg)}`)
}

// checkRow checks one row's shape as the original server sent it.
function checkRow (row) {
  check(row !== null && typeof row === 'object' && !Array.isArray(row), `expected a row object, got ${show(row)}`)
  check(isDeepStrictEqual(Object.keys(row), ROW_KEYS), `row keys are [${Object.keys(row)}], want [${ROW_KEYS}]: ${show(row)}`)
  check(typeof row.timestamp === 'string' && TIMESTAMP.test(row.timestamp) && !Number.isNaN(Date.parse(row.timestamp)),
    `timestamp ${show(row.timestamp)} is not an ISO-8601 UTC string like 2020-04-06T11:35:18.414Z`)
  check(row.pid === PID, `row pid ${show(row.pid)}, want ${show(PID)}`)
  check(typeof row.data === 'string', `row data must be JSON text (a string) like the original, got ${show(row.data)}`)
  try {
    JSON.parse(row.data)
  } catch (err) {
    throw new Error(`row data is not JSON text: ${show(row.data)}`)
  }
  check(Number.isSafeInteger(row.id) && row.id > 0, `row id ${show(row.id)} is not a positive integer`)
}

// checkRows checks that rows are exactly the persisted documents.
function checkRows (rows) {
  check(rows.length === persisted.length, `got ${rows.length} rows, want ${persisted.length}: ${show(rows)}`)
  const ids = new Set(rows.map((r) => r.id))
  check(ids.size === rows.length, `row ids repeat: ${show(rows.map((r) => r.id))}`)
  const left = persisted.slice()
  for (const row of rows) {
    const data = JSON.parse(row.data)
    const i = left.findIndex((d) => d.domain === row.domain && d.name === row.name && isDeepStrictEqual(d.data, data))
    check(i >= 0, `row matches no persisted document (or repeats one): ${show(row)}; persisted: ${show(persisted)}`)
    left.splice(i, 1)
  }
}

function fetchRequest (inbox) {
  return { channel: inbox.channel, query: { $select: { $where: { pid: PID } } } }
}

// persistFlow persists documents (one object or an array) and expects the OK
// object for count rows, then "end".
async function persistFlow (label, documents, count, deadline) {
  const inbox = await open(label)
  try {
    await publish(PERSIST, { channel: inbox.channel, query: { $insert: { $documents: documents } } })
    const ok = await inbox.next(deadline, 'the OK object')
    if (ok !== null && typeof ok === 'object') persisted.push(...[].concat(documents))
    checkOK(ok, count)
    await expectEnd(inbox, deadline)
    await serverLeft(inbox, deadline)
  } finally {
    await close(inbox)
  }
}

// fetchFlow fetches PID's rows, acknowledging each with ack, and expects
// exactly the persisted rows, then "end".
async function fetchFlow (label, ack, ignore, deadline) {
  const inbox = await open(label)
  try {
    await publish(FETCH, fetchRequest(inbox))
    const rows = []
    for (;;) {
      const msg = await inbox.nextIgnoring(deadline, rows.length === 0 ? 'a row' : `row ${rows.length + 1} or "end"`, ignore)
      if (msg === 'end') break
      check(typeof msg !== 'string', `server sent ${show(msg)} after ${rows.length} rows`)
      checkRow(msg)
      rows.push(msg)
      check(rows.length <= persisted.length, `more rows than the ${persisted.length} persisted: ${show(rows)}`)
      await ack(inbox)
    }
    checkRows(rows)
    await serverLeft(inbox, deadline)
  } finally {
    await close(inbox)
  }
}

const flows = [
  ['persist one document', async (deadline) => {
    const doc = { pid: PID, domain: 'test-domain', name: 'test-event', data: { foo: 'bar', baz: 'qux' } }
    await persistFlow('persist-one', doc, 1, deadline)
  }],

  ['persist an array of 3 documents', async (deadline) => {
    const docs = [
      { pid: PID, domain: 'test-domain', name: 'test-event', data: { foo: 'bar', baz: 'qux', n: 1 } },
      { pid: PID, domain: 'test-domain', name: 'other-event', data: { list: [1, 2, 3], nested: { a: null, b: true } } },
      { pid: PID, domain: 'other-domain', name: 'test-event', data: { text: 'héllo ✓ 😀', quote: '"\\' } }
    ]
    await persistFlow('persist-three', docs, 3, deadline)
  }],

  ['fetch, acknowledging with "accepted"', async (deadline) => {
    await fetchFlow('fetch-accepted', (inbox) => publish(inbox.channel, 'accepted'), ['accepted'], deadline)
  }],

  ['fetch, acknowledging on fetch-next (legacy)', async (deadline) => {
    await fetchFlow('fetch-legacy', (inbox) => publish(FETCH_NEXT, { channel: inbox.channel }), [], deadline)
  }],

  ['client "end" stops the stream', async (deadline) => {
    const inbox = await open('fetch-end')
    try {
      await publish(FETCH, fetchRequest(inbox))
      const first = await inbox.next(deadline, 'row 1')
      checkRow(first)
      await publish(inbox.channel, 'accepted')
      const second = await inbox.nextIgnoring(deadline, 'row 2', ['accepted'])
      checkRow(second)
      check(second.id !== first.id, `row 2 repeats row 1: ${show(second)}`)
      // Row 2 waits for acceptance; end the stream instead. The "accepted"
      // after it must not revive the stream: with "end" ignored it would
      // bring row 3.
      await publish(inbox.channel, 'end')
      await publish(inbox.channel, 'accepted')
      const quiet = Date.now() + QUIET_MS
      for (;;) {
        let msg
        try {
          msg = await inbox.nextIgnoring(quiet, 'nothing', ['accepted', 'end'])
        } catch (err) {
          if (err instanceof Timeout) break
          throw err
        }
        throw new Error(`after the client's "end" the server sent ${show(msg)}`)
      }
      await serverLeft(inbox, deadline)
    } finally {
      await close(inbox)
    }
  }]
]

async function main () {
  pub = createClient({ url: REDIS_URL, socket: { connectTimeout: 5000, reconnectStrategy: false } })
  sub = pub.duplicate()
  for (const [name, client] of [['publisher', pub], ['subscriber', sub]]) {
    client.on('error', (err) => console.error(`redis ${name} connection: ${err.message}`))
  }
  try {
    await withTimeout(Promise.all([pub.connect(), sub.connect()]), 10000, `connect to ${REDIS_URL}`)
  } catch (err) {
    console.error(`FAIL connect to Redis at ${REDIS_URL}: ${err.message}`)
    console.log('0 passed, 1 failed')
    return 1
  }

  let passed = 0
  let failed = 0
  for (const [name, flow] of flows) {
    const deadline = Date.now() + FLOW_TIMEOUT_MS
    try {
      // The deadline bounds every wait; the outer limit catches a hung command.
      await withTimeout(flow(deadline), FLOW_TIMEOUT_MS + 2000, name)
      passed++
    } catch (err) {
      failed++
      console.error(`FAIL ${name}: ${err.message}`)
    }
  }

  await withTimeout(Promise.allSettled([pub, sub].map((c) => (typeof c.close === 'function' ? c.close() : c.quit()))), 2000, 'close')
    .catch(() => {})
  console.log(`${passed} passed, ${failed} failed`)
  return failed === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`FAIL ${err.stack || err}`)
    process.exit(1)
  }
)
