#!/usr/bin/env node
// generate.js: builds every query of cases.json with the reference,
// json-sql-builder2 1.0.24 (MySQL dialect), and writes golden.json.
//
// Regenerate (Node >= 18):
//
//   cd sqlbuild/testdata/reference && npm ci && node generate.js
//
// and commit cases.json and golden.json together. The output depends only on
// cases.json and the pinned package (package-lock.json), so running it twice
// gives the same bytes. sqlbuild/reference_test.go runs golden.json on MariaDB
// (seed.sql) and checks the notes of cases.json; it does not need Node.
//
// cases.json: [{"name", "kind": "select"|"insert", "query", "note"?}]
//   query  the JSON query exactly as a client publishes it on fetch/persist.
//   note   what the reference gets wrong, starting with one of:
//            "invalid: "  its SQL fails on MariaDB,
//            "differs: "  its SQL runs but means something other than what
//                         the client plainly wrote,
//            "error: "    the reference throws for this query.
//          The Go test keeps these true: "invalid:" cases must fail on
//          MariaDB and every other case must run; "error:" cases, and only
//          they, have an error in golden.json.
//
// golden.json: [{"name", "sql", "values", "error"}] in the order of cases.json.
//   sql/values  what sql.build(query) returns (values: the bound values,
//               in placeholder order); "" and [] when it throws.
//   error       the exception message, "" when it builds.
//
// The original server's own conventions (issue 4, section 6) sit around the
// reference, not in it, so they are applied to a copy of each query before it
// is built; the query in cases.json stays as the client wrote it:
//   - a top-level $select without $from reads eventsource.event;
//   - $insert takes $into as a synonym of $table, and without either inserts
//     into eventsource.event;
//   - a data value of $insert that is not a string is stored as its JSON text
//     (JSON.stringify); a string is passed as is (it holds the JSON text);
//     null is stored as SQL NULL, as is a document without data.
// Nothing else is changed: in particular the documents of a $documents array
// are not reordered, so the reference's key-order behaviour shows in golden.
//
// json-sql-builder2 locates its helper modules by splitting file paths at the
// first "/sql" (lib/builder.js, _register), which under sqlbuild/ matches
// "/sqlbuild" and breaks loading. So generate.js copies the installed package
// and lodash, unchanged, from node_modules to a temporary directory whose path
// has no "/sql", loads it from there and removes the copy at the end.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const PACKAGE = 'json-sql-builder2';
const VERSION = '1.0.24';
const DEFAULT_TABLE = 'eventsource.event';
const HERE = __dirname;
const NOTE_KINDS = ['invalid: ', 'differs: ', 'error: '];

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// loadReference copies the installed package out of the sqlbuild tree (see
// the header) and returns its SQLBuilder class and a cleanup function.
function loadReference() {
  const installed = path.join(HERE, 'node_modules', PACKAGE);
  const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  if (pkg.version !== VERSION) {
    throw new Error(`node_modules has ${PACKAGE}@${pkg.version}, want ${VERSION}: run npm ci`);
  }
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'jsb2-reference-')));
  if (tmp.includes(path.sep + 'sql')) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`temporary directory ${tmp} contains "${path.sep}sql", which ${PACKAGE} cannot load from; set TMPDIR to another directory`);
  }
  for (const dep of [PACKAGE, 'lodash']) {
    fs.cpSync(path.join(HERE, 'node_modules', dep), path.join(tmp, 'node_modules', dep), { recursive: true });
  }
  const SQLBuilder = require(path.join(tmp, 'node_modules', PACKAGE));
  return { SQLBuilder, tmp, cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }) };
}

// checkKeys refuses object keys that JavaScript would reorder (integer-like
// keys come first in a JS object whatever the JSON order), because the
// reference would then see another order than the client wrote.
function checkKeys(v, where) {
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkKeys(x, `${where}[${i}]`));
  } else if (isPlainObject(v)) {
    for (const k of Object.keys(v)) {
      if (/^(0|[1-9][0-9]*)$/.test(k)) {
        throw new Error(`${where}: key "${k}" is integer-like; JavaScript reorders such keys, so the reference would not see the client's order`);
      }
      checkKeys(v[k], `${where}.${k}`);
    }
  }
}

function jsonText(v) {
  if (v === null) return null; // stored as SQL NULL
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// withServerConventions returns a copy of query with the original server's
// conventions applied (see the header).
function withServerConventions(query) {
  const q = JSON.parse(JSON.stringify(query));
  if (isPlainObject(q.$select) && !('$from' in q.$select)) {
    q.$select.$from = DEFAULT_TABLE;
  }
  if (isPlainObject(q.$insert)) {
    let ins = q.$insert;
    if ('$into' in ins && !('$table' in ins)) {
      const renamed = {};
      for (const [k, v] of Object.entries(ins)) renamed[k === '$into' ? '$table' : k] = v;
      ins = renamed;
    }
    if (!('$table' in ins)) ins = Object.assign({ $table: DEFAULT_TABLE }, ins);
    if ('$documents' in ins) {
      const docs = Array.isArray(ins.$documents) ? ins.$documents : [ins.$documents];
      for (const doc of docs) {
        if (isPlainObject(doc) && 'data' in doc) doc.data = jsonText(doc.data);
      }
    }
    if ('$columns' in ins) {
      const cols = Array.isArray(ins.$columns)
        ? ins.$columns
        : Object.keys(ins.$columns).filter((k) => ins.$columns[k] === true || ins.$columns[k] === 1);
      const i = cols.indexOf('data');
      const rows = [];
      if (Array.isArray(ins.$values)) rows.push(ins.$values);
      if (ins.$records) {
        for (const r of Object.values(ins.$records)) if (isPlainObject(r) && Array.isArray(r.$values)) rows.push(r.$values);
      }
      if (i >= 0) for (const row of rows) if (i < row.length) row[i] = jsonText(row[i]);
    }
    q.$insert = ins;
  }
  return q;
}

function main() {
  const cases = JSON.parse(fs.readFileSync(path.join(HERE, 'cases.json'), 'utf8'));
  if (!Array.isArray(cases)) throw new Error('cases.json: want an array');

  const seen = new Set();
  for (const [i, c] of cases.entries()) {
    const where = `cases.json[${i}] ${c && c.name}`;
    if (!isPlainObject(c) || typeof c.name !== 'string' || c.name === '') throw new Error(`${where}: want an object with a name`);
    if (seen.has(c.name)) throw new Error(`${where}: duplicate name`);
    seen.add(c.name);
    if (c.kind !== 'select' && c.kind !== 'insert') throw new Error(`${where}: kind must be "select" or "insert"`);
    if (!isPlainObject(c.query) || Object.keys(c.query).length !== 1) throw new Error(`${where}: query must be an object with one operator`);
    const isInsert = Object.keys(c.query)[0] === '$insert';
    if (isInsert !== (c.kind === 'insert')) throw new Error(`${where}: kind "${c.kind}" does not match ${Object.keys(c.query)[0]}`);
    if ('note' in c && (typeof c.note !== 'string' || !NOTE_KINDS.some((p) => c.note.startsWith(p)))) {
      throw new Error(`${where}: a note starts with one of ${NOTE_KINDS.map((p) => JSON.stringify(p)).join(', ')}`);
    }
    checkKeys(c.query, `${where}: query`);
  }

  const { SQLBuilder, tmp, cleanup } = loadReference();
  const golden = [];
  const noted = { mismatch: [] };
  try {
    for (const c of cases) {
      // A fresh builder per case: a failed build may leave state behind.
      const sql = new SQLBuilder('MySQL');
      let entry;
      try {
        const r = sql.build(withServerConventions(c.query));
        entry = { name: c.name, sql: r.sql, values: r.values, error: '' };
      } catch (e) {
        const msg = String(e && e.message !== undefined ? e.message : e).split(tmp).join('<json-sql-builder2>');
        entry = { name: c.name, sql: '', values: [], error: msg };
      }
      const hasError = entry.error !== '';
      const errorNote = typeof c.note === 'string' && c.note.startsWith('error: ');
      if (hasError !== errorNote) noted.mismatch.push(`${c.name}: ${hasError ? 'throws "' + entry.error + '" but has no "error:" note' : 'builds but its note says "error:"'}`);
      golden.push(entry);
    }
  } finally {
    cleanup();
  }

  const out = '[\n' + golden.map((g) => [
    '  {',
    `    "name": ${JSON.stringify(g.name)},`,
    `    "sql": ${JSON.stringify(g.sql)},`,
    `    "values": ${JSON.stringify(g.values)},`,
    `    "error": ${JSON.stringify(g.error)}`,
    '  }',
  ].join('\n')).join(',\n') + '\n]\n';
  fs.writeFileSync(path.join(HERE, 'golden.json'), out);

  const errors = golden.filter((g) => g.error !== '').length;
  console.log(`golden.json: ${golden.length} cases (${golden.length - errors} built, ${errors} refused by the reference)`);
  if (noted.mismatch.length > 0) {
    console.error('notes out of date:\n  ' + noted.mismatch.join('\n  '));
    process.exitCode = 1;
  }
}

main();
