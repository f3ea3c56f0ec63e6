//! Loading AOT images (`vmrun IMAGE`). Image code is position-independent and needs no
//! linking (see [`vmc_compiler::aot::image`]). The image file is read once, whole, into
//! private anonymous memory ([`ImageMem`]); that copy is verified (signature by a trusted
//! key) and its page-aligned code section is then made read+execute in place. Code is never
//! mapped from the file itself: a private file mapping shows later writes to the file in
//! the pages not yet touched, so the code run could differ from the code verified. The
//! runtime entry points and
//! instruction helpers the code calls are resolved by name once, into the import table the
//! code finds through [`vmc_compiler::lower::JitContext::imports`]. The dispatcher
//! ([`crate::tiers::CodeCache`]) then enters region code by guest PC.
//!
//! Nothing from an image runs unless [`Image::open`] (signature by a trusted key, metadata,
//! embedded guest hash, code section) and [`Image::check_compatible`] (compiler version,
//! host, ABI, layout) passed and every import resolved.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use vmc_compiler::aot::image::{self, Image, ImageError};

use crate::jit::fault::CodeRange;
use crate::jit::slow;

/// Why an image's code cannot be loaded. One line each; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum AotError {
    /// The image was refused (see [`ImageError`]).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The import list names a symbol the runtime does not provide.
    #[error("image needs unknown symbol {0}")]
    UnknownSymbol(String),
    /// Executable memory could not be set up.
    #[error("cannot map code memory: {0}")]
    Map(io::Error),
    /// The image was parsed but not verified ([`Image::open`]): its code may not run.
    #[error("image not verified: its code may not run")]
    Unverified,
}

/// Largest image file read ([`ImageMem::read`]).
const MAX_IMAGE: u64 = 1 << 32;

/// A file's contents read once into private anonymous memory, page-aligned like the file,
/// read-only once read: what is verified is what runs, whatever happens to the file.
pub struct ImageMem {
    ptr: *mut u8,
    /// Bytes of the file read.
    len: usize,
    /// Bytes mapped (whole pages).
    map_len: usize,
}

// SAFETY: the memory is owned by this value and read-only after `read`.
unsafe impl Send for ImageMem {}
// SAFETY: as above: nothing writes it after `read` returns.
unsafe impl Sync for ImageMem {}

impl ImageMem {
    /// Reads `file` whole (from offset 0, whatever its position).
    pub fn read(file: &File) -> io::Result<ImageMem> {
        let size = file.metadata()?.len();
        if size > MAX_IMAGE {
            return Err(io::Error::other(format!(
                "{size} bytes is too large for an image"
            )));
        }
        let size = size as usize;
        let map_len = size.max(1).next_multiple_of(image::CODE_ALIGN as usize);
        // SAFETY: a fresh private anonymous mapping; checked below, owned by the result.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Huge pages where the system allows them: a 10 MB image then takes a few page
        // faults instead of thousands (most of the cost of reading it). Only a hint.
        // SAFETY: advice on our own fresh mapping.
        unsafe { libc::madvise(p, map_len, libc::MADV_HUGEPAGE) };
        let mut mem = ImageMem {
            ptr: p as *mut u8,
            len: 0,
            map_len,
        };
        // SAFETY: the mapping is `map_len >= size` writable bytes, ours alone.
        let buf = unsafe { std::slice::from_raw_parts_mut(mem.ptr, size) };
        // A file that shrinks while read is simply shorter (and fails verification).
        while mem.len < size {
            match file.read_at(&mut buf[mem.len..], mem.len as u64) {
                Ok(0) => break,
                Ok(n) => mem.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // SAFETY: our own mapping; from now on nothing writes it.
        if unsafe { libc::mprotect(p, map_len, libc::PROT_READ) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(mem)
    }

    /// Whether `code` lies in this memory, starting on a page boundary: it can be made
    /// executable in place.
    fn holds_code(&self, code: &[u8]) -> bool {
        let (start, base) = (code.as_ptr() as usize, self.ptr as usize);
        start >= base
            && start + code.len() <= base + self.len
            && (start - base) % image::CODE_ALIGN as usize == 0
    }
}

impl std::ops::Deref for ImageMem {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes of our readable mapping, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for ImageMem {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `map_len` bytes; nothing borrows it any more (code
        // made executable in it is owned through an `Arc` of this value).
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.map_len);
        }
    }
}

/// Where an image's code lives.
enum CodeMem {
    /// A copy, in a mapping of our own.
    Copied,
    /// In place, in the image's memory.
    InPlace(#[allow(dead_code)] Arc<ImageMem>),
}

/// One region of an image, ready to enter.
#[derive(Clone, Debug)]
pub struct AotRegion {
    /// Guest PC of its entry.
    pub pc: u64,
    /// Host address of its code.
    pub code: u64,
    /// Guest ranges it was translated from (code, and the jump tables it folded).
    pub ranges: Vec<(u64, u64)>,
    /// The chain slot of exits to it, if the image's code has one.
    pub slot: Option<u32>,
    /// Index of the region whose code this is: itself, or for a secondary entry (no ranges
    /// of its own) the region it enters, whose invalidation drops it too.
    pub primary: usize,
}

/// An image's code, loaded into this process.
pub struct AotCode {
    base: *mut u8,
    len: usize,
    /// Whose memory `base` is.
    mem: CodeMem,
    /// Regions sorted by guest PC.
    pub regions: Vec<AotRegion>,
    /// Chain-slot targets, sorted: slot `i` exits to guest `slots[i]`.
    pub slots: Vec<u64>,
    /// The import table: addresses of the image's imports, in its order.
    imports: Box<[u64]>,
    /// The code declared to the host-fault handler.
    _range: CodeRange,
}

// SAFETY: the mapping is owned by this value (or by the `ImageMem` it holds) and read-only
// (code) after loading.
unsafe impl Send for AotCode {}
// SAFETY: as above: nothing mutates it after `load` returns.
unsafe impl Sync for AotCode {}

impl AotCode {
    /// Marks dead (in `live`, one flag per region) the live regions translated from guest
    /// code overlapping `[start, end)`, and the secondary entries of those; returns how many.
    pub fn invalidate(&self, live: &mut [bool], start: u64, end: u64) -> usize {
        let mut gone = 0;
        for (r, l) in self.regions.iter().zip(live.iter_mut()) {
            if *l && r.ranges.iter().any(|&(s, t)| s < end && t > start) {
                *l = false;
                gone += 1;
            }
        }
        // Secondary entries go with the region whose code they enter.
        for (i, r) in self.regions.iter().enumerate() {
            if r.primary != i && live[i] && !live[r.primary] {
                live[i] = false;
                gone += 1;
            }
        }
        gone
    }

    /// Index in [`AotCode::regions`] of the region entered at guest `pc`.
    pub fn find(&self, pc: u64) -> Option<usize> {
        self.regions.binary_search_by_key(&pc, |r| r.pc).ok()
    }

    /// Host address of the import table (for [`vmc_compiler::lower::JitContext::imports`]).
    pub fn import_table(&self) -> u64 {
        self.imports.as_ptr() as u64
    }
}

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
        if let CodeMem::Copied = self.mem {
            // SAFETY: `base` is our own mapping of `len` bytes, made by `load`; the code
            // cache that entered it is gone (it holds an `Arc` of this value).
            unsafe {
                libc::munmap(self.base as *mut libc::c_void, self.len);
            }
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

/// Makes `img`'s code executable (after checking it was verified and suits this build) and
/// builds its import table. When `img` was opened from `mem` ([`ImageMem`]) its code pages
/// are made executable there (no copy); otherwise the code is copied into fresh memory.
pub fn load(img: &Image, mem: Option<&Arc<ImageMem>>) -> Result<AotCode, AotError> {
    if img.verified_by().is_none() {
        return Err(AotError::Unverified);
    }
    img.check_compatible()?;
    let imports = img
        .map
        .imports
        .iter()
        .map(|name| resolve(name).ok_or_else(|| AotError::UnknownSymbol(name.clone())))
        .collect::<Result<Box<[u64]>, AotError>>()?;
    let len = img
        .code
        .len()
        .max(1)
        .next_multiple_of(image::CODE_ALIGN as usize);
    let (base, mem) = match mem.filter(|m| m.holds_code(img.code)) {
        Some(m) => (in_place(m, img.code, len)?, CodeMem::InPlace(m.clone())),
        None => (copy_code(img.code, len)?, CodeMem::Copied),
    };
    log::debug!(
        "image code: {} bytes {} at {base:p}, {} imports",
        img.code.len(),
        match mem {
            CodeMem::InPlace(_) => "executable in place",
            CodeMem::Copied => "copied",
        },
        imports.len()
    );
    let host = base as u64;
    // Both lists are sorted (checked when the map was decoded): merge them for the slots.
    let slots = &img.map.slots;
    let mut next = 0;
    let owner: std::collections::HashMap<u64, usize> = img
        .map
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.ranges.is_empty())
        .map(|(i, r)| (r.code, i))
        .collect();
    let regions = img
        .map
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            while next < slots.len() && slots[next] < r.pc {
                next += 1;
            }
            AotRegion {
                pc: r.pc,
                code: host + r.code,
                ranges: r.ranges.clone(),
                slot: (slots.get(next) == Some(&r.pc)).then_some(next as u32),
                primary: if r.ranges.is_empty() {
                    owner.get(&r.code).copied().unwrap_or(i)
                } else {
                    i
                },
            }
        })
        .collect();
    // VMC_PERF_MAP=1: name image regions for `perf report` (/tmp/perf-PID.map).
    if std::env::var_os("VMC_PERF_MAP").is_some() {
        write_perf_map(img, host);
    }
    Ok(AotCode {
        base,
        len,
        mem,
        regions,
        slots: img.map.slots.clone(),
        imports,
        _range: CodeRange::new(host, host + len as u64),
    })
}

/// Makes the `len` bytes (whole pages) at `code`, which `mem` holds, read+execute.
fn in_place(mem: &ImageMem, code: &[u8], len: usize) -> Result<*mut u8, AotError> {
    let start = code.as_ptr() as usize;
    // `code` starts on a page of `mem` and ends inside it, whose mapping is whole pages: so
    // do `len` bytes (the code rounded up to pages; the rest of its last page is verified
    // image bytes too).
    debug_assert!(start + len <= mem.ptr as usize + mem.map_len);
    // SAFETY: whole pages inside `mem`'s mapping (`holds_code`), which stays mapped while
    // the result lives (it holds an `Arc` of `mem`); they were read-only, now also
    // executable, never writable again.
    if unsafe {
        libc::mprotect(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_EXEC,
        )
    } != 0
    {
        return Err(AotError::Map(io::Error::last_os_error()));
    }
    Ok(start as *mut u8)
}

/// Copies `code` into a fresh read+execute mapping of `len` bytes.
fn copy_code(code: &[u8], len: usize) -> Result<*mut u8, AotError> {
    // SAFETY: a fresh private anonymous mapping; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(AotError::Map(io::Error::last_os_error()));
    }
    // SAFETY: the mapping is `len >= code.len()` writable bytes, ours alone.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p as *mut u8, code.len()) };
    // SAFETY: our own mapping; from now on it is code, never written again.
    if unsafe { libc::mprotect(p, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        let e = io::Error::last_os_error();
        // SAFETY: our own mapping, not referenced anywhere else.
        unsafe { libc::munmap(p, len) };
        return Err(AotError::Map(e));
    }
    Ok(p as *mut u8)
}

/// Writes `/tmp/perf-PID.map` naming the image's regions at their host addresses.
fn write_perf_map(img: &Image, host: u64) {
    let mut out = String::new();
    // Secondary entries share their region's code: name each function once.
    let mut regions: Vec<_> = img
        .map
        .regions
        .iter()
        .filter(|r| r.guest_insns > 0)
        .collect();
    regions.sort_by_key(|r| r.code);
    for (i, r) in regions.iter().enumerate() {
        let end = regions.get(i + 1).map_or(img.code.len() as u64, |n| n.code);
        out.push_str(&format!(
            "{:x} {:x} {}\n",
            host + r.code,
            end - r.code,
            image::region_symbol(r.pc)
        ));
    }
    let path = format!("/tmp/perf-{}.map", std::process::id());
    if let Err(e) = std::fs::write(&path, out) {
        log::warn!("{path}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmc_compiler::aot::sign::{SigningKey, TrustedKeys};
    use vmc_compiler::aot::translate::{translate, Options};

    fn key() -> Arc<SigningKey> {
        Arc::new(SigningKey::from_seed([7; 32]))
    }

    fn trusted() -> TrustedKeys {
        TrustedKeys::of(&[key().public()])
    }

    fn demo_image() -> Vec<u8> {
        let elf = include_bytes!("../../vmrun/demo.elf");
        let opts = Options {
            jobs: 1,
            key: Some(key()),
            ..Options::default()
        };
        translate(elf, "demo", &opts)
            .expect("demo translates")
            .image
    }

    fn code_at(code: &AotCode, addr: u64, len: usize) -> &[u8] {
        let off = (addr - code.base as u64) as usize;
        assert!(off + len <= code.len, "region code beyond the mapping");
        // SAFETY: checked just above to lie inside the readable mapping `code` owns.
        unsafe { std::slice::from_raw_parts(code.base.add(off), len) }
    }

    #[test]
    fn in_place_and_copied_code_are_the_image_code() {
        let bytes = demo_image();
        let path = std::env::temp_dir().join(format!("vmc-aot-load-{}.aot", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let mem = Arc::new(ImageMem::read(&File::open(&path).unwrap()).unwrap());
        // Rewriting the file after it was read changes nothing that runs.
        std::fs::write(&path, vec![0xcc; bytes.len()]).unwrap();
        assert!(mem[..] == bytes[..]);
        let img = Image::open(&mem, &trusted()).unwrap();
        assert_eq!(img.code_offset % image::CODE_ALIGN as usize, 0);
        let mapped = load(&img, Some(&mem)).unwrap();
        assert!(matches!(mapped.mem, CodeMem::InPlace(_)));
        assert_eq!(mapped.base as usize, img.code.as_ptr() as usize);
        let copied = load(&img, None).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!img.map.regions.is_empty());
        assert_eq!(mapped.regions.len(), img.map.regions.len());
        for ((m, c), r) in mapped
            .regions
            .iter()
            .zip(&copied.regions)
            .zip(&img.map.regions)
        {
            let want = &img.code[r.code as usize..][..16.min(img.code.len() - r.code as usize)];
            assert_eq!(code_at(&mapped, m.code, want.len()), want, "{:#x}", r.pc);
            assert_eq!(code_at(&copied, c.code, want.len()), want, "{:#x}", r.pc);
        }
        assert_eq!(mapped.imports, copied.imports);
        assert_eq!(mapped.imports.len(), img.map.imports.len());
        assert!(mapped.imports.iter().all(|&a| a != 0));
    }

    #[test]
    fn secondary_entries_share_their_region_and_die_with_it() {
        let bytes = demo_image();
        let img = Image::open(&bytes, &trusted()).unwrap();
        let code = load(&img, None).unwrap();
        let aliases: Vec<usize> = (0..code.regions.len())
            .filter(|&i| code.regions[i].primary != i)
            .collect();
        assert!(!aliases.is_empty(), "the demo's calls have return sites");
        for &i in &aliases {
            let (a, p) = (&code.regions[i], &code.regions[code.regions[i].primary]);
            assert!(a.ranges.is_empty() && !p.ranges.is_empty());
            assert_eq!(a.code, p.code, "{:#x} enters {:#x}'s code", a.pc, p.pc);
            assert!(p.ranges.iter().any(|&(s, e)| (s..e).contains(&a.pc)));
        }
        // Writing one instruction of a region with secondary entries kills exactly the
        // region and those entries.
        let victim = code.regions[aliases[0]].primary;
        let (s, _) = code.regions[victim].ranges[0];
        let mut live = vec![true; code.regions.len()];
        let gone = code.invalidate(&mut live, s, s + 4);
        let dead: Vec<usize> = (0..live.len()).filter(|&i| !live[i]).collect();
        assert_eq!(gone, dead.len());
        assert!(dead.contains(&victim));
        for (i, r) in code.regions.iter().enumerate() {
            let hit = r.ranges.iter().any(|&(a, b)| a < s + 4 && b > s);
            assert_eq!(!live[i], hit || r.primary == victim, "region {:#x}", r.pc);
        }
    }

    #[test]
    fn unknown_imports_are_refused() {
        let bytes = demo_image();
        let mut img = Image::open(&bytes, &trusted()).unwrap();
        img.map
            .imports
            .push(format!("{}no_such_helper", image::HELPER_PREFIX));
        let e = load(&img, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown symbol vmc_helper_no_such_helper"),
            "{e}"
        );
    }

    #[test]
    fn unverified_or_untrusted_images_do_not_load() {
        let bytes = demo_image();
        let img = Image::parse(&bytes).unwrap();
        assert!(matches!(load(&img, None), Err(AotError::Unverified)));
        let other = TrustedKeys::of(&[SigningKey::from_seed([8; 32]).public()]);
        assert!(matches!(
            Image::open(&bytes, &other),
            Err(ImageError::UntrustedKey { .. })
        ));
    }
}
