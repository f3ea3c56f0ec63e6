//! Code discovery: finds the guest code of a static AArch64 executable by recursive descent.
//!
//! Roots are the ELF entry point, `STT_FUNC` symbols, `.eh_frame` FDE start addresses and, in
//! a non-PIE executable, the code addresses its data sections hold (function pointers in
//! tables such as busybox's applet list, vtables, init arrays: 8-byte aligned words that are
//! 4-byte aligned addresses inside executable code, outside the code found from the other
//! roots). Each
//! root's block is translated exactly as the runtime translates it
//! ([`a64::translate_block_limit`] with [`a64::MAX_BLOCK_INSNS`], from the bytes the loader
//! maps, at the addresses it maps them), and the descent follows direct jumps, conditional
//! branches, call targets, call return sites and system-call fallthroughs. Indirect branches
//! are resolved where a backward scan recognises a compiler switch (jump table) or a pointer
//! loaded from a constant address. Nothing is swept linearly: only addresses reached this way
//! become blocks, so literal pools and tables between functions are not decoded as code
//! (unless a data word that merely looks like a code address points at one: its blocks are
//! translated but never entered, since no guest branch goes there).
//!
//! Misses are safe (the runtime translates unknown targets when they run). A branch into the
//! middle of a block starts a new one, as at run time; the block before then ends there
//! (blocks never overlap: no instruction is translated twice).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use object::elf::{FileHeader64, ET_DYN, ET_EXEC, PT_INTERP, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::LittleEndian as LE;

use crate::a64;
use crate::ir::{self, BranchKind, Op, TrapKind};
use crate::layout;

/// Why a guest binary cannot be analysed (one line each, the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The file does not start with the ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// The file ends before its headers or segments do.
    #[error("truncated ELF file ({0})")]
    Truncated(&'static str),
    /// A 32-bit ELF (e.g. AArch32).
    #[error("32-bit ELF; only 64-bit AArch64 programs are supported")]
    Elf32,
    /// A big-endian ELF.
    #[error("big-endian ELF; only little-endian AArch64 is supported")]
    BigEndian,
    /// An ELF for another instruction set.
    #[error("ELF for machine type {0}, not AArch64")]
    WrongIsa(u16),
    /// Not an executable (a relocatable object, core file, ...).
    #[error("ELF type {0} is not an executable")]
    NotExecutable(u16),
    /// A dynamically linked program (it has a `PT_INTERP`): only static binaries are analysed.
    #[error("dynamically linked program; only static binaries can be translated ahead of time")]
    Dynamic,
    /// A program header that the loader would reject.
    #[error("bad program header: {0}")]
    BadSegment(String),
    /// No executable `PT_LOAD` segment with file contents.
    #[error("no executable segment")]
    NoCode,
    /// The entry point is not inside an executable segment.
    #[error("entry point {0:#x} is not in an executable segment")]
    BadEntry(u64),
}

/// Ends every block where the next block (by address) starts inside it: a branch into the
/// middle of a block made that one, which translates the rest anyway. Blocks then never
/// overlap, so no guest instruction is translated twice and the code before a function entry
/// (padding, a call to a function that never returns) does not run on into the function.
/// `blocks` is sorted by pc.
fn split_overlaps(blocks: &mut [ir::Block]) {
    for i in 1..blocks.len() {
        let next = blocks[i].pc;
        let b = &mut blocks[i - 1];
        if b.has_inner_insn(next) {
            b.end_before(next);
        }
    }
}

/// What discovery found in a guest binary.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Run-time address of the ELF entry point.
    pub entry: u64,
    /// Load bias added to the file's addresses (0 for ET_EXEC, layout::PIE_BASE for ET_DYN).
    pub bias: u64,
    /// IR blocks found, sorted by pc, each as `a64::translate_block_limit(.., pc,
    /// a64::MAX_BLOCK_INSNS)` builds it at run time, but ending where the next block starts
    /// (blocks never overlap).
    pub blocks: Vec<ir::Block>,
    /// Function entries (ELF entry, STT_FUNC symbols, .eh_frame FDE starts, BL targets),
    /// sorted, deduplicated.
    pub functions: Vec<u64>,
    /// Addresses that can be entered from outside straight-line flow: function entries, return
    /// sites after calls (BL/BLR; not after a BL to a function that never returns),
    /// jump-table targets, indirect-branch targets found; sorted, deduplicated.
    pub entries: Vec<u64>,
    /// Function entries from which no path reaches a return (`exit`, `abort`, ...): the code
    /// after a call to one is not a return site. Sorted.
    pub noreturn: Vec<u64>,
    /// Recovered jump tables, sorted by the address of their indirect branch.
    pub jump_tables: Vec<JumpTable>,
    /// Statistics for the report.
    pub stats: DiscoveryStats,
}

/// A switch dispatch recovered from the code: `BR` at `branch` goes to one of `targets`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct JumpTable {
    /// Address of the indirect branch.
    pub branch: u64,
    /// Address of the table in guest memory.
    pub table: u64,
    /// Number of table entries (the bound check's maximum index plus one).
    pub len: u64,
    /// Bytes per entry.
    pub size: u8,
    /// The `len` entries as loaded (zero-extended) when the table lies in read-only memory
    /// (`Image::is_fixed`): a translation may then fold them, with the table among its
    /// guest ranges so that changing it invalidates the code. Empty otherwise.
    #[serde(skip)]
    pub entries: Vec<u64>,
    /// Distinct valid targets, sorted.
    pub targets: Vec<u64>,
}

/// Discovery statistics for the report.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DiscoveryStats {
    /// Bytes of executable code: the `SHF_EXECINSTR` sections inside executable segments, or
    /// the executable segments' file bytes when there are no section headers.
    pub exec_bytes: u64,
    /// File bytes of the executable `PT_LOAD` segments (they often hold read-only data too).
    pub exec_segment_bytes: u64,
    /// Distinct instructions covered by discovered blocks.
    pub guest_insns: u64,
    /// Blocks discovered.
    pub blocks: u64,
    /// Function entries.
    pub functions: u64,
    /// `STT_FUNC` (and `STT_GNU_IFUNC`) symbols used as roots.
    pub symbols: u64,
    /// `.eh_frame` FDEs used as roots.
    pub fdes: u64,
    /// Indirect branches resolved as jump tables.
    pub jump_tables: u64,
    /// Distinct jump-table targets.
    pub jump_table_targets: u64,
    /// Indirect branches and calls resolved to a pointer loaded from a constant address.
    pub indirect_resolved: u64,
    /// Blocks ending in an undefined-instruction trap.
    pub undecodable: u64,
    /// Entries added from a profile (run-time indirect targets and entries that static
    /// discovery had not found).
    pub profile_entries: u64,
    /// Functions found never to return.
    #[serde(default)]
    pub noreturn: u64,
    /// Code addresses found in data sections and used as roots (new code only).
    #[serde(default)]
    pub data_pointers: u64,
    /// Code addresses formed in code (`adrp` + `add`) and used as roots (new code only).
    #[serde(default)]
    pub formed_pointers: u64,
}

impl DiscoveryStats {
    /// Share of executable bytes covered by discovered instructions (0..=1).
    pub fn coverage(&self) -> f64 {
        if self.exec_bytes == 0 {
            return 0.0;
        }
        (self.guest_insns as f64 * 4.0 / self.exec_bytes as f64).clamp(0.0, 1.0)
    }
}

/// One `PT_LOAD` segment at its run-time address.
#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    filesz: u64,
    offset: u64,
    exec: bool,
    write: bool,
}

/// The guest memory image as the loader builds it (before the program runs).
struct Image<'a> {
    data: &'a [u8],
    segs: Vec<Segment>,
    /// Page-rounded ranges that are mapped executable.
    exec_pages: Vec<(u64, u64)>,
    /// File-backed bytes of executable segments: where code may start.
    code: Vec<(u64, u64)>,
}

impl Image<'_> {
    /// Reads `len` (1..=8) bytes at `addr` from the file-backed part of a segment.
    fn read(&self, addr: u64, len: u64) -> Option<u64> {
        let end = addr.checked_add(len)?;
        let seg = self
            .segs
            .iter()
            .rev()
            .find(|s| addr >= s.vaddr && end <= s.vaddr + s.filesz)?;
        let off = (seg.offset + (addr - seg.vaddr)) as usize;
        let bytes = self.data.get(off..off + len as usize)?;
        let mut v = [0u8; 8];
        v[..bytes.len()].copy_from_slice(bytes);
        Some(u64::from_le_bytes(v))
    }

    /// The instruction word the runtime fetches at `pc`: executable pages hold the segments'
    /// file bytes and zeros elsewhere.
    fn fetch(&self, pc: u64) -> Option<u32> {
        if !self
            .exec_pages
            .iter()
            .any(|&(s, e)| pc >= s && pc.checked_add(4).is_some_and(|end| end <= e))
        {
            return None;
        }
        Some(self.read(pc, 4).unwrap_or(0) as u32)
    }

    /// Whether `[addr, addr+len)` holds file bytes of a read-only segment on pages no
    /// writable segment shares: the program cannot change them without `mprotect`.
    fn is_fixed(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let page = |a: u64| a & !(layout::PAGE - 1);
        let in_file = self
            .segs
            .iter()
            .any(|s| !s.write && addr >= s.vaddr && end <= s.vaddr + s.filesz);
        let shared = self.segs.iter().any(|s| {
            s.write && page(s.vaddr) < end && page(s.vaddr + s.memsz + layout::PAGE - 1) > addr
        });
        in_file && !shared
    }

    /// Whether code may start at `pc`: aligned and in an executable segment's file bytes.
    fn is_code(&self, pc: u64) -> bool {
        pc & 3 == 0 && self.code.iter().any(|&(s, e)| pc >= s && pc < e)
    }
}

fn check_header(data: &[u8]) -> Result<&FileHeader64<LE>, DiscoverError> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(DiscoverError::NotElf);
    }
    if data.len() < 20 {
        return Err(DiscoverError::Truncated("ELF identification"));
    }
    if data[4] == 1 {
        return Err(DiscoverError::Elf32);
    }
    if data[5] == 2 {
        return Err(DiscoverError::BigEndian);
    }
    let hdr =
        FileHeader64::<LE>::parse(data).map_err(|_| DiscoverError::Truncated("ELF header"))?;
    let m = hdr.e_machine(LE);
    if m != object::elf::EM_AARCH64 {
        return Err(DiscoverError::WrongIsa(m));
    }
    let t = hdr.e_type(LE);
    if t != ET_EXEC && t != ET_DYN {
        return Err(DiscoverError::NotExecutable(t));
    }
    Ok(hdr)
}

fn load_image(data: &[u8]) -> Result<(Image<'_>, &FileHeader64<LE>, u64), DiscoverError> {
    let hdr = check_header(data)?;
    let phdrs = hdr
        .program_headers(LE, data)
        .map_err(|_| DiscoverError::Truncated("program headers"))?;
    if phdrs.iter().any(|p| p.p_type(LE) == PT_INTERP) {
        return Err(DiscoverError::Dynamic);
    }
    let bias = if hdr.e_type(LE) == ET_DYN {
        layout::PIE_BASE
    } else {
        0
    };
    let mut segs = Vec::new();
    for p in phdrs.iter().filter(|p| p.p_type(LE) == PT_LOAD) {
        let (vaddr, memsz, filesz, offset) =
            (p.p_vaddr(LE), p.p_memsz(LE), p.p_filesz(LE), p.p_offset(LE));
        let start = vaddr
            .checked_add(bias)
            .filter(|s| *s < layout::GUEST_SPACE)
            .ok_or_else(|| DiscoverError::BadSegment(format!("address {vaddr:#x} out of range")))?;
        if start
            .checked_add(memsz)
            .is_none_or(|e| e > layout::GUEST_SPACE)
        {
            return Err(DiscoverError::BadSegment(format!(
                "segment at {vaddr:#x} size {memsz:#x} is out of range"
            )));
        }
        if filesz > memsz {
            return Err(DiscoverError::BadSegment(format!(
                "segment at {vaddr:#x} has filesz > memsz"
            )));
        }
        let offset = if filesz == 0 { 0 } else { offset };
        if offset
            .checked_add(filesz)
            .is_none_or(|e| e > data.len() as u64)
        {
            return Err(DiscoverError::Truncated("segment data"));
        }
        segs.push(Segment {
            vaddr: start,
            memsz,
            filesz,
            offset,
            exec: p.p_flags(LE) & object::elf::PF_X != 0,
            write: p.p_flags(LE) & object::elf::PF_W != 0,
        });
    }
    if segs.is_empty() {
        return Err(DiscoverError::BadSegment("no PT_LOAD segment".into()));
    }
    let page = layout::PAGE;
    let exec_pages = segs
        .iter()
        .filter(|s| s.exec && s.memsz > 0)
        .map(|s| {
            (
                s.vaddr & !(page - 1),
                (s.vaddr + s.memsz).next_multiple_of(page),
            )
        })
        .collect();
    let code: Vec<(u64, u64)> = segs
        .iter()
        .filter(|s| s.exec && s.filesz > 0)
        .map(|s| (s.vaddr, s.vaddr + s.filesz))
        .collect();
    if code.is_empty() {
        return Err(DiscoverError::NoCode);
    }
    Ok((
        Image {
            data,
            segs,
            exec_pages,
            code,
        },
        hdr,
        bias,
    ))
}

/// Analyses a static AArch64 executable: see the module documentation.
pub fn discover(elf: &[u8]) -> Result<Discovery, DiscoverError> {
    discover_with(elf, &Hints::default())
}

/// Code addresses known from running the program (a profile): they complete what static
/// discovery can see.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// Targets indirect branches reached: each is an entry.
    pub indirect_targets: Vec<u64>,
    /// Addresses the runtime entered from its dispatcher. Those that do not start a block
    /// found statically (code reached only through computed addresses, resumption points)
    /// become entries; the rest were entered only because of how the JIT cut its blocks.
    pub entries: Vec<u64>,
}

/// [`discover`], with roots from a run of the program.
pub fn discover_with(elf: &[u8], hints: &Hints) -> Result<Discovery, DiscoverError> {
    let (img, hdr, bias) = load_image(elf)?;
    let entry = hdr.e_entry(LE).wrapping_add(bias);
    if !img.is_code(entry) {
        return Err(DiscoverError::BadEntry(entry));
    }
    let mut stats = DiscoveryStats {
        exec_segment_bytes: img.code.iter().map(|(s, e)| e - s).sum(),
        ..Default::default()
    };
    let mut d = Descent::new(&img);
    d.add_function(entry);

    // Hints from the section headers: symbols, .eh_frame, executable section sizes.
    let mut exec_section_bytes = 0;
    let mut data_pointers = Vec::new();
    // Executable sections (the executable segment also holds read-only data).
    let mut exec_ranges = Vec::new();
    if let Ok(sections) = hdr.sections(LE, elf) {
        for s in sections.iter() {
            let flags = s.sh_flags(LE);
            if flags & u64::from(object::elf::SHF_EXECINSTR) != 0
                && s.sh_type(LE) != object::elf::SHT_NOBITS
            {
                let start = s.sh_addr(LE).wrapping_add(bias);
                let end = start.saturating_add(s.sh_size(LE));
                exec_ranges.push(start..end);
                exec_section_bytes += img
                    .code
                    .iter()
                    .map(|&(cs, ce)| end.min(ce).saturating_sub(start.max(cs)))
                    .sum::<u64>();
            }
        }
        if let Ok(symbols) = sections.symbols(LE, elf, object::elf::SHT_SYMTAB) {
            for sym in symbols.iter() {
                let t = sym.st_type();
                if (t == object::elf::STT_FUNC || t == object::elf::STT_GNU_IFUNC)
                    && sym.st_shndx(LE) != object::elf::SHN_UNDEF
                    && sym.st_value(LE) != 0
                {
                    let addr = sym.st_value(LE).wrapping_add(bias);
                    if img.is_code(addr) {
                        stats.symbols += 1;
                        d.add_function(addr);
                    }
                }
            }
        }
        if let Some((_, s)) = sections.section_by_name(LE, b".eh_frame") {
            if let Ok(bytes) = s.data(LE, elf) {
                for addr in fde_starts(bytes, s.sh_addr(LE).wrapping_add(bias)) {
                    if img.is_code(addr) {
                        stats.fdes += 1;
                        d.add_function(addr);
                    }
                }
            }
        }
        // Pointers in data hold final addresses only without a load bias (a PIE's are
        // relocations, not read here).
        if bias == 0 {
            for s in sections.iter() {
                let flags = s.sh_flags(LE);
                let data_section = matches!(
                    s.sh_type(LE),
                    object::elf::SHT_PROGBITS
                        | object::elf::SHT_INIT_ARRAY
                        | object::elf::SHT_FINI_ARRAY
                        | object::elf::SHT_PREINIT_ARRAY
                ) && flags & u64::from(object::elf::SHF_ALLOC) != 0
                    && flags & u64::from(object::elf::SHF_EXECINSTR) == 0;
                let Some(bytes) = data_section.then(|| s.data(LE, elf).ok()).flatten() else {
                    continue;
                };
                let start = s.sh_addr(LE);
                let skip = (8 - (start % 8) as usize) % 8;
                for w in bytes.get(skip..).unwrap_or(&[]).chunks_exact(8) {
                    let addr = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                    let in_code = exec_ranges.iter().any(|r| r.contains(&addr));
                    if addr % 4 == 0 && in_code && img.is_code(addr) {
                        data_pointers.push(addr);
                    }
                }
            }
        }
    }
    stats.exec_bytes = if exec_section_bytes > 0 {
        exec_section_bytes
    } else {
        stats.exec_segment_bytes
    };

    for &t in &hints.indirect_targets {
        if !d.entries.contains(&t) && !d.call_returns.contains_key(&t) && img.is_code(t) {
            stats.profile_entries += 1;
            d.add_entry(t);
        }
    }
    d.run();
    // Code addresses in data that the descent has not reached are functions of their own
    // (those inside found code, e.g. label addresses of a computed goto, change nothing).
    data_pointers.sort_unstable();
    data_pointers.dedup();
    let outside: Vec<u64> = data_pointers
        .into_iter()
        .filter(|&a| !d.in_found_code(a))
        .collect();
    if !outside.is_empty() {
        stats.data_pointers = outside.len() as u64;
        for a in outside {
            d.add_function(a);
        }
        d.run();
    }
    // Code addresses formed in code (a function passed as an argument or stored at run
    // time: `adrp` + `add`), inside executable sections (never read-only data the segment
    // also holds) and outside the code found so far; what they lead to may form more.
    for _ in 0..MAX_FORMED_ROUNDS {
        let formed: Vec<u64> = d
            .formed_addresses()
            .into_iter()
            .filter(|&a| exec_ranges.iter().any(|r| r.contains(&a)) && img.is_code(a))
            .filter(|&a| !d.in_found_code(a))
            .collect();
        if formed.is_empty() {
            break;
        }
        stats.formed_pointers += formed.len() as u64;
        for a in formed {
            d.add_function(a);
        }
        d.run();
    }
    let unseen: Vec<u64> = hints
        .entries
        .iter()
        .copied()
        .filter(|pc| !d.blocks.contains_key(pc) && img.is_code(*pc))
        .collect();
    if !unseen.is_empty() {
        stats.profile_entries += unseen.len() as u64;
        for pc in unseen {
            d.add_entry(pc);
        }
        d.run();
    }

    // Return sites of direct calls are entries unless the callee never returns.
    let tables: HashMap<u64, &[u64]> = d
        .tables
        .values()
        .map(|t| (t.branch, t.targets.as_slice()))
        .collect();
    let noreturn = noreturn_functions(&d.blocks, &d.functions, &tables);
    for (&site, callee) in &d.call_returns {
        if !noreturn.contains(callee) {
            d.entries.insert(site);
        }
    }
    stats.noreturn = noreturn.len() as u64;

    let mut blocks: Vec<ir::Block> = std::mem::take(&mut d.blocks).into_values().collect();
    split_overlaps(&mut blocks);
    let mut covered_end = 0u64;
    for b in &blocks {
        let r = b.guest_range();
        let start = r.start.max(covered_end);
        if r.end > start {
            stats.guest_insns += (r.end - start) / 4;
        }
        covered_end = covered_end.max(r.end);
        if matches!(
            b.ops.last(),
            Some(Op::Trap {
                kind: TrapKind::Undefined,
                ..
            })
        ) {
            stats.undecodable += 1;
        }
    }
    let jump_tables: Vec<JumpTable> = d.tables.into_values().collect();
    stats.blocks = blocks.len() as u64;
    stats.functions = d.functions.len() as u64;
    stats.jump_tables = jump_tables.len() as u64;
    stats.jump_table_targets = jump_tables
        .iter()
        .flat_map(|t| t.targets.iter())
        .collect::<BTreeSet<_>>()
        .len() as u64;
    stats.indirect_resolved = d.indirect_resolved;
    Ok(Discovery {
        entry,
        bias,
        blocks,
        functions: d.functions.into_iter().collect(),
        entries: d.entries.into_iter().collect(),
        noreturn: noreturn.into_iter().collect(),
        jump_tables,
        stats,
    })
}

/// Most blocks [`noreturn_functions`] follows from one function before assuming it returns.
const NORETURN_SCAN_BLOCKS: usize = 4096;

/// The functions from which no path reaches a return. A path follows branches, jump tables
/// and tail jumps, continues after calls except calls to functions already found not to
/// return (iterated to a fixed point: `exit` never returns because the function it ends in
/// does not), and ends at traps. A return, an unresolved indirect jump, a block not
/// discovered or a very long scan counts as returning: a wrong "returns" only costs a region
/// split, a wrong "never returns" a trip through the JIT, never a wrong result.
fn noreturn_functions(
    blocks: &BTreeMap<u64, ir::Block>,
    functions: &BTreeSet<u64>,
    tables: &HashMap<u64, &[u64]>,
) -> BTreeSet<u64> {
    let may_return = |f: u64, noreturn: &BTreeSet<u64>| -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![f];
        while let Some(pc) = stack.pop() {
            if !seen.insert(pc) {
                continue;
            }
            if seen.len() > NORETURN_SCAN_BLOCKS {
                return true;
            }
            let Some(b) = blocks.get(&pc) else {
                return true;
            };
            let next = b.guest_range().end;
            match b.ops.last() {
                Some(Op::Jump {
                    target,
                    kind: BranchKind::Call,
                }) => {
                    if !noreturn.contains(target) {
                        stack.push(next);
                    }
                }
                Some(Op::Jump { target, .. }) => stack.push(*target),
                Some(Op::Branch {
                    taken, fallthrough, ..
                }) => stack.extend([*taken, *fallthrough]),
                Some(Op::JumpReg {
                    kind: BranchKind::Call,
                    ..
                }) => stack.push(next),
                Some(Op::JumpReg {
                    kind: BranchKind::Jump,
                    ..
                }) => match b.last_insn_pc().and_then(|at| tables.get(&at)) {
                    Some(targets) => stack.extend(targets.iter()),
                    None => return true,
                },
                Some(Op::Syscall { next }) => stack.push(*next),
                Some(Op::Trap { .. }) => {}
                _ => return true,
            }
        }
        false
    };
    let mut noreturn = BTreeSet::new();
    loop {
        let found: Vec<u64> = functions
            .iter()
            .copied()
            .filter(|&f| !noreturn.contains(&f) && !may_return(f, &noreturn))
            .collect();
        if found.is_empty() {
            return noreturn;
        }
        noreturn.extend(found);
    }
}

/// Start addresses of the FDEs in an `.eh_frame` section loaded at `addr`. Corrupt entries
/// are skipped; a corrupt entry header ends the walk.
fn fde_starts(section: &[u8], addr: u64) -> Vec<u64> {
    use gimli::UnwindSection;
    let mut eh = gimli::EhFrame::new(section, gimli::LittleEndian);
    eh.set_address_size(8);
    let bases = gimli::BaseAddresses::default().set_eh_frame(addr);
    let mut out = Vec::new();
    let mut entries = eh.entries(&bases);
    while let Ok(Some(entry)) = entries.next() {
        if let gimli::CieOrFde::Fde(partial) = entry {
            if let Ok(fde) = partial.parse(|s, b, o| s.cie_from_offset(b, o)) {
                out.push(fde.initial_address());
            }
        }
    }
    out
}

/// Blocks visited by one backward search (bounds the cost of resolving one branch).
const SEARCH_BUDGET: u32 = 24;
/// Predecessor blocks a backward search may cross.
const SEARCH_DEPTH: u32 = 4;
/// Most rounds of descent from code addresses formed in code.
const MAX_FORMED_ROUNDS: usize = 8;

/// Most entries accepted in one jump table.
const MAX_TABLE_ENTRIES: u64 = 1 << 14;

/// The recursive descent's state.
struct Descent<'a> {
    img: &'a Image<'a>,
    blocks: BTreeMap<u64, ir::Block>,
    /// Instruction words of each block (its `Op::Insn` markers), for the backward scans.
    words: HashMap<u64, Vec<u32>>,
    /// Block pcs that continue into a block with their registers intact (jumps, branches,
    /// straight-line continuation), by successor.
    preds: HashMap<u64, Vec<u64>>,
    queued: HashSet<u64>,
    work: Vec<u64>,
    functions: BTreeSet<u64>,
    entries: BTreeSet<u64>,
    /// Return sites of direct calls, with the function called (entries unless it never
    /// returns, decided once everything is found).
    call_returns: BTreeMap<u64, u64>,
    /// Blocks ending in an indirect jump or call, by pc.
    indirect: BTreeSet<u64>,
    /// Indirect branch pcs already resolved.
    resolved: HashSet<u64>,
    tables: BTreeMap<u64, JumpTable>,
    indirect_resolved: u64,
}

/// What a backward scan callback decides at one instruction.
enum Step<T> {
    /// Keep scanning backward.
    Continue,
    /// This path ends with a result.
    Found(T),
    /// This path gives up.
    Stop,
}

/// An instruction met by a backward scan.
#[derive(Clone, Copy, Debug)]
struct Site {
    /// Block holding the instruction.
    block: u64,
    /// Index of the instruction in the block.
    idx: usize,
    /// The instruction word.
    insn: u32,
    /// The block the scan came from when it crossed into `block` (`None` in the first one).
    from: Option<u64>,
}

/// A table load: `ldr{b,h,sb,sh,sw,} Rt, [table, idx, ext #scale]` with a known bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TableLoad {
    table: u64,
    /// Entries (maximum index + 1).
    len: u64,
    /// log2 of the entry stride.
    scale: u32,
    /// Bytes per entry.
    size: u32,
    /// LDR opc: 1 zero-extend, 2 sign-extend to 64 bits, 3 sign-extend to 32 bits.
    opc: u32,
}

/// A symbolic register value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    /// A known constant.
    Const(u64),
    /// An entry of a table.
    Entry(TableLoad),
    /// `base + extend(entry) << shift` (a relative jump table).
    Rel {
        base: u64,
        entry: TableLoad,
        ext: u32,
        shift: u32,
    },
}

impl<'a> Descent<'a> {
    fn new(img: &'a Image<'a>) -> Self {
        Descent {
            img,
            blocks: BTreeMap::new(),
            words: HashMap::new(),
            preds: HashMap::new(),
            queued: HashSet::new(),
            work: Vec::new(),
            functions: BTreeSet::new(),
            entries: BTreeSet::new(),
            call_returns: BTreeMap::new(),
            indirect: BTreeSet::new(),
            resolved: HashSet::new(),
            tables: BTreeMap::new(),
            indirect_resolved: 0,
        }
    }

    fn enqueue(&mut self, pc: u64) -> bool {
        if !self.img.is_code(pc) {
            return false;
        }
        if self.queued.insert(pc) {
            self.work.push(pc);
        }
        true
    }

    fn add_entry(&mut self, pc: u64) {
        if self.enqueue(pc) {
            self.entries.insert(pc);
        }
    }

    fn add_function(&mut self, pc: u64) {
        if self.enqueue(pc) {
            self.entries.insert(pc);
            self.functions.insert(pc);
        }
    }

    fn add_edge(&mut self, from: u64, to: u64) {
        if self.enqueue(to) {
            self.preds.entry(to).or_default().push(from);
        }
    }

    /// Descends until no new block is found, resolving indirect branches between rounds.
    fn run(&mut self) {
        loop {
            while let Some(pc) = self.work.pop() {
                self.visit(pc);
            }
            let pending: Vec<u64> = self.indirect.iter().copied().collect();
            for pc in pending {
                self.resolve(pc);
            }
            if self.work.is_empty() {
                break;
            }
        }
    }

    fn visit(&mut self, pc: u64) {
        let img = self.img;
        let mut fetch = |a: u64| img.fetch(a);
        let block = a64::translate_block_limit(&mut fetch, pc, a64::MAX_BLOCK_INSNS);
        let words: Vec<u32> = block
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Insn { insn, .. } => Some(*insn),
                _ => None,
            })
            .collect();
        let next = block.guest_range().end;
        match block.ops.last() {
            Some(&Op::Jump { target, kind }) => match kind {
                BranchKind::Call => {
                    self.add_function(target);
                    if self.enqueue(next) {
                        self.call_returns.insert(next, target);
                    }
                }
                _ => self.add_edge(pc, target),
            },
            Some(&Op::Branch {
                taken, fallthrough, ..
            }) => {
                self.add_edge(pc, taken);
                self.add_edge(pc, fallthrough);
            }
            Some(&Op::JumpReg { kind, .. }) => match kind {
                BranchKind::Call => {
                    self.add_entry(next);
                    self.indirect.insert(pc);
                }
                BranchKind::Jump => {
                    self.indirect.insert(pc);
                }
                BranchKind::Return => {}
            },
            Some(&Op::Syscall { next }) => {
                self.enqueue(next);
            }
            _ => {}
        }
        self.words.insert(pc, words);
        self.blocks.insert(pc, block);
    }

    /// Whether `a` lies inside a block found so far.
    fn in_found_code(&self, a: u64) -> bool {
        self.blocks
            .range(..=a)
            .next_back()
            .is_some_and(|(_, b)| b.guest_range().contains(&a))
    }

    /// The addresses `adrp xN, page` then `add xM, xN, #imm` (no write to xN between) form
    /// inside a block, over all blocks; sorted, deduplicated.
    fn formed_addresses(&self) -> Vec<u64> {
        let mut out = BTreeSet::new();
        for (&pc, words) in &self.words {
            let mut page: [Option<u64>; 32] = [None; 32];
            for (i, &w) in words.iter().enumerate() {
                let at = pc + 4 * i as u64;
                let rd = (w & 31) as usize;
                if w & 0x9f00_0000 == 0x9000_0000 {
                    // ADRP: immhi:immlo, a signed count of 4 KiB pages.
                    let imm = ((w >> 5) & 0x7_ffff) << 2 | (w >> 29) & 3;
                    let off = (sext(u64::from(imm), 21) as u64) << 12;
                    page[rd] = Some((at & !0xfff).wrapping_add(off));
                    continue;
                }
                if w & 0xffc0_0000 == 0x9100_0000 {
                    // ADD (immediate, 64-bit, unshifted).
                    let rn = ((w >> 5) & 31) as usize;
                    if let Some(p) = page[rn] {
                        out.insert(p.wrapping_add(u64::from((w >> 10) & 0xfff)));
                    }
                }
                for (r, p) in page.iter_mut().enumerate().take(31) {
                    if writes(w, r as u32) {
                        *p = None;
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// Tries to find the targets of the indirect branch ending block `pc`.
    fn resolve(&mut self, pc: u64) {
        let Some(words) = self.words.get(&pc) else {
            return;
        };
        let Some(&br) = words.last() else {
            return;
        };
        let br_pc = pc + 4 * (words.len() as u64 - 1);
        if self.resolved.contains(&br_pc) {
            self.indirect.remove(&pc);
            return;
        }
        let call = matches!(
            self.blocks.get(&pc).and_then(|b| b.ops.last()),
            Some(Op::JumpReg {
                kind: BranchKind::Call,
                ..
            })
        );
        let reg = (br >> 5) & 31;
        let mut budget = SEARCH_BUDGET * 4;
        let val = self.eval(pc, words.len() - 1, reg, SEARCH_DEPTH, &mut budget);
        match val {
            Some(Val::Const(t)) if self.img.is_code(t) => {
                self.resolved.insert(br_pc);
                self.indirect.remove(&pc);
                self.indirect_resolved += 1;
                if call {
                    self.add_function(t);
                } else {
                    self.add_entry(t);
                }
            }
            Some(v @ (Val::Rel { .. } | Val::Entry(_))) if !call => {
                let (entry, table) = match v {
                    Val::Rel { entry, .. } | Val::Entry(entry) => (entry, entry.table),
                    Val::Const(_) => return,
                };
                let mut targets = BTreeSet::new();
                let mut raws = Vec::with_capacity(entry.len as usize);
                for i in 0..entry.len {
                    let Some(raw) = self
                        .img
                        .read(table + (i << entry.scale), u64::from(entry.size))
                    else {
                        // The table runs out of the file: the bound or the base is wrong.
                        return;
                    };
                    raws.push(raw);
                    let bits = 8 * entry.size;
                    let loaded = match entry.opc {
                        1 => raw,
                        2 => sext(raw, bits) as u64,
                        _ => sext(raw, bits) as u64 & 0xffff_ffff,
                    };
                    let target = match v {
                        Val::Rel {
                            base, ext, shift, ..
                        } => base.wrapping_add(extend(loaded, ext) << shift),
                        _ if entry.size == 8 && entry.opc == 1 => loaded,
                        _ => return,
                    };
                    if self.img.is_code(target) {
                        targets.insert(target);
                    }
                }
                self.resolved.insert(br_pc);
                self.indirect.remove(&pc);
                for &t in &targets {
                    self.add_entry(t);
                }
                self.tables.insert(
                    br_pc,
                    JumpTable {
                        branch: br_pc,
                        table,
                        len: entry.len,
                        size: entry.size as u8,
                        entries: if self.img.is_fixed(table, entry.len << entry.scale)
                            && entry.scale == entry.size.trailing_zeros()
                        {
                            raws
                        } else {
                            Vec::new()
                        },
                        targets: targets.into_iter().collect(),
                    },
                );
            }
            _ => {}
        }
    }

    /// Scans backward from before instruction `idx` of `block` through predecessor blocks,
    /// calling `f` on each instruction; collects what each path finds.
    #[allow(clippy::too_many_arguments)]
    fn scan_back<S: Clone, T>(
        &self,
        block: u64,
        idx: usize,
        from: Option<u64>,
        mut state: S,
        depth: u32,
        budget: &mut u32,
        f: &mut dyn FnMut(&mut S, Site) -> Step<T>,
        out: &mut Vec<(T, Site)>,
    ) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Some(words) = self.words.get(&block) else {
            return;
        };
        for i in (0..idx.min(words.len())).rev() {
            let site = Site {
                block,
                idx: i,
                insn: words[i],
                from,
            };
            match f(&mut state, site) {
                Step::Continue => {}
                Step::Found(t) => {
                    out.push((t, site));
                    return;
                }
                Step::Stop => return,
            }
        }
        if depth == 0 {
            return;
        }
        let Some(preds) = self.preds.get(&block) else {
            return;
        };
        let mut preds = preds.clone();
        preds.sort_unstable();
        preds.dedup();
        for p in preds {
            let len = self.words.get(&p).map_or(0, |w| w.len());
            self.scan_back(
                p,
                len,
                Some(block),
                state.clone(),
                depth - 1,
                budget,
                f,
                out,
            );
        }
    }

    /// The value of register `reg` just before instruction `idx` of `block`, if every path
    /// that defines it agrees.
    fn eval(&self, block: u64, idx: usize, reg: u32, depth: u32, budget: &mut u32) -> Option<Val> {
        if reg == 31 || *budget == 0 {
            return None;
        }
        let mut defs = Vec::new();
        let mut find = |_: &mut (), s: Site| {
            if writes(s.insn, reg) {
                Step::Found(())
            } else {
                Step::Continue
            }
        };
        let mut search = SEARCH_BUDGET.min(*budget);
        self.scan_back(
            block,
            idx,
            None,
            (),
            depth,
            &mut search,
            &mut find,
            &mut defs,
        );
        *budget = budget.saturating_sub(1);
        let mut result = None;
        for (_, site) in defs {
            let v = self.eval_def(site, depth, budget)?;
            if result.is_some_and(|r| r != v) {
                return None;
            }
            result = Some(v);
        }
        result
    }

    /// The value the instruction at `site` writes to its destination register.
    fn eval_def(&self, site: Site, depth: u32, budget: &mut u32) -> Option<Val> {
        let insn = site.insn;
        let pc = site.block + 4 * site.idx as u64;
        let (rn, rm) = ((insn >> 5) & 31, (insn >> 16) & 31);
        let here =
            |s: &Self, r: u32, budget: &mut u32| s.eval(site.block, site.idx, r, depth, budget);
        if insn & 0x1f00_0000 == 0x1000_0000 {
            // ADR / ADRP.
            let imm = sext(
                u64::from(((insn >> 5) & 0x7_ffff) << 2 | (insn >> 29) & 3),
                21,
            );
            return Some(Val::Const(if insn & 0x8000_0000 == 0 {
                pc.wrapping_add(imm as u64)
            } else {
                (pc & !0xfff).wrapping_add((imm as u64) << 12)
            }));
        }
        if insn & 0xff80_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm{, lsl #12}.
            let imm = u64::from((insn >> 10) & 0xfff) << (12 * ((insn >> 22) & 1));
            return match here(self, rn, budget)? {
                Val::Const(c) => Some(Val::Const(c.wrapping_add(imm))),
                _ => None,
            };
        }
        if insn & 0xffe0_ffe0 == 0xaa00_03e0 {
            // MOV Xd, Xm.
            return here(self, rm, budget);
        }
        let add = if insn & 0xffe0_0000 == 0x8b20_0000 {
            // ADD Xd, Xn, Rm, ext #imm3.
            Some(((insn >> 13) & 7, (insn >> 10) & 7))
        } else if insn & 0xffe0_0000 == 0x8b00_0000 {
            // ADD Xd, Xn, Xm, lsl #imm6.
            Some((3, (insn >> 10) & 0x3f))
        } else {
            None
        };
        if let Some((ext, shift)) = add {
            if shift > 4 || rn == 31 {
                return None;
            }
            let a = here(self, rn, budget)?;
            let b = here(self, rm, budget)?;
            return match (a, b) {
                (Val::Const(base), Val::Entry(entry)) => Some(Val::Rel {
                    base,
                    entry,
                    ext,
                    shift,
                }),
                (Val::Entry(entry), Val::Const(base)) if shift == 0 && ext == 3 => Some(Val::Rel {
                    base,
                    entry,
                    ext,
                    shift,
                }),
                _ => None,
            };
        }
        if insn & 0x3f20_0c00 == 0x3820_0800 {
            // LDR (register offset), general register.
            let (size, opc) = (insn >> 30, (insn >> 22) & 3);
            let ok = match opc {
                1 => true,
                2 => size < 3,
                3 => size < 2,
                _ => false,
            };
            let option = (insn >> 13) & 7;
            if !ok || option & 2 == 0 || rn == 31 {
                return None;
            }
            let Val::Const(table) = here(self, rn, budget)? else {
                return None;
            };
            let max = self.bound(site, rm, budget)?;
            return Some(Val::Entry(TableLoad {
                table,
                len: max + 1,
                scale: if insn & (1 << 12) != 0 { size } else { 0 },
                size: 1 << size,
                opc,
            }));
        }
        if insn & 0xffc0_0000 == 0xf940_0000 {
            // LDR Xt, [Xn, #imm]: a pointer loaded from a constant address.
            let Val::Const(base) = here(self, rn, budget)? else {
                return None;
            };
            let addr = base.wrapping_add(u64::from((insn >> 10) & 0xfff) << 3);
            return self.img.read(addr, 8).map(Val::Const);
        }
        None
    }

    /// The maximum value of index register `idx` at `site`, from a dominating
    /// `cmp idx, #imm` and the conditional branch after it.
    fn bound(&self, site: Site, idx: u32, budget: &mut u32) -> Option<u64> {
        let mut found = Vec::new();
        let mut f = |reg: &mut u32, s: Site| {
            if let Some((rn, imm)) = cmp_imm(s.insn) {
                if rn == *reg {
                    return Step::Found(imm);
                }
            }
            if writes(s.insn, *reg) {
                // `mov wD, wM` (a zero-extension) copies the index: follow the source.
                if s.insn & 0x7fe0_ffe0 == 0x2a00_03e0 {
                    *reg = (s.insn >> 16) & 31;
                    return Step::Continue;
                }
                return Step::Stop;
            }
            Step::Continue
        };
        let mut search = SEARCH_BUDGET.min(*budget);
        self.scan_back(
            site.block,
            site.idx,
            None,
            idx,
            SEARCH_DEPTH,
            &mut search,
            &mut f,
            &mut found,
        );
        *budget = budget.saturating_sub(1);
        let mut result = None;
        for (imm, s) in found {
            let from = s.from?;
            let words = self.words.get(&s.block)?;
            let (&last, between) = words[s.idx + 1..].split_last()?;
            if between.iter().any(|&w| sets_flags(w)) || last & 0xff00_0010 != 0x5400_0000 {
                return None;
            }
            let Some(&Op::Branch {
                taken, fallthrough, ..
            }) = self.blocks.get(&s.block)?.ops.last()
            else {
                return None;
            };
            let cond = last & 0xf;
            let max = match (from == taken, from == fallthrough, cond) {
                (true, false, 0b1001) => imm,                 // b.ls in-range
                (true, false, 0b0011) => imm.checked_sub(1)?, // b.lo in-range
                (false, true, 0b1000) => imm,                 // b.hi out-of-range
                (false, true, 0b0010) => imm.checked_sub(1)?, // b.hs out-of-range
                _ => return None,
            };
            if result.is_some_and(|r| r != max) {
                return None;
            }
            result = Some(max);
        }
        result.filter(|m| *m < MAX_TABLE_ENTRIES)
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sext(v: u64, bits: u32) -> i64 {
    let s = 64 - bits;
    ((v << s) as i64) >> s
}

/// Applies an A64 register extension (`option` of an extended-register operand).
fn extend(v: u64, option: u32) -> u64 {
    match option {
        0 => v & 0xff,
        1 => v & 0xffff,
        2 => v & 0xffff_ffff,
        4 => sext(v, 8) as u64,
        5 => sext(v, 16) as u64,
        6 => sext(v, 32) as u64,
        _ => v,
    }
}

/// `cmp Rn, #imm` (SUBS with a zero destination): the register and the immediate.
fn cmp_imm(insn: u32) -> Option<(u32, u64)> {
    (insn & 0x7f80_0000 == 0x7100_0000 && insn & 31 == 31).then(|| {
        (
            (insn >> 5) & 31,
            u64::from((insn >> 10) & 0xfff) << (12 * ((insn >> 22) & 1)),
        )
    })
}

/// Whether the instruction may set NZCV (conservative for the common forms).
fn sets_flags(insn: u32) -> bool {
    insn & 0x3f80_0000 == 0x3100_0000 // ADDS/SUBS immediate
        || insn & 0x3f00_0000 == 0x2b00_0000 // ADDS/SUBS shifted or extended register
        || insn & 0x7f80_0000 == 0x7200_0000 // ANDS immediate
        || insn & 0x7f00_0000 == 0x6a00_0000 // ANDS/BICS shifted register
        || insn & 0x3fe0_0000 == 0x3a00_0000 // ADCS/SBCS
        || insn & 0x3fe0_0000 == 0x3a40_0000 // CCMP/CCMN
        || insn & 0xff20_fc07 == 0x1e20_2000 // FCMP/FCMPE
        || insn & 0xff20_0c00 == 0x1e20_0400 // FCCMP/FCCMPE
        || insn & 0xfff0_0000 == 0xd510_0000 // MSR (NZCV among others)
        || insn & 0xfff8_f01f == 0xd500_401f // MSR immediate, CFINV, flag manipulation
}

/// Whether the instruction may write general register `r` (0..=30). Conservative: unknown
/// encodings are assumed to write it.
fn writes(insn: u32, r: u32) -> bool {
    let (rd, rn, rt2, rs) = (
        insn & 31,
        (insn >> 5) & 31,
        (insn >> 10) & 31,
        (insn >> 16) & 31,
    );
    let op0 = (insn >> 25) & 0xf;
    if op0 & 0b1110 == 0b1000 || op0 & 0b0111 == 0b0101 {
        // Data processing (immediate or register): Rd.
        return rd == r;
    }
    if op0 & 0b1110 == 0b1010 {
        // Branches, exceptions, system instructions.
        if insn & 0x7c00_0000 == 0x1400_0000 {
            return insn & 0x8000_0000 != 0 && r == 30; // B / BL
        }
        if insn & 0xfe00_0000 == 0xd600_0000 {
            return ((insn >> 21) & 0xf) & 0b0111 == 0b0001 && r == 30; // BLR*
        }
        if insn & 0xffe0_0000 == 0xd520_0000 {
            return rd == r; // MRS, SYSL
        }
        return false;
    }
    if op0 & 0b0101 == 0b0100 {
        // Loads and stores.
        let v = insn & (1 << 26) != 0;
        let opc = (insn >> 22) & 3;
        if insn & 0x3b00_0000 == 0x3900_0000 {
            return !v && opc != 0 && rd == r; // unsigned offset
        }
        if insn & 0x3b20_0000 == 0x3800_0000 {
            let mode = (insn >> 10) & 3; // unscaled, post-index, unprivileged, pre-index
            return (!v && opc != 0 && rd == r) || ((mode == 1 || mode == 3) && rn == r);
        }
        if insn & 0x3b20_0c00 == 0x3820_0800 {
            return !v && opc != 0 && rd == r; // register offset
        }
        if insn & 0x3a00_0000 == 0x2800_0000 {
            let mode = (insn >> 23) & 3; // pairs: no-allocate, post, offset, pre
            let load = insn & (1 << 22) != 0;
            return (load && !v && (rd == r || rt2 == r)) || ((mode == 1 || mode == 3) && rn == r);
        }
        if insn & 0x3b00_0000 == 0x1800_0000 {
            return !v && rd == r; // literal
        }
        return rd == r || rt2 == r || rn == r || rs == r;
    }
    if op0 & 0b0111 == 0b0111 {
        // SIMD and floating point: some forms write a general register in Rd.
        return rd == r;
    }
    true
}
