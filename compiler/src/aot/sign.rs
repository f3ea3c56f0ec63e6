//! Image signing keys and signatures.
//!
//! `vmc translate` signs every image with the user's ed25519 key; `vmrun` runs an image only
//! when its signature verifies against a key it trusts. The signed message is
//! [`DOMAIN`] followed by the BLAKE3 digest of the image contents (everything before the
//! signature trailer): BLAKE3 reads a 10 MB image in a few milliseconds, and the domain
//! prefix keeps these signatures from being valid for anything else signed by the same key.
//!
//! Keys live in one directory per user ([`key_dir`]): `signing.key` (the 32-byte secret seed
//! in hex, mode 0600, created atomically on first use) and `signing.pub` (the public key in
//! hex). A `trusted_keys` file there lists more public keys (one per line, hex, `#`
//! comments) whose images this user runs, e.g. those of a build pipeline.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Prefix of every signed message (binds signatures to this use and format version).
pub const DOMAIN: &[u8] = b"vmc-image-v4";
/// Bytes of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Bytes of a signature.
pub const SIGNATURE_LEN: usize = 64;
/// The secret key's file name in the key directory.
pub const SECRET_FILE: &str = "signing.key";
/// The public key's file name in the key directory.
pub const PUBLIC_FILE: &str = "signing.pub";
/// The file of further trusted public keys in the key directory.
pub const TRUSTED_FILE: &str = "trusted_keys";

/// Why a key could not be made, read or used. One line each.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// None of `VMC_KEY_DIR`, `XDG_CONFIG_HOME` and `HOME` is set.
    #[error("no key directory: set VMC_KEY_DIR, XDG_CONFIG_HOME or HOME")]
    NoKeyDir,
    /// A key file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The secret key file does not hold 64 hex digits.
    #[error("{0}: malformed signing key (64 hex digits expected)")]
    BadSecret(PathBuf),
    /// The secret key file can be read or written by other users.
    #[error("{path}: signing key is accessible by other users (mode {mode:o}): chmod 600 it")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line of a public key list is not a public key.
    #[error("{list}:{line}: not an ed25519 public key (64 hex digits expected)")]
    BadPublic {
        /// The file (or argument) the line came from.
        list: String,
        /// Line number, from 1.
        line: usize,
    },
    /// A `--trust-key` argument is neither a key nor a readable key file.
    #[error("--trust-key {arg}: neither 64 hex digits nor a readable key file ({source})")]
    TrustArg {
        /// The argument.
        arg: String,
        /// Why it could not be read as a file.
        source: io::Error,
    },
    /// The system's random number generator failed.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(io::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The user's key directory: `$VMC_KEY_DIR`, else `$XDG_CONFIG_HOME/vmc`, else
/// `$HOME/.config/vmc` (empty variables count as unset).
pub fn key_dir() -> Result<PathBuf, KeyError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(d) = var("VMC_KEY_DIR") {
        return Ok(d.into());
    }
    if let Some(d) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("vmc"));
    }
    var("HOME")
        .map(|h| PathBuf::from(h).join(".config").join("vmc"))
        .ok_or(KeyError::NoKeyDir)
}

/// An ed25519 public key: who signed an image.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; PUBLIC_KEY_LEN]);

impl KeyId {
    /// The key in hex (what key files and `--trust-key` hold).
    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// A short name for messages: the first 8 bytes of the key's BLAKE3 digest, grouped.
    pub fn fingerprint(&self) -> String {
        let d = blake3::hash(&self.0);
        let h = hex(&d.as_bytes()[..8]);
        let groups: Vec<&str> = (0..4).map(|i| &h[i * 4..i * 4 + 4]).collect();
        groups.join(":")
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<KeyId> {
        let s = s.trim();
        if s.len() != 2 * PUBLIC_KEY_LEN || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; PUBLIC_KEY_LEN];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(KeyId(out))
    }

    /// Whether `signature` is this key's signature of image `contents` (strict ed25519
    /// verification: no weak keys, no malleable signatures).
    pub fn verifies(&self, contents: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(&message(contents), &sig).is_ok()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.fingerprint())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed message for image `contents`.
fn message(contents: &[u8]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(blake3::hash(contents).as_bytes());
    m
}

/// A secret signing key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public().fingerprint())
    }
}

impl SigningKey {
    /// A new random key (from the kernel's getrandom).
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        let mut got = 0;
        while got < seed.len() {
            // SAFETY: writes at most `seed.len() - got` bytes into `seed[got..]`.
            let n = unsafe {
                libc::getrandom(
                    seed[got..].as_mut_ptr() as *mut libc::c_void,
                    seed.len() - got,
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(KeyError::Random(e));
                }
            } else {
                got += n as usize;
            }
        }
        Ok(SigningKey::from_seed(seed))
    }

    /// The key with this secret seed.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Its public key.
    pub fn public(&self) -> KeyId {
        KeyId(self.0.verifying_key().to_bytes())
    }

    /// The signature of image `contents`.
    pub fn sign(&self, contents: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer;
        self.0.sign(&message(contents)).to_bytes()
    }

    /// The key in `dir` (see [`SECRET_FILE`]), which must exist and be private to its owner.
    pub fn load(dir: &Path) -> Result<SigningKey, KeyError> {
        let path = dir.join(SECRET_FILE);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let mode = std::fs::metadata(&path).map_err(io_err(&path))?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path, mode });
        }
        let seed = KeyId::from_hex(&text).ok_or(KeyError::BadSecret(path))?;
        Ok(SigningKey::from_seed(seed.0))
    }

    /// The key in `dir`, created there (directory 0700, key 0600) if it has none. Two
    /// processes creating it at once end up with the same key: the key file appears whole
    /// and only once (written to a private temporary file, then hard-linked into place,
    /// which fails if it exists). Also (re)writes [`PUBLIC_FILE`] if it is missing or stale.
    pub fn load_or_create(dir: &Path) -> Result<SigningKey, KeyError> {
        let path = dir.join(SECRET_FILE);
        if !path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
            let key = SigningKey::generate()?;
            let tmp = dir.join(format!(".{SECRET_FILE}.{}.tmp", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| {
                    f.write_all(format!("{}\n", hex(key.0.as_bytes())).as_bytes())?;
                    f.sync_all()
                })
                .and_then(|()| std::fs::hard_link(&tmp, &path));
            let _ = std::fs::remove_file(&tmp);
            match written {
                Ok(()) => log::info!("created signing key {}", path.display()),
                // Another process made one first: use it.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let key = SigningKey::load(dir)?;
        let public = dir.join(PUBLIC_FILE);
        let current = std::fs::read_to_string(&public)
            .ok()
            .and_then(|t| parse_keys(&t, "").ok());
        if current != Some(vec![key.public()]) {
            write_public(&key.public(), &public)?;
        }
        Ok(key)
    }

    /// The user's key ([`key_dir`]), created on first use.
    pub fn for_user() -> Result<SigningKey, KeyError> {
        SigningKey::load_or_create(&key_dir()?)
    }
}

/// Writes a public key file (a comment line naming the fingerprint, then the key in hex),
/// atomically (temporary file renamed over `path`).
pub fn write_public(key: &KeyId, path: &Path) -> Result<(), KeyError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let text = format!(
        "# vmc image signing key {}\n{}\n",
        key.fingerprint(),
        key.hex()
    );
    let r = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(io_err(path))
}

/// Parses a key list: one hex public key per line; blank lines and `#` comments are
/// ignored. `source` names the list in errors.
pub fn parse_keys(text: &str, source: &str) -> Result<Vec<KeyId>, KeyError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        keys.push(KeyId::from_hex(line).ok_or_else(|| KeyError::BadPublic {
            list: source.into(),
            line: i + 1,
        })?);
    }
    Ok(keys)
}

/// The public keys whose images may run.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: Vec<KeyId>,
}

impl TrustedKeys {
    /// Trusts exactly these keys.
    pub fn of(keys: &[KeyId]) -> TrustedKeys {
        TrustedKeys {
            keys: keys.to_vec(),
        }
    }

    /// Trusts `key` too.
    pub fn add(&mut self, key: KeyId) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Whether `key` is trusted.
    pub fn contains(&self, key: &KeyId) -> bool {
        self.keys.contains(key)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[KeyId] {
        &self.keys
    }

    /// The keys of directory `dir`: its [`PUBLIC_FILE`] and those listed in its
    /// [`TRUSTED_FILE`] (missing files add none; never creates anything).
    pub fn from_dir(dir: &Path) -> Result<TrustedKeys, KeyError> {
        let mut t = TrustedKeys::default();
        for name in [PUBLIC_FILE, TRUSTED_FILE] {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    for k in parse_keys(&text, &path.display().to_string())? {
                        t.add(k);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Ok(t)
    }

    /// The keys this user trusts ([`TrustedKeys::from_dir`] of [`key_dir`]; none without a
    /// key directory).
    pub fn for_user() -> Result<TrustedKeys, KeyError> {
        match key_dir() {
            Ok(dir) => TrustedKeys::from_dir(&dir),
            Err(_) => Ok(TrustedKeys::default()),
        }
    }

    /// Trusts a `--trust-key` argument: a public key in hex, or a file listing keys.
    pub fn add_arg(&mut self, arg: &str) -> Result<(), KeyError> {
        if let Some(k) = KeyId::from_hex(arg) {
            self.add(k);
            return Ok(());
        }
        let text = std::fs::read_to_string(arg).map_err(|source| KeyError::TrustArg {
            arg: arg.into(),
            source,
        })?;
        for k in parse_keys(&text, arg)? {
            self.add(k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn signatures_verify_only_for_their_key_and_contents() {
        let a = SigningKey::from_seed([1; 32]);
        let b = SigningKey::from_seed([2; 32]);
        let sig = a.sign(b"contents");
        assert!(a.public().verifies(b"contents", &sig));
        assert!(!a.public().verifies(b"contentS", &sig));
        assert!(!b.public().verifies(b"contents", &sig));
        let mut bad = sig;
        bad[5] ^= 1;
        assert!(!a.public().verifies(b"contents", &bad));
        // Not a curve point: refused, no panic.
        assert!(!KeyId([0xff; 32]).verifies(b"contents", &sig));
    }

    #[test]
    fn key_lists_parse_with_comments_and_refuse_garbage() {
        let k = SigningKey::from_seed([3; 32]).public();
        let text = format!("# ci\n\n  {}  # pipeline\n", k.hex());
        assert_eq!(parse_keys(&text, "t").unwrap(), vec![k]);
        let e = parse_keys("# x\nnot a key\n", "list").unwrap_err();
        assert_eq!(
            e.to_string(),
            "list:2: not an ed25519 public key (64 hex digits expected)"
        );
        assert_eq!(KeyId::from_hex(&k.hex()), Some(k));
        assert_eq!(k.fingerprint().len(), 19);
    }

    #[test]
    fn keys_are_created_once_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("vmc-sign-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = dir.join("sub");
        let a = SigningKey::load_or_create(&keys).unwrap();
        let b = SigningKey::load_or_create(&keys).unwrap();
        assert_eq!(a.public(), b.public());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&keys.join(SECRET_FILE)), 0o600);
        assert_eq!(mode(&keys), 0o700);
        let trusted = TrustedKeys::from_dir(&keys).unwrap();
        assert_eq!(trusted.keys(), &[a.public()]);
        std::fs::set_permissions(
            keys.join(SECRET_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            SigningKey::load(&keys),
            Err(KeyError::Permissions { mode: 0o644, .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
