//! The app key registry (`AppsTable`): one item per key, by the key's SHA-256 (`key_hash`), never
//! the key itself. Lookups are cached per warm instance for a minute, so a busy `/collect` reads
//! each key about once a minute; a removed key stops working within that minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
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
    cache: Mutex<HashMap<String, (Instant, Option<App>)>>,
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

    /// Registers an app under a key's hash (the `tally apps add` command).
    pub async fn register(&self, key_hash: &str, app: &App) -> Result<(), PortError> {
        let item = HashMap::from([
            (KEY_HASH.into(), AttributeValue::S(key_hash.to_string())),
            ("app_id".into(), AttributeValue::S(app.app_id.clone())),
            ("name".into(), AttributeValue::S(app.name.clone())),
        ]);
        match self.table.put_new(KEY_HASH, item).await? {
            true => Ok(()),
            false => Err(PortError::Fatal(format!(
                "an app is registered under this key already ({})",
                app.name
            ))),
        }
    }

    /// Every registered app (the `tally apps list` command).
    pub async fn apps(&self) -> Result<Vec<App>, PortError> {
        let mut apps = Vec::new();
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
            apps.extend(out.items().iter().filter_map(app_of));
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }
}

fn app_of(item: &HashMap<String, AttributeValue>) -> Option<App> {
    let text = |name: &str| item.get(name)?.as_s().ok().cloned();
    Some(App {
        app_id: text("app_id")?,
        name: text("name")?,
    })
}

impl AppKeys for DynamoAppKeys {
    async fn app_by_key_hash(&self, key_hash: &str) -> Result<Option<App>, PortError> {
        if let Some((at, app)) = self.cache.lock().unwrap().get(key_hash) {
            if at.elapsed() < CACHE_FOR {
                return Ok(app.clone());
            }
        }
        let item = self.table.get(KEY_HASH, key_hash, false).await?;
        let app = item.as_ref().and_then(app_of);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key_hash.to_string(), (Instant::now(), app.clone()));
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
