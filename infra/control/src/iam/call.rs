//! An AWS API request as the IAM calls it makes: which action on which resource, with which
//! condition keys. One request can be several calls (a `BatchGetItem` over two tables, a copy
//! that reads one object and writes another).

use std::collections::BTreeMap;

use serde_json::Value as Json;
use tally_stack::template::{Template, ACCOUNT, REGION};

use super::policy::Call;

/// What the request alone does not say: each table's partition key attribute (for
/// `dynamodb:LeadingKeys`).
#[derive(Debug, Clone, Default)]
pub struct StackFacts {
    pub partition_keys: BTreeMap<String, String>,
}

impl StackFacts {
    pub fn of(template: &Template) -> Self {
        let mut partition_keys = BTreeMap::new();
        for t in template.of_kind("AWS::DynamoDB::Table") {
            let hash = t.properties["KeySchema"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|k| k["KeyType"] == "HASH")
                .and_then(|k| k["AttributeName"].as_str());
            if let Some(name) = hash {
                partition_keys.insert(template.physical_name(&t.logical_id), name.to_string());
            }
        }
        StackFacts { partition_keys }
    }
}

/// The parts of a request the calls are read from.
pub struct Request<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// `X-Amz-Target`'s operation (`DynamoDB_20120810.UpdateItem` -> `UpdateItem`), if any.
    pub target: Option<&'a str>,
    pub body: &'a [u8],
}

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
}

/// The calls a request makes.
pub fn calls_of(req: &Request, facts: &StackFacts) -> Vec<Call> {
    match req.service {
        "s3" => s3_calls(req),
        service => {
            let body: Json = serde_json::from_slice(req.body).unwrap_or_default();
            let op = req
                .target
                .map(str::to_string)
                .or_else(|| query_action(req.body))
                .unwrap_or_default();
            let action = format!("{service}:{op}");
            match service {
                "dynamodb" => dynamodb_calls(&action, &body, facts),
                "kinesis" => vec![Call::new(action, kinesis_stream(&body))],
                // A batch is authorized as its single action (`sqs:DeleteMessage` for
                // `DeleteMessageBatch`), as SQS does.
                "sqs" => vec![Call::new(
                    action.strip_suffix("Batch").unwrap_or(&action),
                    sqs_queue(&body, req.body),
                )],
                "firehose" => {
                    let name = body["DeliveryStreamName"].as_str().unwrap_or("*");
                    vec![Call::new(
                        action,
                        arn("firehose", &format!("deliverystream/{name}")),
                    )]
                }
                // A secret by its ARN, as functions are given it. AWS would also resolve a name to
                // its secret's ARN; here a name is checked as `secret:NAME` (stricter).
                "secretsmanager" => {
                    let id = body["SecretId"].as_str().unwrap_or("*");
                    let secret = match id.starts_with("arn:") {
                        true => id.to_string(),
                        false => arn("secretsmanager", &format!("secret:{id}")),
                    };
                    vec![Call::new(action, secret)]
                }
                _ => vec![Call::new(action, "*")],
            }
        }
    }
}

/// `Action=SendMessage&...` of the query protocol.
fn query_action(body: &[u8]) -> Option<String> {
    form_value(body, "Action")
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body).ok()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| form_decode(v))
    })
}

/// A value of an `application/x-www-form-urlencoded` body.
pub fn form_decode(v: &str) -> String {
    percent_decode(&v.replace('+', " "))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn kinesis_stream(body: &Json) -> String {
    if let Some(a) = body["StreamARN"].as_str() {
        return a.to_string();
    }
    let name = body["StreamName"].as_str().unwrap_or("*");
    arn("kinesis", &format!("stream/{name}"))
}

/// The queue of a `QueueUrl` (`http://host/ACCOUNT/NAME`), or of a `QueueName`.
fn sqs_queue(body: &Json, raw: &[u8]) -> String {
    let url = body["QueueUrl"]
        .as_str()
        .map(str::to_string)
        .or_else(|| form_value(raw, "QueueUrl"));
    let name = match url {
        Some(u) => u.rsplit('/').next().unwrap_or("*").to_string(),
        None => body["QueueName"]
            .as_str()
            .map(str::to_string)
            .or_else(|| form_value(raw, "QueueName"))
            .unwrap_or_else(|| "*".into()),
    };
    arn("sqs", &name)
}

/// The partition key values of items or keys (`{"pk": {"S": "rsvp#1"}, ...}`).
fn leading_keys<'a>(items: impl Iterator<Item = &'a Json>, pk: &str) -> Vec<String> {
    items
        .filter_map(|item| {
            let v = &item[pk];
            v["S"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["N"].as_str().map(str::to_string))
        })
        .collect()
}

fn dynamodb_calls(action: &str, body: &Json, facts: &StackFacts) -> Vec<Call> {
    let table_call = |table: &str, keys: Option<Vec<String>>| {
        let call = Call::new(action, arn("dynamodb", &format!("table/{table}")));
        match keys {
            Some(k) => call.with("dynamodb:LeadingKeys", k),
            None => call,
        }
    };
    let pk = |table: &str| facts.partition_keys.get(table).cloned().unwrap_or_default();
    match action {
        "dynamodb:BatchGetItem" | "dynamodb:BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(table, req)| {
                let pk = pk(table);
                let keys = match req {
                    Json::Object(get) => {
                        leading_keys(get["Keys"].as_array().into_iter().flatten(), &pk)
                    }
                    Json::Array(writes) => leading_keys(
                        writes.iter().filter_map(|w| {
                            w.get("PutRequest")
                                .map(|p| &p["Item"])
                                .or_else(|| w.get("DeleteRequest").map(|d| &d["Key"]))
                        }),
                        &pk,
                    ),
                    _ => vec![],
                };
                table_call(table, Some(keys))
            })
            .collect(),
        _ => {
            let table = body["TableName"].as_str().unwrap_or("*");
            let pk = pk(table);
            let keys = if let Some(k) = body.get("Key") {
                Some(leading_keys(std::iter::once(k), &pk))
            } else if let Some(item) = body.get("Item") {
                Some(leading_keys(std::iter::once(item), &pk))
            } else if action == "dynamodb:Query" {
                Some(query_leading_key(body, &pk).into_iter().collect())
            } else {
                None
            };
            vec![table_call(table, keys)]
        }
    }
}

/// The partition key value a `Query`'s `KeyConditionExpression` names (`#pk = :v AND ...`).
fn query_leading_key(body: &Json, pk: &str) -> Option<String> {
    let expr = body["KeyConditionExpression"].as_str()?;
    expr.split(" AND ")
        .chain(expr.split(" and "))
        .find_map(|part| {
            let (name, value) = part.split_once('=')?;
            let name = name.trim();
            let name = body["ExpressionAttributeNames"][name]
                .as_str()
                .unwrap_or(name);
            (name == pk).then(|| {
                let v = &body["ExpressionAttributeValues"][value.trim()];
                v["S"].as_str().or(v["N"].as_str()).map(str::to_string)
            })?
        })
}

/// S3's REST API, path-style (`/bucket/key?query`).
fn s3_calls(req: &Request) -> Vec<Call> {
    let path = req.path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) if !k.is_empty() => (b, Some(percent_decode(k))),
        Some((b, _)) => (b, None),
        None => (path, None),
    };
    let has = |name: &str| {
        req.query
            .split('&')
            .any(|p| p == name || p.starts_with(&format!("{name}=")))
    };
    let param = |name: &str| {
        req.query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")).map(percent_decode))
    };
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let object = |k: &str| Call::new("", format!("arn:aws:s3:::{bucket}/{k}"));
    let named = |mut c: Call, action: &str| {
        c.action = action.to_string();
        c
    };
    match (req.method, key) {
        ("GET" | "HEAD", Some(k)) => vec![named(object(&k), "s3:GetObject")],
        ("PUT", Some(k)) if has("partNumber") => vec![named(object(&k), "s3:PutObject")],
        ("PUT", Some(k)) => vec![named(object(&k), "s3:PutObject")],
        ("POST", Some(k)) => vec![named(object(&k), "s3:PutObject")],
        ("DELETE", Some(k)) if has("uploadId") => {
            vec![named(object(&k), "s3:AbortMultipartUpload")]
        }
        ("DELETE", Some(k)) => vec![named(object(&k), "s3:DeleteObject")],
        ("GET", None) if has("location") => vec![Call::new("s3:GetBucketLocation", bucket_arn)],
        ("GET", None) if has("uploads") => {
            vec![Call::new("s3:ListBucketMultipartUploads", bucket_arn)]
        }
        ("GET" | "HEAD", None) => {
            let mut call = Call::new("s3:ListBucket", bucket_arn);
            if let Some(prefix) = param("prefix") {
                call = call.with("s3:prefix", vec![prefix]);
            }
            vec![call]
        }
        ("POST", None) if has("delete") => {
            vec![Call::new("s3:DeleteObject", format!("{bucket_arn}/*"))]
        }
        ("PUT", None) => vec![Call::new("s3:CreateBucket", bucket_arn)],
        ("DELETE", None) => vec![Call::new("s3:DeleteBucket", bucket_arn)],
        (method, _) => vec![Call::new(format!("s3:{method}"), bucket_arn)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> StackFacts {
        StackFacts {
            partition_keys: [("tally-state".to_string(), "pk".to_string())].into(),
        }
    }

    fn json_req<'a>(service: &'a str, target: &'a str, body: &'a [u8]) -> Request<'a> {
        Request {
            service,
            method: "POST",
            path: "/",
            query: "",
            target: Some(target),
            body,
        }
    }

    #[test]
    fn dynamodb_calls_name_the_table_and_the_partition_keys() {
        let body = br#"{"TableName":"tally-state","Key":{"pk":{"S":"rsvp#1"}},"UpdateExpression":"ADD n :one"}"#;
        let calls = calls_of(&json_req("dynamodb", "UpdateItem", body), &facts());
        assert_eq!(
            calls,
            [Call::new(
                "dynamodb:UpdateItem",
                "arn:aws:dynamodb:us-east-1:000000000000:table/tally-state"
            )
            .with("dynamodb:LeadingKeys", vec!["rsvp#1".into()])]
        );
        let batch =
            br#"{"RequestItems":{"tally-state":{"Keys":[{"pk":{"S":"a"}},{"pk":{"S":"b"}}]}}}"#;
        let calls = calls_of(&json_req("dynamodb", "BatchGetItem", batch), &facts());
        assert_eq!(calls[0].context["dynamodb:LeadingKeys"], ["a", "b"]);
        let query = br##"{"TableName":"tally-state","KeyConditionExpression":"#k = :v","ExpressionAttributeNames":{"#k":"pk"},"ExpressionAttributeValues":{":v":{"S":"views#x"}}}"##;
        let calls = calls_of(&json_req("dynamodb", "Query", query), &facts());
        assert_eq!(calls[0].context["dynamodb:LeadingKeys"], ["views#x"]);
    }

    #[test]
    fn kinesis_sqs_and_s3_calls_name_their_resources() {
        let put = br#"{"StreamName":"tally-VisitsStream","Records":[]}"#;
        assert_eq!(
            calls_of(&json_req("kinesis", "PutRecords", put), &facts())[0].resource,
            "arn:aws:kinesis:us-east-1:000000000000:stream/tally-VisitsStream"
        );
        let send = br#"{"QueueUrl":"http://127.0.0.1:4566/000000000000/tally-StreamFailureQueue"}"#;
        assert_eq!(
            calls_of(&json_req("sqs", "SendMessage", send), &facts())[0].resource,
            "arn:aws:sqs:us-east-1:000000000000:tally-StreamFailureQueue"
        );
        let s3 = |method: &'static str, path: &'static str, query: &'static str| Request {
            service: "s3",
            method,
            path,
            query,
            target: None,
            body: b"",
        };
        let first = |method, path, query| calls_of(&s3(method, path, query), &facts()).remove(0);
        let get = first("GET", "/b/lake/rsvps/x%3D1.parquet", "x-id=GetObject");
        assert_eq!(
            (get.action.as_str(), get.resource.as_str()),
            ("s3:GetObject", "arn:aws:s3:::b/lake/rsvps/x=1.parquet")
        );
        let list = first("GET", "/b", "list-type=2&prefix=lake%2Frsvps%2F");
        assert_eq!(
            (list.action.as_str(), list.resource.as_str()),
            ("s3:ListBucket", "arn:aws:s3:::b")
        );
        assert_eq!(list.context["s3:prefix"], ["lake/rsvps/"]);
        assert_eq!(
            first("GET", "/b/", "list-type=2&prefix=lake%2F").action,
            "s3:ListBucket"
        );
    }
}
