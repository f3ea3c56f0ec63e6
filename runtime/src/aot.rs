//! Loading AOT images (`vmrun IMAGE`): the image's ELF relocatable object is mapped and
//! linked here, with no external linker: its code sections are copied into fresh memory,
//! relocations are applied against the region symbols it defines and the runtime entry
//! points and instruction helpers it imports, and the memory is made read+execute. The
//! dispatcher ([`crate::tiers::CodeCache`]) then enters region code by guest PC.
//!
//! Nothing from an image runs unless [`Image::parse`] (trailer digest, metadata, embedded
//! guest hash) and [`Image::check_compatible`] (compiler version, host, ABI, layout) passed
//! and every relocation resolved.

use std::collections::HashMap;
use std::io;

use object::read::elf::ElfFile64;
use object::{
    LittleEndian as LE, Object, ObjectSection, ObjectSymbol, RelocationEncoding, RelocationKind,
    RelocationTarget, SectionKind,
};
use vmc_compiler::aot::image::{self, Image, ImageError};

use crate::jit::fault::CodeRange;
use crate::jit::slow;

/// Why an image's code cannot be loaded. One line each; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum AotError {
    /// The image was refused (see [`ImageError`]).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The object is malformed.
    #[error("corrupt object file: {0}")]
    Object(String),
    /// A relocation names a symbol the runtime does not provide.
    #[error("image needs unknown symbol {0}")]
    UnknownSymbol(String),
    /// A relocation of an unsupported kind or out of range.
    #[error("unsupported relocation: {0}")]
    Relocation(String),
    /// The map names a region with no code.
    #[error("region map names {0:#x} but the image has no code for it")]
    MissingCode(u64),
    /// Executable memory could not be set up.
    #[error("cannot map code memory: {0}")]
    Map(io::Error),
}

/// One region of an image, ready to enter.
#[derive(Clone, Debug)]
pub struct AotRegion {
    /// Guest PC of its entry.
    pub pc: u64,
    /// Host address of its code.
    pub code: u64,
    /// Guest ranges it was translated from.
    pub ranges: Vec<(u64, u64)>,
}

/// An image's code, linked into this process.
pub struct AotCode {
    base: *mut u8,
    len: usize,
    /// Regions sorted by guest PC.
    pub regions: Vec<AotRegion>,
    /// Chain-slot targets: slot `i` exits to guest `slots[i]`.
    pub slots: Vec<u64>,
    /// The code declared to the host-fault handler.
    _range: CodeRange,
}

// SAFETY: the mapping is owned by this value and read-only (code) after loading.
unsafe impl Send for AotCode {}
// SAFETY: as above: nothing mutates it after `load` returns.
unsafe impl Sync for AotCode {}

impl std::fmt::Debug for AotCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AotCode({} regions, {} bytes at {:p})",
            self.regions.len(),
            self.len,
            self.base
        )
    }
}

impl Drop for AotCode {
    fn drop(&mut self) {
        // SAFETY: `base` is our own mapping of `len` bytes, made by `load`.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// The address of a symbol the image imports.
fn resolve(name: &str) -> Option<u64> {
    if let Some((c, _)) = image::CALLEES.iter().find(|(_, sym)| *sym == name) {
        return Some(slow::callee_addr(*c));
    }
    let h = vmc_compiler::a64::helper_by_name(name.strip_prefix(image::HELPER_PREFIX)?)?;
    Some(h as *const vmc_compiler::ir::Helper as u64)
}

fn is_loaded(kind: SectionKind, name: &str) -> bool {
    !name.starts_with(".vmc.")
        && matches!(
            kind,
            SectionKind::Text
                | SectionKind::ReadOnlyData
                | SectionKind::ReadOnlyString
                | SectionKind::ReadOnlyDataWithRel
        )
}

/// Links `img`'s code into executable memory (after checking it suits this build).
pub fn load(img: &Image) -> Result<AotCode, AotError> {
    img.check_compatible()?;
    let obj = |e: object::Error| AotError::Object(e.to_string());
    let file = ElfFile64::<LE>::parse(img.object).map_err(obj)?;
    // Lay out the loaded sections one after another.
    let mut place: HashMap<object::SectionIndex, usize> = HashMap::new();
    let mut size = 0usize;
    for s in file.sections() {
        if is_loaded(s.kind(), s.name().unwrap_or("")) {
            let align = (s.align() as usize).clamp(1, 4096);
            size = size.next_multiple_of(align);
            place.insert(s.index(), size);
            size = size
                .checked_add(s.size() as usize)
                .ok_or_else(|| AotError::Object("section sizes overflow".into()))?;
        }
    }
    let len = size.max(1).next_multiple_of(4096);
    // SAFETY: a fresh private anonymous mapping; checked below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            // Every page is written below: fault them all in at once.
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(AotError::Map(io::Error::last_os_error()));
    }
    // From here on `code` owns the mapping (unmapped on every error path by Drop).
    let mut code = AotCode {
        base: base as *mut u8,
        len,
        regions: Vec::new(),
        slots: img.map.slots.clone(),
        _range: CodeRange::new(base as u64, base as u64 + len as u64),
    };
    // SAFETY: the mapping is `len` bytes, writable, and owned by `code`.
    let mem = unsafe { std::slice::from_raw_parts_mut(code.base, len) };
    for s in file.sections() {
        if let Some(&off) = place.get(&s.index()) {
            let data = s.data().map_err(obj)?;
            mem[off..off + data.len()].copy_from_slice(data);
        }
    }
    let host = code.base as u64;
    let symbol_addr = |sym: &object::read::elf::ElfSymbol64<LE>| -> Result<u64, AotError> {
        let name = sym.name().unwrap_or("");
        match sym.section_index() {
            Some(i) => match place.get(&i) {
                Some(&off) => Ok(host + off as u64 + sym.address()),
                None => Err(AotError::Object(format!(
                    "symbol {name} is in a section that is not loaded"
                ))),
            },
            None => resolve(name).ok_or_else(|| AotError::UnknownSymbol(name.into())),
        }
    };
    for s in file.sections() {
        let Some(&off) = place.get(&s.index()) else {
            continue;
        };
        let size = s.size() as usize;
        for (at, r) in s.relocations() {
            let RelocationTarget::Symbol(si) = r.target() else {
                return Err(AotError::Relocation(format!(
                    "non-symbol target at {at:#x}"
                )));
            };
            let sym = file.symbol_by_index(si).map_err(obj)?;
            let target = symbol_addr(&sym)?.wrapping_add(r.addend() as u64);
            let at = at as usize;
            let width = r.size() as usize / 8;
            if at.checked_add(width).is_none_or(|e| e > size) {
                return Err(AotError::Relocation(format!(
                    "offset {at:#x} beyond its section"
                )));
            }
            let place_addr = host + (off + at) as u64;
            let bytes: Vec<u8> = match (r.kind(), r.encoding(), r.size()) {
                (RelocationKind::Absolute, RelocationEncoding::Generic, 64) => {
                    target.to_le_bytes().to_vec()
                }
                (RelocationKind::Relative | RelocationKind::PltRelative, _, 32) => {
                    let d = target.wrapping_sub(place_addr) as i64;
                    let d = i32::try_from(d).map_err(|_| {
                        AotError::Relocation(format!("PC-relative target out of range at {at:#x}"))
                    })?;
                    d.to_le_bytes().to_vec()
                }
                (k, e, n) => {
                    return Err(AotError::Relocation(format!("{k:?}/{e:?}/{n} at {at:#x}")))
                }
            };
            mem[off + at..off + at + width].copy_from_slice(&bytes);
        }
    }
    // Region entry points by name.
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    let mut perf_map = std::env::var_os("VMC_PERF_MAP").map(|_| String::new());
    for sym in file.symbols() {
        if let Ok(name) = sym.name() {
            if name.starts_with(image::REGION_PREFIX) && sym.section_index().is_some() {
                let addr = symbol_addr(&sym)?;
                by_name.insert(name, addr);
                if let Some(m) = perf_map.as_mut() {
                    m.push_str(&format!("{addr:x} {:x} {name}\n", sym.size()));
                }
            }
        }
    }
    // VMC_PERF_MAP=1: name image regions for `perf report` (/tmp/perf-PID.map).
    if let Some(perf_map) = perf_map {
        let path = format!("/tmp/perf-{}.map", std::process::id());
        if let Err(e) = std::fs::write(&path, perf_map) {
            log::warn!("{path}: {e}");
        }
    }
    for r in &img.map.regions {
        let name = image::region_symbol(r.pc);
        let addr = *by_name
            .get(name.as_str())
            .ok_or(AotError::MissingCode(r.pc))?;
        code.regions.push(AotRegion {
            pc: r.pc,
            code: addr,
            ranges: r.ranges.clone(),
        });
    }
    // SAFETY: our own mapping; from now on it is code, never written again.
    if unsafe { libc::mprotect(base, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(AotError::Map(io::Error::last_os_error()));
    }
    Ok(code)
}
