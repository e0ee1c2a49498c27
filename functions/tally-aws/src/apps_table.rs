//! The app key registry (`AppsTable`): one item per key, by the key's SHA-256 (`key_hash`), never
//! the key itself, with its app (and the web origins whose pages may post for it), when it was
//! made and, once rotated or revoked, when it stops working (`expires_at`, epoch seconds). Lookups are cached per warm instance for a minute, so a
//! busy `/collect` reads each key about once a minute; a revoked key stops working within that
//! minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{SecondsFormat, Utc};
use tally_engine::PortError;
use tally_events::collect::{App, AppKeys};
use tally_events::seal::{SealKeys, KEY_BYTES};

use crate::errors::port_error;
use crate::table::DynamoTable;
use crate::{ConfigError, Env, SdkConfig};

/// The variable that names the apps table.
const APPS_TABLE: &str = "APPS_TABLE";

pub const KEY_HASH: &str = "key_hash";
const CACHE_FOR: Duration = Duration::from_secs(60);
/// Lookups kept at most: unknown keys are cached too, so a client sending random keys must not
/// grow the cache without bound.
const CACHE_MAX: usize = 10_000;

pub struct DynamoAppKeys {
    table: DynamoTable,
    cache: Mutex<HashMap<String, (Instant, Option<AppKey>)>>,
}

impl DynamoAppKeys {
    pub fn on(table: DynamoTable) -> Self {
        Self {
            table,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The table named by `APPS_TABLE`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, ConfigError> {
        DynamoTable::from_env(config, env, APPS_TABLE).map(Self::on)
    }

    /// Registers a key of an app under its hash (`tally apps add`, and `rotate`'s new key).
    pub async fn register(&self, key_hash: &str, app: &App) -> Result<(), PortError> {
        let mut item = HashMap::from([
            (KEY_HASH.into(), AttributeValue::S(key_hash.to_string())),
            ("app_id".into(), AttributeValue::S(app.app_id.clone())),
            ("name".into(), AttributeValue::S(app.name.clone())),
            (
                "created".into(),
                AttributeValue::S(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)),
            ),
        ]);
        if !app.origins.is_empty() {
            let origins = app.origins.iter().cloned().map(AttributeValue::S).collect();
            item.insert("origins".into(), AttributeValue::L(origins));
        }
        match self.table.put_new(KEY_HASH, item).await? {
            true => Ok(()),
            false => Err(PortError::Fatal(format!(
                "an app is registered under this key already ({})",
                app.name
            ))),
        }
    }

    /// Every registered app, once (`tally apps list` shows their keys).
    pub async fn apps(&self) -> Result<Vec<App>, PortError> {
        let mut apps: Vec<App> = self.keys().await?.into_iter().map(|k| k.app).collect();
        apps.sort_by(|a, b| (&a.name, &a.app_id).cmp(&(&b.name, &b.app_id)));
        apps.dedup();
        Ok(apps)
    }

    /// The key `key_hash` stops working at `at` (epoch seconds), unless it stops sooner already.
    pub async fn expire(&self, key_hash: &str, at: i64) -> Result<(), PortError> {
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(KEY_HASH, AttributeValue::S(key_hash.to_string()))
            .update_expression("SET expires_at = :at")
            .condition_expression("attribute_exists(app_id) AND (attribute_not_exists(expires_at) OR expires_at > :at)")
            .expression_attribute_values(":at", AttributeValue::N(at.to_string()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    /// Every key of `app` among `keys` stops working at `at` (rotation and revocation).
    pub async fn expire_app(&self, keys: &[AppKey], app: &App, at: i64) -> Result<(), PortError> {
        for key in keys.iter().filter(|k| &k.app == app) {
            self.expire(&key.key_hash, at).await?;
        }
        Ok(())
    }

    /// Every key's item (hashes only).
    pub async fn keys(&self) -> Result<Vec<AppKey>, PortError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .table
                .client
                .scan()
                .table_name(&self.table.name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Scan", e))?;
            keys.extend(out.items().iter().filter_map(key_of));
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        keys.sort_by(|a, b| (&a.app.name, &a.created).cmp(&(&b.app.name, &b.created)));
        Ok(keys)
    }
}

/// One key of an app, as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKey {
    pub key_hash: String,
    pub app: App,
    /// RFC 3339; empty for keys registered before keys had a date.
    pub created: String,
    /// When it stops (stopped) working, epoch seconds; `None` while it is the app's current key.
    pub expires_at: Option<i64>,
}

impl AppKey {
    pub fn works_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

fn key_of(item: &HashMap<String, AttributeValue>) -> Option<AppKey> {
    let text = |name: &str| item.get(name)?.as_s().ok().cloned();
    Some(AppKey {
        key_hash: text(KEY_HASH)?,
        app: App {
            app_id: text("app_id")?,
            name: text("name")?,
            origins: item
                .get("origins")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(|o| o.as_s().ok().cloned()).collect())
                .unwrap_or_default(),
        },
        created: text("created").unwrap_or_default(),
        expires_at: item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
    })
}

fn now_seconds() -> i64 {
    Utc::now().timestamp()
}

impl AppKeys for DynamoAppKeys {
    async fn app_by_key_hash(&self, key_hash: &str) -> Result<Option<App>, PortError> {
        if let Some((at, key)) = self.cache.lock().unwrap().get(key_hash) {
            if at.elapsed() < CACHE_FOR {
                return Ok(key
                    .as_ref()
                    .filter(|k| k.works_at(now_seconds()))
                    .map(|k| k.app.clone()));
            }
        }
        let item = self.table.get(KEY_HASH, key_hash, false).await?;
        let key = item.as_ref().and_then(key_of);
        let app = key
            .as_ref()
            .filter(|k| k.works_at(now_seconds()))
            .map(|k| k.app.clone());
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key_hash.to_string(), (Instant::now(), key));
        Ok(app)
    }
}

/// The item of the ingest seal's key: not a SHA-256 in hex, so never an app key's item, and
/// without `app_id`, so never listed as an app.
pub const SEAL_KEY_ITEM: &str = "ingest-seal-key";

/// The ingest seal's key (`tally_events::seal`) in `AppsTable`: made by whichever
/// function asks first (a conditional put: of two makers one wins and the other reads its key),
/// readable only by the functions whose policies name this item (`dynamodb:LeadingKeys`).
pub struct DynamoSealKeys {
    table: DynamoTable,
}

impl DynamoSealKeys {
    pub fn on(table: DynamoTable) -> Self {
        Self { table }
    }

    /// The table named by `APPS_TABLE`.
    pub fn from_env(config: &SdkConfig, env: &Env) -> Result<Self, ConfigError> {
        DynamoTable::from_env(config, env, APPS_TABLE).map(Self::on)
    }

    async fn stored(&self) -> Result<Option<Vec<u8>>, PortError> {
        let item = self.table.get(KEY_HASH, SEAL_KEY_ITEM, true).await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("secret"))
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec()))
    }
}

/// Fresh random bytes from the kernel.
fn random_bytes(n: usize) -> Result<Vec<u8>, PortError> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| PortError::Fatal(format!("no random bytes: {e}")))?;
    Ok(bytes)
}

fn random_key() -> Result<Vec<u8>, PortError> {
    random_bytes(KEY_BYTES)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new app key: `tk_` and 256 random bits in hex (the table keeps only its SHA-256).
pub fn new_app_key() -> Result<String, PortError> {
    Ok(format!("tk_{}", hex(&random_bytes(32)?)))
}

/// `Flyers Canada` -> `flyers-canada-3f2a9c`: readable, and unique however often a name is reused.
pub fn app_id_for(name: &str) -> Result<String, PortError> {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug: Vec<&str> = slug.split('-').filter(|s| !s.is_empty()).collect();
    let suffix = hex(&random_bytes(3)?);
    Ok(match slug.join("-") {
        s if s.is_empty() => format!("app-{suffix}"),
        s => format!("{}-{suffix}", &s[..s.len().min(40)]),
    })
}

impl SealKeys for DynamoSealKeys {
    async fn seal_key(&self) -> Result<Vec<u8>, PortError> {
        if let Some(key) = self.stored().await? {
            return Ok(key);
        }
        let key = random_key()?;
        let item = HashMap::from([
            (KEY_HASH.into(), AttributeValue::S(SEAL_KEY_ITEM.into())),
            ("secret".into(), AttributeValue::B(key.clone().into())),
        ]);
        if self.table.put_new(KEY_HASH, item).await? {
            return Ok(key);
        }
        // Another function made it first: its key is the one.
        self.stored().await?.ok_or_else(|| {
            PortError::Transient("the seal key was made but cannot be read yet".into())
        })
    }
}
