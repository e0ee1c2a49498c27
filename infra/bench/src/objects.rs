//! The lake's objects in a folder, with S3's conditional puts: what the bench converts into, so a
//! conversion is measured without the local S3's HTTP in the way, and with the bytes on disk as
//! they would be in S3 (no test double in the `tally` binary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tally_engine::ports::{ObjectStore, PortError, PutCondition, StoredObject};

pub struct FolderObjects {
    root: PathBuf,
    /// Each key's ETag; the lock also makes a conditional put's check and write one step.
    etags: Mutex<BTreeMap<String, String>>,
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
            etags: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn insert(&self, key: &str, data: &[u8]) -> std::io::Result<()> {
        let mut etags = self.etags.lock().unwrap();
        self.write(&mut etags, key, data)
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.etags.lock().unwrap().keys().cloned().collect()
    }

    /// The size of an object, in bytes.
    pub fn size(&self, key: &str) -> u64 {
        std::fs::metadata(self.root.join(key)).map_or(0, |m| m.len())
    }

    fn write(
        &self,
        etags: &mut BTreeMap<String, String>,
        key: &str,
        data: &[u8],
    ) -> std::io::Result<()> {
        let path = self.root.join(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, data)?;
        let version = etags.len() + 1;
        etags.insert(key.to_string(), format!("{version}-{}", data.len()));
        Ok(())
    }
}

fn fatal(e: std::io::Error) -> PortError {
    PortError::Fatal(format!("lake folder: {e}"))
}

impl ObjectStore for FolderObjects {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, PortError> {
        let Some(etag) = self.etags.lock().unwrap().get(key).cloned() else {
            return Ok(None);
        };
        let data = std::fs::read(self.root.join(key)).map_err(fatal)?;
        Ok(Some(StoredObject { data, etag }))
    }

    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        condition: PutCondition,
    ) -> Result<bool, PortError> {
        let mut etags = self.etags.lock().unwrap();
        let holds = condition.holds(etags.get(key).map(String::as_str));
        if holds {
            self.write(&mut etags, key, &data).map_err(fatal)?;
        }
        Ok(holds)
    }
}
