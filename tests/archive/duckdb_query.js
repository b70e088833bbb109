#!/usr/bin/env node
// duckdb_query: runs one SQL statement with DuckDB (npm @duckdb/node-api, an
// engine independent of ingrain) and prints each result row as a JSON array
// of strings (null for SQL NULL), one row per line. The tests use it as the
// oracle for `ingrainctl archive query`.
//
//   node duckdb_query.js MODULE_DIR SQL_FILE
// MODULE_DIR: the node_modules directory holding @duckdb/node-api.
const path = require("path");
const fs = require("fs");

async function main() {
	const [modules, sqlFile] = process.argv.slice(2);
	const { DuckDBInstance } = require(path.join(modules, "@duckdb/node-api"));
	const db = await DuckDBInstance.create(":memory:");
	const con = await db.connect();
	const reader = await con.runAndReadAll(fs.readFileSync(sqlFile, "utf8"));
	for (const row of reader.getRows())
		console.log(JSON.stringify(row.map((v) => (v === null ? null : String(v)))));
}
main().catch((e) => {
	console.error("duckdb_query: " + (e && e.message ? e.message : e));
	process.exit(1);
});
