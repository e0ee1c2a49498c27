#!/usr/bin/env python3
"""The embedded SQL engine of `tally sql`: DuckDB (pinned in infra/requirements.txt).

Reads one JSON object on standard input, {"setup": SQL, "query": SQL}: runs the setup (the
lake's views, made by tally from the tables' definitions), then the query, and prints one JSON
object: {"columns": [...], "types": [...], "rows": [[...], ...]} (types in Athena's words). A failed query prints {"error": "..."} (one line)
and exits 2. Values that JSON has no type for (timestamps, dates, decimals) are printed as text.
"""
import datetime
import decimal
import json
import sys


def value(v):
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (bytes, bytearray)):
        return v.decode("utf-8", "replace")
    return v


def athena_type(duckdb_type):
    """The name Athena gives a column of this DuckDB type (in GetQueryResults' ColumnInfo)."""
    t = str(duckdb_type).lower()
    names = {"hugeint": "bigint", "ubigint": "bigint", "uinteger": "bigint", "smallint": "smallint",
             "tinyint": "tinyint", "float": "real", "blob": "varbinary"}
    if t.startswith("decimal"):
        return "decimal"
    if t.startswith("timestamp"):
        return "timestamp"
    if t.endswith("[]"):
        return "array"
    return names.get(t, t if t in ("bigint", "integer", "double", "boolean", "date", "varchar") else "varchar")


def main():
    try:
        import duckdb
    except ImportError:
        print(json.dumps({"error": "duckdb is not installed: run `make setup`"}))
        sys.exit(3)
    request = json.load(sys.stdin)
    con = duckdb.connect()
    try:
        con.execute(request["setup"])
    except duckdb.Error as e:
        print(json.dumps({"error": f"the lake's views could not be made: {e}"}))
        sys.exit(3)
    try:
        cur = con.execute(request["query"])
        columns = [d[0] for d in cur.description or []]
        types = [athena_type(d[1]) for d in cur.description or []]
        rows = [[value(v) for v in row] for row in cur.fetchall()]
    except duckdb.Error as e:
        print(json.dumps({"error": " ".join(str(e).split())}))
        sys.exit(2)
    print(json.dumps({"columns": columns, "types": types, "rows": rows}, default=str))


if __name__ == "__main__":
    main()
