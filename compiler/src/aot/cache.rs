//! Content-addressed cache of translated images (`vmc translate --cache-dir DIR`).
//!
//! The key is the SHA-256 of everything that determines the image: the guest bytes, the
//! compiler version, the host features the code may use, and the translation options that
//! change the output (not `-j`, which never does). Entries are written atomically (temporary
//! file, then rename) and re-verified when read, so a damaged entry is a miss, not an error.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::image::{compiler_version, host_features, Image, Meta};
use super::sign::{KeyId, TrustedKeys};

/// The cache key of a translation.
pub fn key(guest: &[u8], options: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        guest,
        compiler_version().as_bytes(),
        host_features().join(",").as_bytes(),
        options.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    vmc_profiles::hex(&h.finalize().into())
}

/// A cache directory.
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Opens (creating) the cache directory.
    pub fn open(dir: &Path) -> std::io::Result<Cache> {
        std::fs::create_dir_all(dir)?;
        Ok(Cache { dir: dir.into() })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.aot"))
    }

    /// The cached image for `key` and its metadata, if present, signed by `signer` (the key
    /// translating now: an entry signed by another key, or tampered with, is a miss) and
    /// still valid for this build.
    pub fn get(&self, key: &str, signer: &KeyId) -> Option<(Vec<u8>, Meta)> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let ok = Image::open(&bytes, &TrustedKeys::of(&[*signer]))
            .and_then(|i| i.check_compatible().map(|()| i.meta));
        match ok {
            Ok(meta) => Some((bytes, meta)),
            Err(e) => {
                log::warn!("cache entry {key}: {e}; translating again");
                None
            }
        }
    }

    /// Stores an image under `key`.
    pub fn put(&self, key: &str, image: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, image)?;
        std::fs::rename(&tmp, self.path(key))
    }
}
