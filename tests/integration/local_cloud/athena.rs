//! Athena at the edge, as boto3 (the AWS CLI's library) calls it: a query started, polled and
//! read page by page, its first row the column names; a bad query FAILED with DuckDB's reason.

use crate::support::{boto3_json, shared_cloud};

/// `{"rows": [...every row after the header...], "pages": N, "header": [...], "types": [...],
/// "failed": [state, reason]}` from boto3's paginator.
const BOTO3: &str = r#"
import boto3, json, sys, time
athena = boto3.client("athena", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")

def run(query):
    qid = athena.start_query_execution(QueryString=query, WorkGroup="tally-lake",
        QueryExecutionContext={"Database": "tally"})["QueryExecutionId"]
    for _ in range(600):
        status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return qid, status
        time.sleep(0.1)
    raise SystemExit("query did not finish")

qid, status = run("SELECT i, i * 2 AS doubled FROM range(1500) t(i) ORDER BY i")
assert status["State"] == "SUCCEEDED", status
out = {"rows": [], "pages": 0}
for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
    rows = [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
    if out["pages"] == 0:
        out["header"], rows = rows[0], rows[1:]
        out["types"] = [c["Type"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    out["rows"] += rows
    out["pages"] += 1
_, status = run("SELECT * FROM no_such_table")
out["failed"] = [status["State"], status.get("StateChangeReason", "")]
print(json.dumps(out))
"#;

#[test]
fn boto3_runs_a_query_and_reads_its_answer_page_by_page() {
    let cloud = shared_cloud();
    let got = boto3_json(BOTO3, &[&cloud.edge_url]);
    assert_eq!(got["header"], serde_json::json!(["i", "doubled"]));
    assert_eq!(got["types"], serde_json::json!(["bigint", "bigint"]));
    assert_eq!(got["pages"], 2, "1,501 rows with the header, 1,000 a page");
    let rows = got["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1500);
    assert_eq!(rows[0], serde_json::json!(["0", "0"]));
    assert_eq!(rows[1499], serde_json::json!(["1499", "2998"]));
    assert_eq!(got["failed"][0], "FAILED");
    let reason = got["failed"][1].as_str().unwrap();
    assert!(reason.contains("no_such_table"), "{reason}");
}
