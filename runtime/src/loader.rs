//! ELF loader for static and static-pie AArch64 executables, and the initial process stack
//! (argv, envp, auxv) as the Linux kernel lays it out.

use std::path::Path;

use object::elf::{FileHeader64, ET_DYN, ET_EXEC, PT_INTERP, PT_LOAD, PT_PHDR, PT_TLS};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;

use crate::memory::{page_down, page_up, GuestMemory, MemError, PAGE};

pub use vmc_compiler::layout::{PIE_BASE, STACK_TOP};
/// Size reserved for the initial stack.
pub const STACK_SIZE: u64 = 8 << 20;

/// Hardware capabilities advertised in AT_HWCAP: only what the translator implements, so
/// glibc's ifunc resolvers pick routines we can run. FP | ASIMD | CRC32 | ATOMICS.
pub const HWCAP: u64 = (1 << 0) | (1 << 1) | (1 << 7) | (1 << 8);

/// Why a program cannot be loaded. Each message names the reason; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with the ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// The file ends before its headers or segments do.
    #[error("truncated ELF file ({0})")]
    Truncated(&'static str),
    /// A 32-bit ELF (e.g. AArch32).
    #[error("32-bit ELF (machine {0}); only 64-bit AArch64 programs are supported")]
    Elf32(String),
    /// Big-endian ELF.
    #[error("big-endian ELF; only little-endian AArch64 is supported")]
    BigEndian,
    /// An ELF for another instruction set.
    #[error("ELF for {0}, not AArch64")]
    WrongMachine(String),
    /// Not an executable (e.g. a relocatable object or core file).
    #[error("ELF type {0} is not an executable")]
    NotExecutable(u16),
    /// A dynamically linked program.
    #[error("dynamically linked (interpreter {0}); dynamic linking is not supported yet, use a static build")]
    Dynamic(String),
    /// A segment that cannot be placed in the guest address space.
    #[error("bad program header: {0}")]
    BadSegment(String),
    /// The guest address space could not be set up.
    #[error(transparent)]
    Memory(#[from] MemError),
}

/// What the loader produced.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Entry point (with the load bias applied).
    pub entry: u64,
    /// Load bias (0 for ET_EXEC).
    pub bias: u64,
    /// Guest address of the program headers.
    pub phdr: u64,
    /// Number of program headers.
    pub phnum: u64,
    /// End of the highest segment: the initial program break.
    pub brk: u64,
    /// Executable ranges (start, end) of the image.
    pub code: Vec<(u64, u64)>,
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "x86 (i386)".into(),
        40 => "ARM (AArch32)".into(),
        62 => "x86-64".into(),
        183 => "AArch64".into(),
        243 => "RISC-V".into(),
        8 => "MIPS".into(),
        20 => "PowerPC".into(),
        21 => "PowerPC64".into(),
        other => format!("machine type {other}"),
    }
}

/// Checks that `data` is a loadable AArch64 executable; returns its parsed header.
pub fn check_elf(data: &[u8]) -> Result<&FileHeader64<LE>, LoadError> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf);
    }
    if data.len() < 20 {
        return Err(LoadError::Truncated("ELF identification"));
    }
    let machine = u16::from_le_bytes([data[18], data[19]]);
    if data[4] == 1 {
        return Err(LoadError::Elf32(machine_name(machine)));
    }
    if data[5] == 2 {
        return Err(LoadError::BigEndian);
    }
    let hdr = FileHeader64::<LE>::parse(data).map_err(|_| LoadError::Truncated("ELF header"))?;
    let m = hdr.e_machine(LE);
    if m != object::elf::EM_AARCH64 {
        return Err(LoadError::WrongMachine(machine_name(m)));
    }
    let t = hdr.e_type(LE);
    if t != ET_EXEC && t != ET_DYN {
        return Err(LoadError::NotExecutable(t));
    }
    Ok(hdr)
}

/// Loads the program's segments into `mem`.
pub fn load(data: &[u8], mem: &mut GuestMemory) -> Result<LoadedImage, LoadError> {
    let hdr = check_elf(data)?;
    let phdrs = hdr
        .program_headers(LE, data)
        .map_err(|_| LoadError::Truncated("program headers"))?;
    if let Some(interp) = phdrs.iter().find(|p| p.p_type(LE) == PT_INTERP) {
        let raw = interp
            .data(LE, data)
            .map_err(|_| LoadError::Truncated("PT_INTERP"))?;
        let name =
            String::from_utf8_lossy(raw.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
        return Err(LoadError::Dynamic(name));
    }
    let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type(LE) == PT_LOAD).collect();
    if loads.is_empty() {
        return Err(LoadError::BadSegment("no PT_LOAD segment".into()));
    }
    let bias = if hdr.e_type(LE) == ET_DYN {
        PIE_BASE
    } else {
        0
    };
    let mut brk = 0;
    let mut code = Vec::new();
    let mut phdr_addr = None;
    // Segments placed so far, by start (non-overlapping, so the one starting last before
    // a new segment's end is the only one it could overlap).
    let mut placed = std::collections::BTreeMap::<u64, u64>::new();
    for p in &loads {
        let (vaddr, memsz, filesz, offset) =
            (p.p_vaddr(LE), p.p_memsz(LE), p.p_filesz(LE), p.p_offset(LE));
        let start = vaddr
            .checked_add(bias)
            .ok_or_else(|| LoadError::BadSegment("address overflow".into()))?;
        let end = start
            .checked_add(memsz)
            .filter(|e| *e <= STACK_TOP - STACK_SIZE);
        let Some(end) = end else {
            return Err(LoadError::BadSegment(format!(
                "segment at {vaddr:#x} size {memsz:#x} is out of range"
            )));
        };
        if filesz > memsz {
            return Err(LoadError::BadSegment(format!(
                "segment at {vaddr:#x} has filesz > memsz"
            )));
        }
        // A segment with no file bytes (pure .bss) may name any offset.
        let (offset, file_end) = if filesz == 0 {
            (0, 0)
        } else {
            (offset, offset.saturating_add(filesz))
        };
        if file_end > data.len() as u64 {
            return Err(LoadError::Truncated("segment data"));
        }
        let flags = p.p_flags(LE);
        // PF_X = 1, PF_W = 2, PF_R = 4 -> PROT_EXEC = 4, PROT_WRITE = 2, PROT_READ = 1.
        let prot = ((flags & 4 != 0) as u64)
            | ((flags & 2 != 0) as u64) << 1
            | ((flags & 1 != 0) as u64) << 2;
        // Byte ranges may not overlap (segments may share a page: the merge keeps what an
        // earlier segment put there); the whole segment is mapped in one go.
        let before = placed.range(..end).next_back().map(|(s, e)| (*s, *e));
        if let Some((s, e)) = before.filter(|(_, e)| start < *e && start < end) {
            return Err(LoadError::BadSegment(format!(
                "segment at {start:#x}..{end:#x} overlaps the segment at {s:#x}..{e:#x}"
            )));
        }
        if start < end {
            placed.insert(start, end);
        }
        mem.map_merge(page_down(start), page_up(end) - page_down(start), prot)?;
        mem.poke(start, &data[offset as usize..file_end as usize])
            .map_err(|_| LoadError::BadSegment("cannot write segment".into()))?;
        if flags & 1 != 0 {
            code.push((start, end));
        }
        let phoff = hdr.e_phoff(LE);
        if phoff >= offset && phoff < file_end {
            phdr_addr = Some(start + (phoff - offset));
        }
        brk = brk.max(end);
    }
    if let Some(p) = phdrs.iter().find(|p| p.p_type(LE) == PT_PHDR) {
        phdr_addr = Some(p.p_vaddr(LE) + bias);
    }
    if phdrs
        .iter()
        .any(|p| p.p_type(LE) == PT_TLS && p.p_align(LE) > PAGE * 16)
    {
        log::warn!("PT_TLS with unusually large alignment");
    }
    Ok(LoadedImage {
        entry: hdr.e_entry(LE).wrapping_add(bias),
        bias,
        phdr: phdr_addr.unwrap_or(0),
        phnum: phdrs.len() as u64,
        brk: page_up(brk),
        code,
    })
}

/// Reads and loads the program at `path`.
pub fn load_file(path: &Path, mem: &mut GuestMemory) -> Result<(LoadedImage, Vec<u8>), LoadError> {
    let data = std::fs::read(path)?;
    let image = load(&data, mem)?;
    Ok((image, data))
}

/// Auxiliary vector keys.
mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const EXECFN: u64 = 31;
    pub const MINSIGSTKSZ: u64 = 51;
}

/// Maps the stack and writes argc, argv, envp, auxv and their strings. Returns the initial SP.
pub fn setup_stack(
    mem: &mut GuestMemory,
    image: &LoadedImage,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    random: [u8; 16],
) -> Result<u64, LoadError> {
    mem.map(STACK_TOP - STACK_SIZE, STACK_SIZE, 3)?;
    let mut sp = STACK_TOP;
    let mut push_bytes =
        |mem: &mut GuestMemory, bytes: &[u8], nul: bool| -> Result<u64, LoadError> {
            sp -= bytes.len() as u64 + nul as u64;
            mem.poke(sp, bytes)
                .map_err(|_| LoadError::BadSegment("arguments do not fit the stack".into()))?;
            if nul {
                mem.poke(sp + bytes.len() as u64, &[0])
                    .map_err(|_| LoadError::BadSegment("stack".into()))?;
            }
            Ok(sp)
        };
    let execfn_addr = push_bytes(mem, execfn, true)?;
    let env_addrs: Vec<u64> = envp
        .iter()
        .map(|e| push_bytes(mem, e, true))
        .collect::<Result<_, _>>()?;
    let arg_addrs: Vec<u64> = argv
        .iter()
        .map(|a| push_bytes(mem, a, true))
        .collect::<Result<_, _>>()?;
    let platform = push_bytes(mem, b"aarch64", true)?;
    let random_addr = push_bytes(mem, &random, false)?;
    let auxv: Vec<(u64, u64)> = vec![
        (at::PHDR, image.phdr),
        (at::PHENT, 56),
        (at::PHNUM, image.phnum),
        (at::PAGESZ, PAGE),
        (at::BASE, 0),
        (at::FLAGS, 0),
        (at::ENTRY, image.entry),
        (at::UID, host_id(libc::getuid)),
        (at::EUID, host_id(libc::geteuid)),
        (at::GID, host_id(libc::getgid)),
        (at::EGID, host_id(libc::getegid)),
        (at::HWCAP, HWCAP),
        (at::HWCAP2, 0),
        (at::CLKTCK, 100),
        (at::SECURE, 0),
        (at::RANDOM, random_addr),
        (at::PLATFORM, platform),
        (at::EXECFN, execfn_addr),
        (at::MINSIGSTKSZ, 5120),
        (at::NULL, 0),
    ];
    let words = 1 + argv.len() + 1 + envp.len() + 1 + 2 * auxv.len();
    let sp = (sp - 8 * words as u64) & !15;
    let mut table = Vec::with_capacity(words);
    table.push(argv.len() as u64);
    table.extend(&arg_addrs);
    table.push(0);
    table.extend(&env_addrs);
    table.push(0);
    for (k, v) in auxv {
        table.push(k);
        table.push(v);
    }
    let bytes: Vec<u8> = table.iter().flat_map(|w| w.to_le_bytes()).collect();
    mem.poke(sp, &bytes)
        .map_err(|_| LoadError::BadSegment("arguments do not fit the stack".into()))?;
    Ok(sp)
}

fn host_id(f: unsafe extern "C" fn() -> u32) -> u64 {
    // SAFETY: getuid and friends cannot fail and have no preconditions.
    unsafe { f() as u64 }
}
