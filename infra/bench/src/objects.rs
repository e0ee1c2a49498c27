//! The lake's objects in a folder, with S3's conditional puts: what the bench converts into, so a
//! conversion is measured without the local S3's HTTP in the way, and with the bytes on disk as
//! they would be in S3 (no test double in the `tally` binary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tally_engine::ports::{ObjectStore, PortError, PutCondition, StoredObject};

pub struct FolderObjects {
    root: PathBuf,
    /// Each key's ETag, and the writes so far (every write gets a new ETag, even of the same
    /// bytes); the lock also makes a conditional put's check and write one step.
    etags: Mutex<Etags>,
}

#[derive(Default)]
struct Etags {
    by_key: BTreeMap<String, String>,
    writes: u64,
}

impl FolderObjects {
    /// A store in `root`, which is emptied first.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        if root.exists() {
            std::fs::remove_dir_all(root)?;
        }
        std::fs::create_dir_all(root)?;
        Ok(FolderObjects {
            root: root.to_path_buf(),
            etags: Mutex::new(Etags::default()),
        })
    }

    pub fn insert(&self, key: &str, data: &[u8]) -> std::io::Result<()> {
        let mut etags = self.etags.lock().unwrap();
        self.write(&mut etags, key, data)
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.etags.lock().unwrap().by_key.keys().cloned().collect()
    }

    /// The size of an object, in bytes.
    pub fn size(&self, key: &str) -> u64 {
        std::fs::metadata(self.root.join(key)).map_or(0, |m| m.len())
    }

    fn write(&self, etags: &mut Etags, key: &str, data: &[u8]) -> std::io::Result<()> {
        let path = self.root.join(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, data)?;
        etags.writes += 1;
        let etag = format!("v{}", etags.writes);
        etags.by_key.insert(key.to_string(), etag);
        Ok(())
    }
}

fn fatal(e: std::io::Error) -> PortError {
    PortError::Fatal(format!("lake folder: {e}"))
}

impl ObjectStore for FolderObjects {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, PortError> {
        let Some(etag) = self.etags.lock().unwrap().by_key.get(key).cloned() else {
            return Ok(None);
        };
        let data = std::fs::read(self.root.join(key)).map_err(fatal)?;
        Ok(Some(StoredObject { data, etag }))
    }

    async fn put(
        &self, key: &str, data: Vec<u8>, condition: PutCondition,
    ) -> Result<bool, PortError> {
        let mut etags = self.etags.lock().unwrap();
        let holds = condition.holds(etags.by_key.get(key).map(String::as_str));
        if holds {
            self.write(&mut etags, key, &data).map_err(fatal)?;
        }
        Ok(holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_put_over_a_stale_etag_fails_even_when_the_bytes_are_the_same() {
        let dir = std::env::temp_dir().join(format!("tally-folder-objects-{}", std::process::id()));
        let store = FolderObjects::new(&dir).unwrap();
        assert!(store
            .put("a/b", b"x".to_vec(), PutCondition::IfAbsent)
            .await
            .unwrap());
        let stale = store.get("a/b").await.unwrap().unwrap().etag;
        assert!(store
            .put("a/b", b"x".to_vec(), PutCondition::Always)
            .await
            .unwrap());
        let over_stale = PutCondition::IfUnchanged(stale);
        assert!(!store.put("a/b", b"y".to_vec(), over_stale).await.unwrap());
        assert_eq!(store.get("a/b").await.unwrap().unwrap().data, b"x");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
