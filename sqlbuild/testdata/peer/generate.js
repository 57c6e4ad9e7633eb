#!/usr/bin/env node
// generate.js: extracts json-sql-builder2 1.0.24's own examples (the
// `examples` every operator and helper module exports) that are MySQL or
// MariaDB selects or inserts, and writes examples.json with the JSON query
// each example builds and the SQL the reference makes of it.
//
// Regenerate (Node >= 18):
//
//   cd sqlbuild/testdata/peer && npm ci && node generate.js
//
// and commit examples.json. The output depends only on the pinned package
// (package-lock.json) and this file, so running it twice gives the same
// bytes. sqlbuild/peer_test.go runs examples.json against seed.sql on
// MariaDB, ours against the reference; it does not need Node.
//
// Which examples: every module under sql/operators and sql/helpers whose
// `supportedBy` names MySQL or MariaDB (dot-files such as
// .joinhelper.js are base classes the package neither registers nor tests,
// so they are left out, as the package's own test runner does). An example
// is a function(sql) returning {test, expectedResults[, supportedBy]},
// nested under type keys (Object, Array/eachItemOf/String, Boolean/true...);
// its name is the module path under sql/ and the key path, joined by "/".
//
// How the query is recovered: test() runs with a builder whose build() and
// $<operator>() methods record a deep copy of their argument (before
// building: the reference mutates the query in preBuild), keeping the
// outermost call, as {"$op": arg}. The recorded query is then built again by
// a fresh new SQLBuilder('MySQL') with build(); the generator fails if that
// SQL or its values differ from what the example's own call returned.
//
// examples.json: [{"name", "kind", "query", "sql", "values", "refused"?}]
//   kind     "select" ($select, $union, $intersect, $except, $with),
//            "insert" ($insert, or a $with whose $query is an $insert),
//            "other" (anything else: $update, $delete, DDL...).
//   query    the recorded JSON query; JavaScript values JSON cannot carry
//            are written as "<function sql.x(...)>", "<symbol sql.X>",
//            "<Date>" (such examples are refused).
//   sql      the reference's SQL ("" when it throws), values its bound
//            values in placeholder order.
//   refused  why the peer test does not run the example, on purpose: see
//            refusal() below. Absent for the examples ours must agree on.
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
const util = require('util');

const PACKAGE = 'json-sql-builder2';
const VERSION = '1.0.24';
const HERE = __dirname;
const SELECT_OPERATORS = ['$select', '$union', '$intersect', '$except', '$with'];
const DIALECTS = ['MySQL', 'MariaDB'];

// Examples whose reference SQL fails on MariaDB 10.11, and what fails. The
// peer test checks that each really fails there, so the list stays true.
const INVALID_ON_MARIADB = {
  'helpers/aggregation/aggregationHelper.js/String/Basic Usage':
    'the template helper writes the placeholder {aggName}(age), a syntax error',
  'helpers/aggregation/aggregationHelper.js/Object/Basic Usage':
    'the template helper writes the placeholder {aggName}(DISTINCT age), a syntax error',
  'helpers/queries/from/from.js/Object/eachItemOf/Array/Basic Usage':
    'FROM my_table_valued_function(?, ?, ?, ?): MariaDB has no table-valued functions (syntax error)',
  'helpers/functions/string/left/left.js/Number/Basic Usage':
    'SELECT LEFT(first_name, ?) without FROM: unknown column first_name',
  'operators/with/with.js/Object/Basic Usage':
    'WITH ... INSERT: MariaDB takes WITH only before a SELECT (INSERT ... WITH ... SELECT), a syntax error',
};
// The recursive CTE examples quote the anchor's number as a column name,
// SELECT `1` AS n without FROM: unknown column '1'.
for (const name of [
  'operators/with/private/cte/cte.js/Object/eachItemOf/Object/Basic Usage',
  'operators/with/private/query/query.js/Object/Basic Usage',
  'operators/with/with.js/Object/Using RECURSIVE',
]) {
  INVALID_ON_MARIADB[name] = "the recursive CTE's anchor SELECT `1` AS n quotes the number 1 as a column name: unknown column '1'";
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}

// loadReference copies the installed package out of the sqlbuild tree (see
// the header) and returns its SQLBuilder class, root and a cleanup function.
function loadReference() {
  const installed = path.join(HERE, 'node_modules', PACKAGE);
  const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  if (pkg.version !== VERSION) {
    throw new Error(`node_modules has ${PACKAGE}@${pkg.version}, want ${VERSION}: run npm ci`);
  }
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'jsb2-peer-')));
  if (tmp.includes(path.sep + 'sql')) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`temporary directory ${tmp} contains "${path.sep}sql", which ${PACKAGE} cannot load from; set TMPDIR to another directory`);
  }
  for (const dep of [PACKAGE, 'lodash']) {
    fs.cpSync(path.join(HERE, 'node_modules', dep), path.join(tmp, 'node_modules', dep), { recursive: true });
  }
  const root = path.join(tmp, 'node_modules', PACKAGE);
  return { SQLBuilder: require(root), root, tmp, cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }) };
}

// moduleFiles lists the .js files under dir, sorted, without dot-files.
function moduleFiles(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (fs.statSync(p).isDirectory()) out.push(...moduleFiles(p));
    else if (name.endsWith('.js')) out.push(p);
  }
  return out;
}

// exampleLeaves walks a module's examples to the example functions.
function exampleLeaves(examples, keys, out) {
  for (const k of Object.keys(examples || {})) {
    const v = examples[k];
    if (typeof v === 'function') out.push({ keys: keys.concat(k), fn: v });
    else if (v && typeof v === 'object') exampleLeaves(v, keys.concat(k), out);
  }
  return out;
}

// copy deep-copies plain objects and arrays and keeps everything else (the
// functions, symbols and dates refusal() looks for) as it is.
function copy(v) {
  if (Array.isArray(v)) return v.map(copy);
  if (isPlainObject(v)) {
    const o = {};
    for (const k of Object.keys(v)) o[k] = copy(v[k]);
    return o;
  }
  return v;
}

// recordingBuilder returns a MySQL builder whose build() and $operator()
// record the outermost query, whose function API (sql.select(...),
// sql.count(...)) tags the functions it returns with their name, and the
// names of its keyword symbols (sql.DISTINCT...).
function recordingBuilder(SQLBuilder) {
  const sql = new SQLBuilder('MySQL');
  const state = { depth: 0, query: undefined };
  const record = (name, op) => {
    const orig = sql[name];
    sql[name] = function (...args) {
      if (state.depth === 0) state.query = op ? { [op]: copy(args[0]) } : copy(args[0]);
      state.depth++;
      try {
        return orig.apply(this, args);
      } finally {
        state.depth--;
      }
    };
  };
  record('build', null);
  const symbols = new Map();
  for (const key of Object.keys(sql._operators).sort()) {
    const op = sql._operators[key];
    if (op.isOperator && typeof sql[key] === 'function') record(key, key);
    const api = key.replace(/^\$/, '');
    if (typeof op.callee === 'function' && typeof sql[api] === 'function') {
      const orig = sql[api];
      sql[api] = function (...args) {
        const fn = orig.apply(this, args);
        Object.defineProperty(fn, 'jsApi', { value: `sql.${api}(...)` });
        return fn;
      };
    }
  }
  for (const key of Object.getOwnPropertyNames(sql)) {
    if (typeof sql[key] === 'symbol') symbols.set(sql[key], `sql.${key}`);
  }
  return { sql, state, symbols };
}

// jsValue finds the first value in query that JSON cannot carry and names it.
function jsValue(v, symbols) {
  if (typeof v === 'function') return `<function ${v.jsApi || v.name || 'anonymous'}>`;
  if (typeof v === 'symbol') return `<symbol ${symbols.get(v) || String(v)}>`;
  if (v instanceof Date) return '<Date>'; // its value is often new Date(): not written, for stable output
  if (v === undefined) return '<undefined>';
  if (Array.isArray(v) || isPlainObject(v)) {
    for (const x of Object.values(v)) {
      const r = jsValue(x, symbols);
      if (r) return r;
    }
    return '';
  }
  if (v !== null && typeof v === 'object') return `<${v.constructor.name}>`;
  return '';
}

// findRaw returns a description of the first raw SQL in query: the "__"
// helper, a "__:" string, or a string condition of $and/$or (which the
// reference inlines as it is).
function findRaw(v, parentKey) {
  if (typeof v === 'string') {
    if (v.startsWith('__:')) return `inline SQL "${v}"`;
    if (parentKey === '$and' || parentKey === '$or') return `a string condition in ${parentKey}, inlined as SQL: "${v}"`;
    return '';
  }
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = findRaw(x, parentKey);
      if (r) return r;
    }
    return '';
  }
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '__') return `the __ helper, inlined as SQL: "${x}"`;
      if (k.startsWith('__:')) return `inline SQL key "${k}"`;
      const r = findRaw(x, k);
      if (r) return r;
    }
  }
  return '';
}

// findKey reports whether query holds key anywhere (as an object key) or a
// string value starting with prefix.
function findKey(v, key, prefix) {
  if (typeof v === 'string') return prefix !== '' && v.startsWith(prefix);
  if (Array.isArray(v)) return v.some((x) => findKey(x, key, prefix));
  if (isPlainObject(v)) return Object.entries(v).some(([k, x]) => k === key || findKey(x, key, prefix));
  return false;
}

function kindOf(query) {
  const op = isPlainObject(query) ? Object.keys(query)[0] : '';
  if (op === '$insert') return 'insert';
  if (op === '$with' && isPlainObject(query.$with) && isPlainObject(query.$with.$query) && '$insert' in query.$with.$query) return 'insert';
  return SELECT_OPERATORS.includes(op) ? 'select' : 'other';
}

// refusal says why the peer test leaves an example out on purpose, or ''.
function refusal(ex, symbols) {
  if (ex.onlyFor) return `written for ${ex.onlyFor} only (the example's own supportedBy)`;
  if (ex.error) return `the reference throws: ${ex.error}`;
  const op = Object.keys(ex.query)[0];
  if (op === '$update' || op === '$delete') return `${op}: the peer test compares selects and inserts only (the server refuses updates and deletes)`;
  if (op.startsWith('$create')) return `${op}: DDL, not a query`;
  const js = jsValue(ex.query, symbols);
  if (js.startsWith('<function')) return `JavaScript function API (${js.slice(10, -1)}), which JSON cannot carry`;
  if (js) return `a JavaScript value JSON cannot carry: ${js}`;
  const raw = findRaw(ex.query, '');
  if (raw) return `raw SQL: ${raw}`;
  if (findKey(ex.query, '', '~~@')) return 'session variables (~~@...)';
  if (findKey(ex.query, '$into', '')) return '$into: SELECT ... INTO writes session variables or server files, not rows';
  if (op === '$insert' && isPlainObject(ex.query.$insert) && '$select' in ex.query.$insert) {
    return '$insert with $select (INSERT ... SELECT): the server takes the rows of an insert from the request ($documents, $values, $records), not from a select';
  }
  if (/\bFULL (OUTER )?JOIN\b/.test(ex.sql)) return 'FULL JOIN: MariaDB has none';
  if (INVALID_ON_MARIADB[ex.name]) return `reference SQL invalid on MariaDB: ${INVALID_ON_MARIADB[ex.name]}`;
  if (kindOf(ex.query) === 'other') return `${op}: not a select or an insert`;
  return '';
}

// message is the first line of an exception, without the query the
// reference repeats in it (examples.json holds it).
function message(e, tmp) {
  const m = String(e && e.message !== undefined ? e.message : e).split('\n')[0];
  return m.split(tmp).join('<json-sql-builder2>').replace(/^Execute Query .*? (the Helper with the Name)/, '$1');
}

// runExample runs one example with a recording builder and builds what it
// recorded again with a fresh builder.
function runExample(SQLBuilder, tmp, name, fn) {
  const { sql, state, symbols } = recordingBuilder(SQLBuilder);
  const ex = { name, query: null, sql: '', values: [], error: '', onlyFor: '' };
  let testCase;
  try {
    testCase = fn(sql);
  } catch (e) {
    ex.error = message(e, tmp);
    return { ex, symbols };
  }
  if (testCase.supportedBy && !DIALECTS.some((d) => testCase.supportedBy[d])) {
    ex.onlyFor = Object.keys(testCase.supportedBy).join(', ');
  }
  let own;
  try {
    own = testCase.test();
  } catch (e) {
    ex.error = message(e, tmp);
  }
  if (state.query === undefined) {
    if (ex.error || ex.onlyFor) return { ex, symbols };
    throw new Error(`${name}: test() built nothing through build() or an operator`);
  }
  ex.query = state.query;
  if (ex.error || jsValue(ex.query, symbols)) return { ex, symbols };
  try {
    const fresh = new SQLBuilder('MySQL').build(copy(ex.query));
    ex.sql = fresh.sql;
    ex.values = fresh.values;
  } catch (e) {
    ex.error = message(e, tmp);
    return { ex, symbols };
  }
  if (!ex.onlyFor && (own.sql !== ex.sql || !util.isDeepStrictEqual(own.values, ex.values))) {
    throw new Error(`${name}: building the recorded query gives ${JSON.stringify([ex.sql, ex.values])}, the example's own call ${JSON.stringify([own.sql, own.values])}`);
  }
  return { ex, symbols };
}

// jsonQuery is query as JSON, JavaScript-only values written as strings.
function jsonQuery(query, symbols) {
  // this[k] is the value before Date.prototype.toJSON turns it into text.
  return JSON.stringify(query, function (k, v) {
    const orig = this[k];
    return Array.isArray(orig) || isPlainObject(orig) ? v : jsValue(orig, symbols) || v;
  });
}

function main() {
  const { SQLBuilder, root, tmp, cleanup } = loadReference();
  const entries = [];
  try {
    const sqlDir = path.join(root, 'sql');
    for (const file of moduleFiles(sqlDir)) {
      const rel = path.relative(sqlDir, file).split(path.sep).join('/');
      if (!rel.startsWith('operators/') && !rel.startsWith('helpers/')) continue;
      const mod = require(file);
      if (!mod.supportedBy || !DIALECTS.some((d) => d in mod.supportedBy)) continue;
      for (const leaf of exampleLeaves(mod.examples, [], [])) {
        const { ex, symbols } = runExample(SQLBuilder, tmp, [rel].concat(leaf.keys).join('/'), leaf.fn);
        const entry = {
          name: ex.name,
          kind: ex.query ? kindOf(ex.query) : 'other',
          query: ex.query === null ? 'null' : jsonQuery(ex.query, symbols),
          sql: ex.sql,
          values: ex.values,
          refused: refusal(ex, symbols),
        };
        entries.push(entry);
      }
    }
  } finally {
    cleanup();
  }

  const seen = new Set();
  for (const e of entries) {
    if (seen.has(e.name)) throw new Error(`duplicate example name ${e.name}`);
    seen.add(e.name);
  }
  for (const name of Object.keys(INVALID_ON_MARIADB)) {
    if (!seen.has(name)) throw new Error(`INVALID_ON_MARIADB names ${name}, which is no example`);
  }

  const out = '[\n' + entries.map((e) => [
    '  {',
    `    "name": ${JSON.stringify(e.name)},`,
    `    "kind": ${JSON.stringify(e.kind)},`,
    `    "query": ${e.query},`,
    `    "sql": ${JSON.stringify(e.sql)},`,
    `    "values": ${JSON.stringify(e.values)}` + (e.refused ? ',' : ''),
  ].concat(e.refused ? [`    "refused": ${JSON.stringify(e.refused)}`] : []).concat(['  }']).join('\n')).join(',\n') + '\n]\n';
  fs.writeFileSync(path.join(HERE, 'examples.json'), out);

  const refused = entries.filter((e) => e.refused);
  const kinds = {};
  for (const e of entries.filter((x) => !x.refused)) kinds[e.kind] = (kinds[e.kind] || 0) + 1;
  console.log(`examples.json: ${entries.length} examples, ${refused.length} refused on purpose, to compare: ${JSON.stringify(kinds)}`);
}

main();
