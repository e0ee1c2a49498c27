//! The lake's objects in a folder: what the bench converts into, so a conversion is measured
//! without the local S3's HTTP in the way, and with the bytes on disk as they would be in S3 (no
//! test double in the `tally` binary).

use std::path::{Path, PathBuf};

use tally_engine::ports::{ListedObject, ObjectStore, PortError};

pub struct FolderObjects {
    root: PathBuf,
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
        })
    }

    pub fn insert(&self, key: &str, data: &[u8]) -> std::io::Result<()> {
        let path = self.root.join(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, data)
    }

    /// Every key under `prefix` (a folder path ending in `/`, or empty), in order, with its size.
    pub fn listing(&self, prefix: &str) -> std::io::Result<Vec<ListedObject>> {
        let mut out = Vec::new();
        let mut folders = vec![self.root.join(prefix)];
        while let Some(folder) = folders.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    folders.push(entry.path());
                } else if let Ok(rel) = entry.path().strip_prefix(&self.root) {
                    out.push(ListedObject {
                        key: rel.to_string_lossy().replace('\\', "/"),
                        size: meta.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.listing("")
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    /// The folder the objects are in (a key is a path below it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The size of an object, in bytes.
    pub fn size(&self, key: &str) -> u64 {
        std::fs::metadata(self.root.join(key)).map_or(0, |m| m.len())
    }
}

fn fatal(e: std::io::Error) -> PortError {
    PortError::Fatal(format!("lake folder: {e}"))
}

impl ObjectStore for FolderObjects {
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, PortError> {
        // S3 lists by key prefix: the folder holding the prefix, filtered.
        let folder = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
        Ok(self
            .listing(folder)
            .map_err(fatal)?
            .into_iter()
            .filter(|o| o.key.starts_with(prefix))
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        match std::fs::remove_file(self.root.join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fatal(e)),
            _ => Ok(()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        match std::fs::read(self.root.join(key)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fatal(e)),
        }
    }

    async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), PortError> {
        self.insert(key, &data).map_err(fatal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_by_key_prefix_as_s3_does() {
        let dir = std::env::temp_dir().join(format!("tally-folder-objects-{}", std::process::id()));
        let store = FolderObjects::new(&dir).unwrap();
        for key in [
            "lake/a/dt=1/x.parquet",
            "lake/a/dt=2/y.parquet",
            "lake/ab/z.parquet",
        ] {
            store.put(key, b"xy".to_vec()).await.unwrap();
        }
        let keys = |listed: Vec<ListedObject>| -> Vec<String> {
            listed.into_iter().map(|o| o.key).collect()
        };
        assert_eq!(
            keys(store.list("lake/a").await.unwrap()),
            [
                "lake/a/dt=1/x.parquet",
                "lake/a/dt=2/y.parquet",
                "lake/ab/z.parquet"
            ]
        );
        assert_eq!(
            keys(store.list("lake/a/dt=2/").await.unwrap()),
            ["lake/a/dt=2/y.parquet"]
        );
        store.delete("lake/a/dt=2/y.parquet").await.unwrap();
        store.delete("lake/a/dt=2/y.parquet").await.unwrap();
        assert_eq!(store.get("lake/a/dt=2/y.parquet").await.unwrap(), None);
        assert_eq!(
            store.get("lake/ab/z.parquet").await.unwrap().unwrap(),
            b"xy"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
