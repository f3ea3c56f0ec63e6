//! Execution profiles of a guest program.
//!
//! The runtime records a [`Profile`] while it runs a guest (`vmrun --profile-out FILE`) and
//! the AOT compiler reads it back (`vmc translate --profile FILE`) to decide what is hot.
//! A profile is keyed by the SHA-256 of the guest binary, so it is never applied to another
//! program ([`Profile::check_guest`]), and profiles of several runs of the same binary can be
//! summed ([`Profile::merge`]).
//!
//! # File format
//!
//! The encoding is deterministic: a profile holds only ordered maps and sets, and the same
//! content always gives byte-identical files. Decoding is strict (there is exactly one valid
//! encoding of each profile) and never panics, whatever the input.
//!
//! All integers in the body are unsigned LEB128 varints (7 bits per byte, least significant
//! group first, high bit set on every byte but the last; at most 10 bytes, no redundant
//! trailing zero groups). Signed deltas are zigzag-encoded first (`0, -1, 1, -2, ...` as
//! `0, 1, 2, 3, ...`); a "delta" of addresses is taken modulo 2^64. "Delta from the previous"
//! starts from 0 for the first record of a list. Byte by byte:
//!
//! | bytes            | content                                                           |
//! |------------------|-------------------------------------------------------------------|
//! | 8                | [`MAGIC`], `"VMCPROF\0"`                                          |
//! | 4                | [`FORMAT_VERSION`], u32 little-endian                             |
//! | 32               | `guest_sha256`, raw                                               |
//! | varint + n       | `guest_name`: length n, then n bytes of UTF-8                     |
//! | varint           | `runs`                                                            |
//! | varint           | number of blocks, then per block, in (pc, insns) order:           |
//! |                  | pc delta from the previous block's pc; insns; count; taken        |
//! | varint           | number of edges, then per edge, in (from, to) order:              |
//! |                  | from delta from the previous edge's from; zigzag(to - from); count|
//! | varint           | number of indirect sites, then per site, in pc order:             |
//! |                  | pc delta from the previous site; one kind byte (0 = `Jump`,       |
//! |                  | 1 = `Call`, 2 = `Return`); number of targets m; then per target,  |
//! |                  | in target order: zigzag(target - site pc); count                  |
//! | varint           | number of entries, then each entry as a delta from the previous   |
//! | varint           | number of callees, then per callee, in address order:             |
//! |                  | delta from the previous callee; number of calls                   |
//! | 32               | SHA-256 of every byte before it (header and body)                 |
//!
//! Keys within each list are strictly increasing. [`Profile::decode`] checks, in this order:
//! the length (at least header and digest, else [`ProfileError::Truncated`]), the magic
//! ([`ProfileError::NotAProfile`]), the version ([`ProfileError::Version`]), the digest
//! ([`ProfileError::Checksum`], which is what a truncated or modified file fails), and then
//! parses the body ([`ProfileError::Corrupt`] for anything malformed: overlong or overflowing
//! varints, a bad kind byte, keys out of order, bad UTF-8, bytes left over...).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod counts;
mod format;
mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

pub use counts::InsnCounts;
pub use summary::{HotBlock, HotFunction, Summary};

/// The first 8 bytes of every profile file.
pub const MAGIC: [u8; 8] = *b"VMCPROF\0";

/// The version of the file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Where a block starts and how many guest instructions (4 bytes each) it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BlockKey {
    /// Guest address of the first instruction.
    pub pc: u64,
    /// Number of guest instructions, covering `[pc, pc + 4 * insns)`.
    pub insns: u32,
}

/// Execution counts of one block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlockCount {
    /// Times the block was entered.
    pub count: u64,
    /// Times its final conditional branch was taken (0 for other terminators).
    pub taken: u64,
}

/// The kind of an indirect branch instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SiteKind {
    /// `BR`.
    Jump,
    /// `BLR`.
    Call,
    /// `RET`.
    Return,
}

/// The observed targets of one indirect branch instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IndirectSite {
    /// What kind of branch it is.
    pub kind: SiteKind,
    /// Target address -> times it was taken.
    pub targets: BTreeMap<u64, u64>,
}

/// The execution profile of one guest binary, over one or more runs.
///
/// Serializes (serde) with `guest_sha256` as a lowercase hex string, `blocks` as a list of
/// `{pc, insns, count, taken}` and `edges` as a list of `{from, to, count}`, so it can be
/// written as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// SHA-256 of the guest binary the profile was recorded for.
    #[serde(serialize_with = "serialize_hex")]
    pub guest_sha256: [u8; 32],
    /// Informational: the guest's file name when recorded (first profile's name kept on merge).
    pub guest_name: String,
    /// Number of runs merged into this profile (1 when recorded).
    pub runs: u64,
    /// Execution counts of each block.
    #[serde(serialize_with = "serialize_blocks")]
    pub blocks: BTreeMap<BlockKey, BlockCount>,
    /// Control-flow edges (from block start pc, to target pc) -> count.
    #[serde(serialize_with = "serialize_edges")]
    pub edges: BTreeMap<(u64, u64), u64>,
    /// Indirect branch sites by the address of the branch instruction.
    pub indirect: BTreeMap<u64, IndirectSite>,
    /// Addresses where execution entered translated code from the dispatcher at run time.
    pub entries: BTreeSet<u64>,
    /// Callee entry address -> number of calls (BL and BLR).
    pub calls: BTreeMap<u64, u64>,
}

/// Errors reading, writing, decoding or combining profiles.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A profile file could not be decoded; wraps the decoding error with the file name.
    #[error("{path}: {source}", path = path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        source: Box<ProfileError>,
    },
    /// The data does not start with [`MAGIC`].
    #[error("not a vmc profile (bad magic)")]
    NotAProfile,
    /// The data is too short to hold the header and the digest.
    #[error("truncated profile")]
    Truncated,
    /// The data is in another version of the format.
    #[error("profile format version {found}, this build reads version {expected}")]
    Version {
        /// The version in the data.
        found: u32,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// The digest does not match the content.
    #[error("profile checksum mismatch (truncated or modified)")]
    Checksum,
    /// The digest matches but the body is malformed.
    #[error("corrupt profile: {0}")]
    Corrupt(String),
    /// The profile belongs to another guest binary (hashes as lowercase hex).
    #[error("profile is for guest binary sha256 {found}, not {expected}")]
    GuestMismatch {
        /// The hash of the binary the profile was wanted for.
        expected: String,
        /// The hash the profile was recorded for.
        found: String,
    },
    /// Two profiles being merged disagree on the kind of an indirect branch.
    #[error("indirect branch at {pc:#x} is a {a:?} in one profile and a {b:?} in the other")]
    SiteKindMismatch {
        /// Address of the branch instruction.
        pc: u64,
        /// Its kind in the profile merged into.
        a: SiteKind,
        /// Its kind in the profile merged from.
        b: SiteKind,
    },
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex of a SHA-256 digest.
pub fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Profile {
    /// An empty profile of one run of the guest binary with this hash and file name.
    pub fn new(guest_sha256: [u8; 32], guest_name: &str) -> Profile {
        Profile {
            guest_sha256,
            guest_name: guest_name.to_owned(),
            runs: 1,
            blocks: BTreeMap::new(),
            edges: BTreeMap::new(),
            indirect: BTreeMap::new(),
            entries: BTreeSet::new(),
            calls: BTreeMap::new(),
        }
    }

    /// SHA-256 of [`Profile::encode`]: what the profile's file hashes to.
    pub fn digest(&self) -> [u8; 32] {
        sha256(&self.encode())
    }

    /// The file contents for this profile (see the crate documentation for the format).
    pub fn encode(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Decodes file contents written by [`Profile::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Profile, ProfileError> {
        format::decode(bytes)
    }

    /// Reads and decodes a profile file; every error names the file.
    pub fn read(path: &Path) -> Result<Profile, ProfileError> {
        let bytes = std::fs::read(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::decode(&bytes).map_err(|e| ProfileError::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Writes the profile to `path` atomically: to a temporary file in the same directory,
    /// then renamed over `path`.
    pub fn write(&self, path: &Path) -> Result<(), ProfileError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let io = |source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let name = path.file_name().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = path.with_file_name(tmp_name);
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&self.encode())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Fails with [`ProfileError::GuestMismatch`] unless the profile was recorded for the
    /// guest binary with this hash.
    pub fn check_guest(&self, guest_sha256: &[u8; 32]) -> Result<(), ProfileError> {
        if &self.guest_sha256 == guest_sha256 {
            Ok(())
        } else {
            Err(ProfileError::GuestMismatch {
                expected: hex(guest_sha256),
                found: hex(&self.guest_sha256),
            })
        }
    }

    /// Adds another profile of the same guest binary into this one: every count is summed
    /// (saturating), entries are united and runs added; the name of `self` is kept.
    ///
    /// Fails, leaving `self` unchanged, if `other` is for another binary
    /// ([`ProfileError::GuestMismatch`]) or gives an indirect branch another kind
    /// ([`ProfileError::SiteKindMismatch`]).
    pub fn merge(&mut self, other: &Profile) -> Result<(), ProfileError> {
        if self.guest_sha256 != other.guest_sha256 {
            return Err(ProfileError::GuestMismatch {
                expected: hex(&self.guest_sha256),
                found: hex(&other.guest_sha256),
            });
        }
        for (&pc, site) in &other.indirect {
            if let Some(mine) = self.indirect.get(&pc) {
                if mine.kind != site.kind {
                    return Err(ProfileError::SiteKindMismatch {
                        pc,
                        a: mine.kind,
                        b: site.kind,
                    });
                }
            }
        }
        self.runs = self.runs.saturating_add(other.runs);
        for (&key, c) in &other.blocks {
            let mine = self.blocks.entry(key).or_default();
            mine.count = mine.count.saturating_add(c.count);
            mine.taken = mine.taken.saturating_add(c.taken);
        }
        add_counts(&mut self.edges, &other.edges);
        for (&pc, site) in &other.indirect {
            let mine = self.indirect.entry(pc).or_insert_with(|| IndirectSite {
                kind: site.kind,
                targets: BTreeMap::new(),
            });
            add_counts(&mut mine.targets, &site.targets);
        }
        self.entries.extend(&other.entries);
        add_counts(&mut self.calls, &other.calls);
        Ok(())
    }

    /// Per-instruction execution counts (see [`InsnCounts`]).
    pub fn insn_counts(&self) -> InsnCounts {
        InsnCounts::new(&self.blocks)
    }

    /// A report of the profile with the `top` hottest blocks and functions.
    pub fn summary(&self, top: usize) -> Summary {
        summary::summarize(self, top)
    }
}

fn add_counts<K: Ord + Copy>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (&k, &n) in from {
        let mine = into.entry(k).or_insert(0);
        *mine = mine.saturating_add(n);
    }
}

fn serialize_hex<S: Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(d))
}

fn serialize_blocks<S: Serializer>(
    blocks: &BTreeMap<BlockKey, BlockCount>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Block {
        pc: u64,
        insns: u32,
        count: u64,
        taken: u64,
    }
    s.collect_seq(blocks.iter().map(|(k, c)| Block {
        pc: k.pc,
        insns: k.insns,
        count: c.count,
        taken: c.taken,
    }))
}

fn serialize_edges<S: Serializer>(
    edges: &BTreeMap<(u64, u64), u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Edge {
        from: u64,
        to: u64,
        count: u64,
    }
    s.collect_seq(
        edges
            .iter()
            .map(|(&(from, to), &count)| Edge { from, to, count }),
    )
}
