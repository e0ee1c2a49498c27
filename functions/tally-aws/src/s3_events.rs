//! S3 event notifications as SQS delivers them: the object keys of a message body (URL-decoded, as
//! S3 encodes them), or why the body is not one.

use serde::Deserialize;

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
    /// `s3:TestEvent`, sent once when notifications are configured.
    #[serde(rename = "Event")]
    event: Option<String>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3,
}

#[derive(Deserialize)]
struct S3 {
    object: Object,
}

#[derive(Deserialize)]
struct Object {
    key: String,
}

/// The keys of the objects created, per the notification in `body`.
pub fn created_keys(body: &str) -> Result<Vec<String>, String> {
    let n: Notification =
        serde_json::from_str(body).map_err(|e| format!("not an S3 notification: {e}"))?;
    if n.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    n.records
        .iter()
        .filter(|r| r.event_name.starts_with("ObjectCreated"))
        .map(|r| url_decode(&r.s3.object.key))
        .collect()
}

/// S3 encodes keys in notifications like a form: `+` for a space, `%XX` for the rest.
fn url_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape in key {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key {s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_created_objects_decoded() {
        let body = r#"{"Records":[
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"raw/visits/dt%3D2026-11-22/a+b.gz","size":3}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"gone"}}}]}"#;
        assert_eq!(
            created_keys(body).unwrap(),
            vec!["raw/visits/dt=2026-11-22/a b.gz"]
        );
        assert_eq!(
            created_keys(r#"{"Event":"s3:TestEvent","Service":"Amazon S3"}"#).unwrap(),
            Vec::<String>::new()
        );
        assert!(created_keys("nope")
            .unwrap_err()
            .contains("not an S3 notification"));
        assert!(created_keys(
            r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"%zz"}}}]}"#
        )
        .is_err());
    }
}
