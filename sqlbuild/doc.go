// Package sqlbuild translates json-sql-builder2 queries (MySQL dialect) into
// SQL through goqu, safely: only $select for fetch and $insert for persist,
// only tables and columns of the Catalog, identifiers quoted by goqu, every
// client value a bound parameter (goqu's prepared mode).
//
// This is the subset the server core needs ($select with columns, $where,
// $orderBy, $limit and $offset on one table; $insert of documents), laid out
// so the full syntax extends it: one function per clause, one table of
// operators. A Builder is immutable and safe for concurrent use.
package sqlbuild
