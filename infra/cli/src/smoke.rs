//! `tally smoke`: the end-to-end check of a running stack, local or deployed (`--aws`). Marked
//! records go into every input stream and what they must give is awaited where a user would look:
//! the gender API's answer, the paid-user alert on its stream, the RSVP stats, the event metrics
//! of a temporary app (revoked after), and each pipeline's rows in the lake (through Athena).
//! One line per check; the exit status is 0 only when every check passes.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use tally_cloud::clients::Clients;
use tally_cloud::http::{http_send, Method};
use tally_cloud::kinesis::{put_all, ShardReader, StartAt};
use tally_events::collect::{key_hash, App};

use crate::{apps, Context, DeployedStack, Target};

#[derive(clap::Args)]
pub struct Args {
    /// How long each check waits for what its records must give, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// A JWT for the read routes, when the stack has ApiReadAuth=jwt.
    #[arg(long, env = "TALLY_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sign the read routes' requests (SigV4) with the target's credentials, when the stack
    /// has ApiReadAuth=iam.
    #[arg(long, conflicts_with = "token")]
    pub sign: bool,
}

/// How the read routes' requests prove who sends them (the stack's ApiReadAuth).
enum ReadAuth {
    None,
    Token(String),
    Sign(Box<aws_config::SdkConfig>),
}

impl ReadAuth {
    /// The headers for a GET of `url`.
    async fn headers(&self, url: &str) -> Result<Vec<(String, String)>> {
        match self {
            ReadAuth::None => Ok(Vec::new()),
            ReadAuth::Token(t) => Ok(vec![("authorization".into(), format!("Bearer {t}"))]),
            ReadAuth::Sign(config) => sigv4_headers(config, url).await,
        }
    }
}

/// SigV4 headers of a GET of `url` for API Gateway (`execute-api`), with `config`'s credentials.
async fn sigv4_headers(config: &aws_config::SdkConfig, url: &str) -> Result<Vec<(String, String)>> {
    use aws_credential_types::provider::ProvideCredentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let credentials = config
        .credentials_provider()
        .ok_or_else(|| anyhow!("--sign: no AWS credentials found"))?
        .provide_credentials()
        .await
        .map_err(|e| anyhow!("--sign: cannot load AWS credentials: {e}"))?;
    let identity = credentials.into();
    let region = config
        .region()
        .map_or("us-east-1".into(), |r| r.to_string());
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| anyhow!("--sign: {e}"))?
        .into();
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| anyhow!("--sign: {url}: {e}"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| anyhow!("--sign: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// What every check works with.
struct Stack {
    clients: Clients,
    athena: aws_sdk_athena::Client,
    deployed: DeployedStack,
    api: String,
    /// Unique to this run: the marked records' ids.
    mark: i64,
    timeout: Duration,
    started: chrono::DateTime<chrono::Utc>,
    read_auth: ReadAuth,
}

impl Stack {
    async fn put(&self, stream: &str, key: &str, lines: &[String]) -> Result<()> {
        let name = self.deployed.physical(stream, "AWS::Kinesis::Stream")?;
        let entries: Vec<(String, &[u8])> = lines
            .iter()
            .map(|l| (key.to_string(), l.as_bytes()))
            .collect();
        let outcome = put_all(&self.clients.kinesis, name, &entries, |_| {}).await;
        if outcome.refused > 0 {
            bail!(
                "{stream} refused {} of {} records",
                outcome.refused,
                lines.len()
            );
        }
        Ok(())
    }

    async fn get_json(&self, path: &str) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.api);
        let headers = self.read_auth.headers(&url).await?;
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let reply = http_send(Method::GET, &url, &headers, Vec::new()).await?;
        let (status, body) = (reply.status, reply.body);
        if status == 401 || status == 403 {
            bail!(
                "GET {path}: {status} {body}: the read routes want a token (--token) or a signature (--sign)"
            );
        }
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        ))
    }

    /// Waits until `probe` gives `Some`, or says what it saw last.
    async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut last = String::from("no answer");
        loop {
            match probe().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                bail!(
                    "{what}: not within {} s (last: {last})",
                    self.timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Three visits of a new cid, two male: MODEL2 answers male through the API.
async fn gender(s: &Stack) -> Result<String> {
    let cid = format!("smoke-{}", s.mark);
    let visits: Vec<String> = ["male", "female", "male"]
        .iter()
        .map(|g| json!({"cid": cid, "gndr": g}).to_string())
        .collect();
    s.put("VisitsStream", &cid, &visits).await?;
    let path = format!("/api/v1/getGender/{cid}?model=MODEL2");
    s.until("MODEL2's answer", || async {
        let (status, v) = s.get_json(&path).await?;
        Ok((status == 200 && v["gndr"] == "male").then_some(format!("GET {path}: male")))
    })
    .await
}

/// Nine interactions of a new user: one paid_user alert on its stream.
async fn rules(s: &Stack) -> Result<String> {
    let user = s.mark;
    let at = s.started.format("%Y-%m-%d %H:%M:%S").to_string();
    let lines: Vec<String> = (0..9)
        .map(|_| {
            json!({"user_id": user, "property_id": user, "date": at, "event": "Interaction"})
                .to_string()
        })
        .collect();
    s.put("InteractionsStream", &user.to_string(), &lines)
        .await?;
    let name = s
        .deployed
        .physical("PaidUserStream", "AWS::Kinesis::Stream")?
        .to_string();
    let shards = tally_cloud::kinesis::reader::list_shards(&s.clients.kinesis, &name).await?;
    // From a little before the run began (a minute for clocks that disagree), not the day's
    // oldest record: a busy stack's alert stream holds a day of alerts.
    let since = StartAt::AtTimestamp(s.started.timestamp() as f64 - 60.0);
    let readers: Vec<ShardReader> = shards
        .iter()
        .map(|sh| {
            ShardReader::new(
                s.clients.kinesis.clone(),
                &name,
                sh.shard_id(),
                since.clone(),
            )
        })
        .collect();
    let alert = format!("paid_user:{user}");
    let readers = tokio::sync::Mutex::new(readers);
    s.until(&format!("the alert {alert} on PaidUserStream"), || async {
        for reader in readers.lock().await.iter_mut() {
            for r in reader.read(10_000).await?.records {
                let v: Value = serde_json::from_slice(&r.data).unwrap_or_default();
                if v["alert_id"] == alert.as_str() {
                    return Ok(Some(format!("{alert} on PaidUserStream")));
                }
            }
        }
        Ok(None)
    })
    .await
}

/// A new RSVP: the stats count one more.
async fn rsvp(s: &Stack) -> Result<String> {
    let (_, before) = s.get_json("/api/v1/rsvp/stats").await?;
    let before = before["totals"]["rsvps"].as_u64().unwrap_or(0);
    let now = s.started.timestamp_millis();
    let event = format!("smoke{}", s.mark);
    let line = json!({
        "rsvp_id": s.mark, "mtime": now, "response": "yes", "guests": 0, "visibility": "public",
        "member": {"member_id": s.mark, "member_name": "tally smoke"},
        "event": {"event_id": event, "event_name": "tally smoke", "time": now + 86_400_000, "event_url": "https://example.invalid/smoke"},
        "group": {"group_id": s.mark, "group_name": "tally smoke", "group_urlname": "smoke", "group_city": "Leeds", "group_country": "gb", "group_lat": 53.8, "group_lon": -1.5, "group_topics": []}
    });
    s.put("RsvpStream", &event, &[line.to_string()]).await?;
    s.until("the RSVP in the stats", || async {
        let (status, v) = s.get_json("/api/v1/rsvp/stats").await?;
        let now = v["totals"]["rsvps"].as_u64().unwrap_or(0);
        Ok((status == 200 && now > before)
            .then_some(format!("GET /api/v1/rsvp/stats: {before} -> {now} RSVPs")))
    })
    .await
}

/// An event posted with a temporary app's key: counted in the metrics; the app is revoked after,
/// whatever happened.
async fn events(ctx: &Context, s: &Stack) -> Result<String> {
    let registry = apps::registry(ctx).await?;
    let key = tally_aws::new_app_key()?;
    let app = App {
        app_id: tally_aws::app_id_for(&format!("smoke {}", s.mark))?,
        name: format!("tally smoke {}", s.mark),
        origins: Vec::new(),
    };
    registry.register(&key_hash(&key), &app).await?;
    let checked = async {
        let event = json!([{"event_id": format!("smoke-{}", s.mark), "event_type": "app_open", "client_time": s.started.timestamp_millis(), "device": {"id": "smoke", "platform": "web"}}]);
        let headers = [("x-api-key", key.as_str()), ("content-type", "application/json")];
        let r = http_send(Method::POST, &format!("{}/collect", s.api), &headers, event.to_string().into_bytes()).await?;
        if r.status != 200 {
            bail!("POST /collect answered {}: {}", r.status, r.body);
        }
        let path = format!("/api/v1/events/metrics?app_id={}&minutes=10", app.app_id);
        s.until("the event in the metrics", || async {
            let (status, v) = s.get_json(&path).await?;
            Ok((status == 200 && v["events"].as_u64() >= Some(1)).then_some(format!("POST /collect, then GET {path}: 1 event")))
        })
        .await
    }
    .await;
    let keys = registry.keys().await?;
    registry
        .expire_app(&keys, &app, chrono::Utc::now().timestamp())
        .await?;
    checked
}

/// The marked rows in each pipeline's lake table (locally; Athena on AWS is not wired yet).
async fn lake(ctx: &Context, s: &Stack) -> Result<String> {
    if matches!(ctx.target, Target::Local(_)) {
        // The lake is brought up to date once every pipeline is idle: a pipeline that keeps
        // failing never is, so this wait is bounded like the others.
        tokio::time::timeout(s.timeout, crate::sql::flushed_lake(ctx))
            .await
            .map_err(|_| {
                anyhow!(
                    "the lake was not brought up to date within {} s: a pipeline still has records it cannot process",
                    s.timeout.as_secs()
                )
            })??;
    }
    let m = s.mark;
    let mut counts = Vec::new();
    for (table, query) in [
        (
            "visits",
            format!("SELECT count(*) FROM visits WHERE cid = 'smoke-{m}'"),
        ),
        (
            "interactions",
            format!("SELECT count(*) FROM interactions WHERE user_id = {m}"),
        ),
        (
            "rsvps",
            format!("SELECT count(*) FROM rsvps WHERE rsvp_id = {m}"),
        ),
        (
            "fact_events",
            format!("SELECT count(*) FROM fact_events WHERE event_id = 'smoke-{m}'"),
        ),
    ] {
        // On AWS the archive reaches the lake a minute or two after the records (Firehose's
        // buffer, then the lake writer): wait for it like the other checks.
        let n = s
            .until(&format!("{table}'s marked rows"), || async {
                let answer =
                    crate::sql::query_athena(&s.athena, &s.deployed, &query, false).await?;
                let n = answer
                    .rows
                    .first()
                    .and_then(|r| r.first())
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                Ok((n > 0).then_some(n))
            })
            .await?;
        counts.push(format!("{table} {n}"));
    }
    Ok(counts.join(", "))
}

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    let deployed = ctx.deployed().await?;
    let api = deployed
        .outputs
        .get("ApiUrl")
        .ok_or_else(|| anyhow!("stack {} has no output ApiUrl", ctx.stack))?
        .trim_end_matches('/')
        .to_string();
    let started = chrono::Utc::now();
    // One configuration (credentials resolved once) for every client of the run.
    let config = ctx.target.sdk_config().await;
    let s = Stack {
        clients: Clients::from_config(&config),
        athena: aws_sdk_athena::Client::new(&config),
        deployed,
        api,
        mark: started.timestamp_millis(),
        timeout: Duration::from_secs(args.timeout),
        started,
        read_auth: match (args.token, args.sign) {
            (Some(token), _) => ReadAuth::Token(token),
            (None, true) => ReadAuth::Sign(Box::new(config.clone())),
            (None, false) => ReadAuth::None,
        },
    };
    println!(
        "tally smoke: stack {} at {} (records marked {})",
        ctx.stack,
        ctx.target.describe(),
        s.mark
    );
    let (g, r, v, e) = tokio::join!(gender(&s), rules(&s), rsvp(&s), events(ctx, &s));
    let mut failed = 0;
    let mut report = |name: &str, outcome: Result<String>| match outcome {
        Ok(detail) => println!("ok    {name}: {detail}"),
        Err(e) => {
            failed += 1;
            println!("FAIL  {name}: {e}");
        }
    };
    report("gender", g);
    report("rules", r);
    report("rsvp", v);
    report("events", e);
    report("lake", lake(ctx, &s).await);
    if failed > 0 {
        bail!("{failed} of 5 checks failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--sign` signs as API Gateway checks it: SigV4 for `execute-api` in the target's region,
    /// with its credentials (the local gateway reads the key from exactly this header).
    #[tokio::test]
    async fn sign_gives_a_sigv4_authorization_for_execute_api() {
        let config = tally_cloud::clients::local_config("http://127.0.0.1:9").await;
        let headers = sigv4_headers(
            &config,
            "https://abc.execute-api.us-east-1.amazonaws.com/api/v1/rsvp/stats",
        )
        .await
        .unwrap();
        let auth = &headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential="), "{auth}");
        assert!(
            auth.contains("/us-east-1/execute-api/aws4_request"),
            "{auth}"
        );
        let key = tally_cloud::edge::access_key_of(
            &hyper::Request::get("/")
                .header("authorization", auth)
                .body(())
                .unwrap(),
        );
        assert_eq!(key.as_deref(), Some(tally_control::iam::ADMIN_KEY));
        assert!(headers.iter().any(|(k, _)| k == "x-amz-date"));
    }
}
