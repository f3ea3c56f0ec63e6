//! The AOT image format: a host x86-64 ELF relocatable object written by cranelift-object,
//! one function per translated guest region (`vmc_g_<pc>`), with three metadata sections and
//! a signature trailer:
//!
//! - `.vmc.meta`: JSON [`Meta`]: format version, compiler version, guest and host ISA, host CPU
//!   features the code uses, CpuState ABI version, guest memory layout, SHA-256 of the guest.
//! - `.vmc.map`: the binary [`Map`]: guest PC, code offset and guest ranges of every region,
//!   the guest targets of the chain slots its code exits through (slot `i` is `slots[i]`),
//!   and the import list (the runtime entry points and helpers the code calls).
//! - `.vmc.guest`: the guest binary itself, so an image runs on its own (`vmrun IMAGE`).
//!
//! After the object come [`TRAILER`] bytes: the signer's ed25519 public key (32 bytes), its
//! signature of the object (64 bytes, see [`super::sign`]) and the magic [`MAGIC`]. An image
//! is authenticated, not just checksummed: [`Image::open`] verifies the signature and that
//! the signer is trusted before anything in the object is parsed, so a truncated, modified,
//! resealed or foreign image is refused whoever rewrote it. An image is a program: whoever
//! holds a trusted key vouches for all of it, including the guest it embeds (so an image
//! renamed still runs its own embedded guest, as a renamed executable runs its own code).
//!
//! The code needs no linking: it has no relocations. It reaches the runtime entry points
//! (`vmc_rt_*`) and instruction helpers (`vmc_helper_<name>`, see [`crate::a64::helpers`])
//! through the import table the runtime builds from the map's import list (its address is in
//! [`JitContext::imports`]), the guest state through the pinned register, and other regions
//! through chain slots. Its section starts on a page boundary of the file, so once `vmrun` has
//! read and verified the whole image in private memory it makes those pages executable in
//! place, without copying them.

use object::{Object, ObjectSection};
use serde::{Deserialize, Serialize};

use super::sign::{KeyId, SigningKey, TrustedKeys, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::layout;
use crate::lower::{Callee, JitContext};
use crate::state::CPU_STATE_ABI_VERSION;

/// Version of this format; bumped whenever the layout of any part changes.
pub const FORMAT_VERSION: u32 = 4;
/// Last 8 bytes of every image.
pub const MAGIC: &[u8; 8] = b"VMCAOT04";
/// Last 8 bytes of the images of earlier formats (sealed by a digest anyone can recompute):
/// recognized only to be refused as unsigned.
pub const UNSIGNED_MAGICS: [&[u8; 8]; 1] = [b"VMCAOT02"];
/// Public key, signature, magic.
pub const TRAILER: usize = PUBLIC_KEY_LEN + SIGNATURE_LEN + 8;
/// Section holding [`Meta`] as JSON.
pub const META_SECTION: &str = ".vmc.meta";
/// Section holding the encoded [`Map`].
pub const MAP_SECTION: &str = ".vmc.map";
/// Section holding the guest binary.
pub const GUEST_SECTION: &str = ".vmc.guest";
/// Prefix of region symbols (followed by the guest PC in hex).
pub const REGION_PREFIX: &str = "vmc_g_";
/// Prefix of helper symbols (followed by the helper's name).
pub const HELPER_PREFIX: &str = "vmc_helper_";
/// Runtime entry points and their symbol names.
pub const CALLEES: [(Callee, &str); 7] = [
    (Callee::Load, "vmc_rt_load"),
    (Callee::Store, "vmc_rt_store"),
    (Callee::LoadVec, "vmc_rt_load_vec"),
    (Callee::StoreVec, "vmc_rt_store_vec"),
    (Callee::Helper, "vmc_rt_helper"),
    (Callee::HelperCold, "vmc_rt_helper_cold"),
    (Callee::ProfileIndirect, "vmc_rt_profile_indirect"),
];

/// Position of a runtime entry point in every image's import list (the entry points come
/// first, in [`CALLEES`] order; helpers follow).
pub fn callee_import(c: Callee) -> u32 {
    CALLEES
        .iter()
        .position(|(k, _)| *k == c)
        .expect("every callee is in CALLEES") as u32
}

/// The symbol of the region at guest `pc`.
pub fn region_symbol(pc: u64) -> String {
    format!("{REGION_PREFIX}{pc:x}")
}

/// This compiler's version string, recorded in images and checked when they are loaded.
pub fn compiler_version() -> String {
    format!("vmc {}", env!("CARGO_PKG_VERSION"))
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    vmc_profiles::hex(&vmc_profiles::sha256(bytes))
}

/// The optional host CPU features (Cranelift `has_*` flags) this host has; images record
/// those their code may use.
pub fn host_features() -> Vec<String> {
    match layout::host_isa(true) {
        Ok(isa) => isa
            .isa_flags()
            .iter()
            .filter(|f| f.name.starts_with("has_") && f.as_bool() == Some(true))
            .map(|f| f.name.to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The guest memory layout the code was translated for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size of the guest address space.
    pub guest_space: u64,
    /// Guest page size.
    pub page: u64,
    /// Load address of static-pie executables.
    pub pie_base: u64,
    /// Permission bits the inline memory checks test: read, write, code.
    pub perm_bits: [u8; 3],
}

impl Layout {
    /// The layout of this build.
    pub fn current() -> Layout {
        Layout {
            guest_space: layout::GUEST_SPACE,
            page: layout::PAGE,
            pie_base: layout::PIE_BASE,
            perm_bits: [layout::perm::R, layout::perm::W, layout::perm::CODE],
        }
    }
}

/// Translation statistics recorded in the image (shown by `vmc inspect`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ImageStats {
    /// Regions (host functions).
    pub regions: u64,
    /// Secondary entries of regions (return sites and system-call continuations entered
    /// in the middle of their function's translation).
    #[serde(default)]
    pub entries: u64,
    /// Guest basic blocks translated.
    pub blocks: u64,
    /// Distinct guest instructions covered.
    pub guest_insns: u64,
    /// Bytes of executable guest code.
    pub exec_bytes: u64,
    /// Share of the executable bytes covered by translated instructions.
    pub coverage: f64,
    /// Function entries found.
    pub functions: u64,
    /// Functions found never to return (calls to them have no return site).
    #[serde(default)]
    pub noreturn: u64,
    /// Jump tables recovered.
    pub jump_tables: u64,
    /// Bytes of host code.
    pub host_code_bytes: u64,
    /// Chain slots (exit targets).
    pub slots: u64,
    /// Entries added from the profile (code static discovery had not found).
    #[serde(default)]
    pub profile_entries: u64,
    /// Guest blocks translated in more than one region (hot paths grown by the profile).
    #[serde(default)]
    pub duplicated_blocks: u64,
}

/// Image metadata (the `.vmc.meta` section).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Meta {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// [`compiler_version`] of the writer.
    pub compiler_version: String,
    /// Guest instruction set ("aarch64").
    pub guest_isa: String,
    /// Host instruction set ("x86_64").
    pub host_isa: String,
    /// Optional host CPU features the code may use.
    pub host_features: Vec<String>,
    /// [`CPU_STATE_ABI_VERSION`] the code addresses the guest state with.
    pub cpu_state_abi: u32,
    /// Size of [`JitContext`] (its layout is part of the ABI too).
    pub jit_context_size: u32,
    /// Guest memory layout baked into the code.
    pub layout: Layout,
    /// File name of the guest when it was translated (informational).
    pub guest_name: String,
    /// Hex SHA-256 of the guest binary.
    pub guest_sha256: String,
    /// Size of the guest binary.
    pub guest_size: u64,
    /// Guest entry point at run time.
    pub entry: u64,
    /// Load bias of the guest (static-pie executables load at [`layout::PIE_BASE`]).
    pub bias: u64,
    /// Hex SHA-256 of the profile that guided translation, if any.
    pub profile_sha256: Option<String>,
    /// Guest calls are host calls in the code (`vmc translate --return-prediction`).
    pub return_prediction: bool,
    /// Statistics.
    pub stats: ImageStats,
}

impl Meta {
    /// Metadata for a guest translated by this build (statistics left default).
    pub fn new(guest: &[u8], guest_name: &str, entry: u64, bias: u64) -> Meta {
        Meta {
            format_version: FORMAT_VERSION,
            compiler_version: compiler_version(),
            guest_isa: "aarch64".into(),
            host_isa: std::env::consts::ARCH.into(),
            host_features: host_features(),
            cpu_state_abi: CPU_STATE_ABI_VERSION,
            jit_context_size: std::mem::size_of::<JitContext>() as u32,
            layout: Layout::current(),
            guest_name: guest_name.into(),
            guest_sha256: sha256_hex(guest),
            guest_size: guest.len() as u64,
            entry,
            bias,
            profile_sha256: None,
            return_prediction: false,
            stats: ImageStats::default(),
        }
    }
}

/// One translated region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionEntry {
    /// Guest PC of its entry (its symbol is [`region_symbol`] of it).
    pub pc: u64,
    /// Offset of its code in the code section.
    pub code: u64,
    /// Guest instructions it translates.
    pub guest_insns: u32,
    /// Guest address ranges its code was translated from, and the jump tables it folded
    /// (for invalidation: the runtime marks them as code). Empty for a
    /// secondary entry of a region (same code offset, no instructions of its own), which
    /// is invalidated with it.
    pub ranges: Vec<(u64, u64)>,
}

/// The `.vmc.map` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Map {
    /// Regions sorted by PC (strictly).
    pub regions: Vec<RegionEntry>,
    /// Chain-slot targets, sorted (strictly): the code's exit through slot `i` goes to guest
    /// `slots[i]`.
    pub slots: Vec<u64>,
    /// Symbols of the runtime entry points and helpers the code calls: entry `i` of the
    /// import table the runtime builds is the address of `imports[i]`.
    pub imports: Vec<String>,
}

impl Map {
    /// Little-endian encoding: region count, then per region pc, code offset, insns, range
    /// count, ranges; then slot count and slots; then import count and per import its length
    /// and UTF-8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((self.regions.len() as u64).to_le_bytes());
        for r in &self.regions {
            out.extend(r.pc.to_le_bytes());
            out.extend(r.code.to_le_bytes());
            out.extend(r.guest_insns.to_le_bytes());
            out.extend((r.ranges.len() as u32).to_le_bytes());
            for (s, e) in &r.ranges {
                out.extend(s.to_le_bytes());
                out.extend(e.to_le_bytes());
            }
        }
        out.extend((self.slots.len() as u64).to_le_bytes());
        for s in &self.slots {
            out.extend(s.to_le_bytes());
        }
        out.extend((self.imports.len() as u64).to_le_bytes());
        for i in &self.imports {
            out.extend((i.len() as u32).to_le_bytes());
            out.extend(i.as_bytes());
        }
        out
    }

    /// Decodes and validates [`Map::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Map, ImageError> {
        let mut r = Reader { bytes, pos: 0 };
        let n = r.count(28)?;
        let mut regions = Vec::with_capacity(n);
        for _ in 0..n {
            let pc = r.u64()?;
            let code = r.u64()?;
            let guest_insns = r.u32()?;
            let k = r.u32()? as usize;
            if k.saturating_mul(16) > r.left() {
                return Err(ImageError::Map("range count beyond the section".into()));
            }
            let mut ranges = Vec::with_capacity(k);
            for _ in 0..k {
                let (s, e) = (r.u64()?, r.u64()?);
                if s >= e || e > layout::GUEST_SPACE {
                    return Err(ImageError::Map(format!("bad range {s:#x}..{e:#x}")));
                }
                ranges.push((s, e));
            }
            if pc % 4 != 0 || pc >= layout::GUEST_SPACE {
                return Err(ImageError::Map(format!("bad region pc {pc:#x}")));
            }
            regions.push(RegionEntry {
                pc,
                code,
                guest_insns,
                ranges,
            });
        }
        if regions.windows(2).any(|w| w[0].pc >= w[1].pc) {
            return Err(ImageError::Map("regions out of order".into()));
        }
        let n = r.count(8)?;
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            slots.push(r.u64()?);
        }
        if slots.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ImageError::Map("chain slots out of order".into()));
        }
        let n = r.count(4)?;
        let mut imports = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u32()? as usize;
            if len > r.left() {
                return Err(ImageError::Map("import name beyond the section".into()));
            }
            let name = &r.bytes[r.pos..r.pos + len];
            r.pos += len;
            let name = std::str::from_utf8(name)
                .map_err(|_| ImageError::Map("import name is not UTF-8".into()))?;
            imports.push(name.to_string());
        }
        if r.left() != 0 {
            return Err(ImageError::Map("trailing bytes".into()));
        }
        Ok(Map {
            regions,
            slots,
            imports,
        })
    }
}

/// Bounds-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ImageError> {
        let s = self
            .bytes
            .get(self.pos..self.pos + N)
            .ok_or_else(|| ImageError::Map("section ends early".into()))?;
        self.pos += N;
        Ok(s.try_into().expect("slice of length N"))
    }
    fn u32(&mut self) -> Result<u32, ImageError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, ImageError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    /// A count of items of at least `min` bytes each that must fit in what is left.
    fn count(&mut self, min: usize) -> Result<usize, ImageError> {
        let n = self.u64()?;
        if n.saturating_mul(min as u64) > self.left() as u64 {
            return Err(ImageError::Map(format!("count {n} beyond the section")));
        }
        Ok(n as usize)
    }
}

/// Why an image is refused. Each message is one line; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Too short to hold the trailer.
    #[error("truncated: {0} bytes is too short for a vmc image")]
    TooShort(usize),
    /// The trailer magic is missing: not an image, or cut short.
    #[error("not a vmc AOT image, or truncated (no image trailer)")]
    NoTrailer,
    /// The image has no signature (an earlier format, sealed by a digest anyone can forge).
    #[error("unsigned image (an earlier vmc format): translate it again")]
    Unsigned,
    /// The signature does not verify: the image was modified after signing, or is corrupt.
    #[error("bad signature: the image was modified after it was signed, or is corrupt")]
    BadSignature,
    /// Signed by a key this user does not trust.
    #[error("signed by untrusted key {fingerprint} (trust it with --trust-key or in the trusted_keys file)")]
    UntrustedKey {
        /// [`KeyId::fingerprint`] of the signer.
        fingerprint: String,
    },
    /// The object file cannot be parsed.
    #[error("corrupt object file: {0}")]
    Object(String),
    /// A required section is missing.
    #[error("missing section {0}")]
    MissingSection(&'static str),
    /// The metadata cannot be parsed.
    #[error("corrupt metadata: {0}")]
    Meta(String),
    /// Written in another format version.
    #[error("image format version {found}, this build reads version {expected}: translate again")]
    Format {
        /// Version in the image.
        found: u32,
        /// Version of this build.
        expected: u32,
    },
    /// Written by another compiler build.
    #[error("image built by {found}, this is {expected}: translate again")]
    CompilerVersion {
        /// Compiler of the image.
        found: String,
        /// This build.
        expected: String,
    },
    /// Not an AArch64 guest.
    #[error("image translates guest ISA {0}, this runtime runs aarch64")]
    GuestIsa(String),
    /// Code for another host.
    #[error("image holds code for host {0}, this host is {1}")]
    HostIsa(String, String),
    /// Code that uses CPU features this host lacks.
    #[error("image code needs host CPU features this host lacks: {0}")]
    HostFeatures(String),
    /// Other CpuState or context ABI.
    #[error("image built for CpuState ABI {found}, this runtime has {expected}")]
    Abi {
        /// ABI of the image.
        found: String,
        /// ABI of this build.
        expected: String,
    },
    /// Other guest memory layout.
    #[error("image built for another guest memory layout")]
    Layout,
    /// The embedded guest does not match the recorded hash.
    #[error("embedded guest binary does not match its recorded SHA-256")]
    GuestHash,
    /// The region map is malformed.
    #[error("corrupt region map: {0}")]
    Map(String),
    /// The code section is missing, misplaced or needs relocation.
    #[error("bad code section: {0}")]
    Code(String),
}

/// Appends the trailer (public key, signature, magic) to an object file, making it an image
/// signed by `key`.
pub fn seal(mut object: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&object);
    object.extend_from_slice(&key.public().0);
    object.extend_from_slice(&sig);
    object.extend_from_slice(MAGIC);
    object
}

/// Who signed an image, and its signature: identifies the image's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageId {
    /// The signer's public key.
    pub signer: KeyId,
    /// The signature (of the contents' digest).
    pub signature: [u8; SIGNATURE_LEN],
}

impl ImageId {
    /// The image trailer holding this identity.
    pub fn trailer(&self) -> Vec<u8> {
        [&self.signer.0[..], &self.signature, MAGIC].concat()
    }

    /// The signature in hex.
    pub fn signature_hex(&self) -> String {
        self.signature.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The parts of an image: the object, the signer's key and the signature (structure only,
/// nothing verified).
fn split(bytes: &[u8]) -> Result<(&[u8], KeyId, [u8; SIGNATURE_LEN]), ImageError> {
    if UNSIGNED_MAGICS.iter().any(|m| bytes.ends_with(*m)) {
        return Err(ImageError::Unsigned);
    }
    if bytes.len() < TRAILER {
        return Err(ImageError::TooShort(bytes.len()));
    }
    if !bytes.ends_with(MAGIC) {
        return Err(ImageError::NoTrailer);
    }
    let (object, trailer) = bytes.split_at(bytes.len() - TRAILER);
    let (key, rest) = trailer.split_at(PUBLIC_KEY_LEN);
    let key = KeyId(key.try_into().expect("PUBLIC_KEY_LEN bytes"));
    let sig = rest[..SIGNATURE_LEN]
        .try_into()
        .expect("SIGNATURE_LEN bytes");
    Ok((object, key, sig))
}

/// A parsed image (the object, not yet loaded).
pub struct Image<'a> {
    /// Who signed it (from the trailer; see [`Image::verified_by`]).
    pub id: ImageId,
    /// Set by [`Image::open`] only: the signature verified against a trusted key.
    verified: Option<KeyId>,
    /// Metadata.
    pub meta: Meta,
    /// Regions and chain slots.
    pub map: Map,
    /// The embedded guest binary.
    pub guest: &'a [u8],
    /// The ELF relocatable object (without the trailer).
    pub object: &'a [u8],
    /// The code section (position-independent, no relocations).
    pub code: &'a [u8],
    /// Offset of [`Image::code`] in the image file (a multiple of [`CODE_ALIGN`]).
    pub code_offset: usize,
}

/// Alignment of the code section in the image file and in memory: a host page, so the
/// runtime can make it executable where it read the image.
pub const CODE_ALIGN: u64 = 4096;

impl<'a> Image<'a> {
    /// Whether `bytes` are meant as an image (cheap; [`Image::parse`] does the real checks):
    /// they end with the image magic, or they are an x86-64 relocatable ELF object (an image
    /// that lost its trailer).
    pub fn looks_like_image(bytes: &[u8]) -> bool {
        const ET_REL: u16 = 1;
        const EM_X86_64: u16 = 62;
        let half = |at: usize| {
            bytes
                .get(at..at + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        bytes.ends_with(MAGIC)
            || UNSIGNED_MAGICS.iter().any(|m| bytes.ends_with(*m))
            || (bytes.starts_with(b"\x7fELF")
                && half(16) == Some(ET_REL)
                && half(18) == Some(EM_X86_64))
    }

    /// Verifies the signature of `bytes` and that its key is `trusted`; returns the signer.
    /// Reads nothing of the image but its contents' digest and its trailer.
    pub fn verify(bytes: &[u8], trusted: &TrustedKeys) -> Result<KeyId, ImageError> {
        let (object, key, sig) = split(bytes)?;
        if !key.verifies(object, &sig) {
            return Err(ImageError::BadSignature);
        }
        if !trusted.contains(&key) {
            return Err(ImageError::UntrustedKey {
                fingerprint: key.fingerprint(),
            });
        }
        Ok(key)
    }

    /// [`Image::verify`], then [`Image::parse`]: the only way to an image the runtime loads
    /// (see [`Image::verified_by`]). The caller must not let `bytes` change afterwards (the
    /// runtime reads an image once into private memory).
    pub fn open(bytes: &'a [u8], trusted: &TrustedKeys) -> Result<Image<'a>, ImageError> {
        let key = Image::verify(bytes, trusted)?;
        let mut img = Image::parse(bytes)?;
        img.verified = Some(key);
        Ok(img)
    }

    /// The trusted key whose signature [`Image::open`] verified; `None` for an image that
    /// was only parsed (for inspection), which must not run.
    pub fn verified_by(&self) -> Option<KeyId> {
        self.verified
    }

    /// Checks the trailer's structure (not the signature: see [`Image::open`]), parses the
    /// object, metadata and map, checks the embedded guest against its hash. Does not check
    /// compatibility with this build: see [`Image::check_compatible`].
    pub fn parse(bytes: &'a [u8]) -> Result<Image<'a>, ImageError> {
        let (object, signer, signature) = split(bytes)?;
        let file = object::File::parse(object).map_err(|e| ImageError::Object(e.to_string()))?;
        let section = |name: &'static str| -> Result<&'a [u8], ImageError> {
            file.section_by_name(name)
                .ok_or(ImageError::MissingSection(name))?
                .data()
                .map_err(|e| ImageError::Object(format!("section {name}: {e}")))
        };
        let meta: Meta = serde_json::from_slice(section(META_SECTION)?)
            .map_err(|e| ImageError::Meta(e.to_string()))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(ImageError::Format {
                found: meta.format_version,
                expected: FORMAT_VERSION,
            });
        }
        if meta.guest_isa != "aarch64" {
            return Err(ImageError::GuestIsa(meta.guest_isa));
        }
        let map = Map::decode(section(MAP_SECTION)?)?;
        let guest = section(GUEST_SECTION)?;
        if sha256_hex(guest) != meta.guest_sha256 || guest.len() as u64 != meta.guest_size {
            return Err(ImageError::GuestHash);
        }
        let text = file
            .section_by_name(".text")
            .ok_or(ImageError::MissingSection(".text"))?;
        let bad = |why: String| ImageError::Code(why);
        let (offset, size) = text
            .file_range()
            .ok_or_else(|| bad("it has no file contents".into()))?;
        if offset % CODE_ALIGN != 0 {
            return Err(bad(format!("at file offset {offset:#x}, not page-aligned")));
        }
        if text.relocations().next().is_some() {
            return Err(bad("it has relocations".into()));
        }
        // (The object parser checks that the section lies inside the file.)
        let code = text
            .data()
            .map_err(|e| bad(format!("it cannot be read: {e}")))?;
        let code_offset = offset as usize;
        if let Some(r) = map.regions.iter().find(|r| r.code >= size) {
            return Err(ImageError::Map(format!(
                "region {:#x} has code at {:#x}, beyond the {size:#x}-byte code section",
                r.pc, r.code
            )));
        }
        Ok(Image {
            id: ImageId { signer, signature },
            verified: None,
            meta,
            map,
            guest,
            object,
            code,
            code_offset,
        })
    }

    /// Checks that this build and host can run the image's code: compiler version, host ISA
    /// and CPU features, CpuState/context ABI, guest memory layout.
    pub fn check_compatible(&self) -> Result<(), ImageError> {
        check_meta(&self.meta, &host_features())
    }
}

/// [`Image::check_compatible`] against a given host feature list.
pub fn check_meta(meta: &Meta, host: &[String]) -> Result<(), ImageError> {
    if meta.compiler_version != compiler_version() {
        return Err(ImageError::CompilerVersion {
            found: meta.compiler_version.clone(),
            expected: compiler_version(),
        });
    }
    if meta.host_isa != std::env::consts::ARCH {
        return Err(ImageError::HostIsa(
            meta.host_isa.clone(),
            std::env::consts::ARCH.into(),
        ));
    }
    let missing: Vec<&str> = meta
        .host_features
        .iter()
        .filter(|f| !host.contains(f))
        .map(|f| f.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ImageError::HostFeatures(missing.join(", ")));
    }
    let abi = |cpu: u32, ctx: u32| format!("{cpu} (context {ctx} bytes)");
    let ours = (
        CPU_STATE_ABI_VERSION,
        std::mem::size_of::<JitContext>() as u32,
    );
    if (meta.cpu_state_abi, meta.jit_context_size) != ours {
        return Err(ImageError::Abi {
            found: abi(meta.cpu_state_abi, meta.jit_context_size),
            expected: abi(ours.0, ours.1),
        });
    }
    if meta.layout != Layout::current() {
        return Err(ImageError::Layout);
    }
    Ok(())
}
