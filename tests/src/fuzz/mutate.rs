//! Input mutations: generic byte mutations and ELF-aware header and program-header
//! overwrites with interesting values.

use super::Rng;

/// Interesting 64-bit values: boundaries of the guest space, sizes that overflow, sentinels.
pub const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xfff,
    0x1000,
    0x1001,
    0xffff,
    0x10000,
    0x40_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    60 << 30,
    (1 << 36) - 0x1000,
    (1 << 36) - 1,
    1 << 36,
    1 << 47,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_f000,
    u64::MAX - 1,
    u64::MAX,
];

/// A value to write: interesting, nearby, or random.
pub fn value(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 | 1 => r.pick(INTERESTING),
        2 => r.pick(INTERESTING).wrapping_add(r.below(9)).wrapping_sub(4),
        _ => r.next() >> r.below(64),
    }
}

/// Overwrites `width` bytes at `at` (little-endian) with `v`, where they fit.
pub fn put(data: &mut [u8], at: usize, width: usize, v: u64) {
    if let Some(s) = data.get_mut(at..at.saturating_add(width)) {
        s.copy_from_slice(&v.to_le_bytes()[..width]);
    }
}

/// Reads `width` bytes at `at` (little-endian), 0 where out of range.
pub fn get(data: &[u8], at: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = data.get(at..at.saturating_add(width)) {
        b[..width].copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

/// A generic mutation of `data` anywhere in `lo..hi` (clamped to the data).
pub fn bytes(r: &mut Rng, data: &mut Vec<u8>, lo: usize, hi: usize) {
    let hi = hi.min(data.len());
    if data.is_empty() || lo >= hi {
        data.push(r.next() as u8);
        return;
    }
    let at = lo + r.below((hi - lo) as u64) as usize;
    match r.below(8) {
        // Bit flips.
        0 | 1 => {
            for _ in 0..1 + r.below(4) {
                let k = lo + r.below((hi - lo) as u64) as usize;
                data[k] ^= 1 << r.below(8);
            }
        }
        // Random bytes.
        2 => {
            for _ in 0..1 + r.below(8) {
                let k = lo + r.below((hi - lo) as u64) as usize;
                data[k] = r.next() as u8;
            }
        }
        // An interesting value of some width.
        3 | 4 => {
            let w = r.pick(&[1usize, 2, 4, 8]);
            put(data, at, w, value(r));
        }
        // Add or subtract a little.
        5 => {
            let w = r.pick(&[1usize, 2, 4, 8]);
            let v = get(data, at, w).wrapping_add(r.below(33)).wrapping_sub(16);
            put(data, at, w, v);
        }
        // Copy a chunk over another place.
        6 => {
            let n = 1 + r.below(64) as usize;
            let from = r.below(data.len() as u64) as usize;
            let chunk: Vec<u8> = data[from..(from + n).min(data.len())].to_vec();
            let end = (at + chunk.len()).min(data.len());
            data[at..end].copy_from_slice(&chunk[..end - at]);
        }
        // Truncate or extend.
        _ => {
            if r.coin() {
                data.truncate(r.below(data.len() as u64 + 1) as usize);
            } else {
                let n = r.below(256) as usize;
                data.extend((0..n).map(|_| r.next() as u8));
            }
        }
    }
}

impl Rng {
    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 0
    }
}

/// ELF64 header fields: (offset, width, name).
pub const EHDR_FIELDS: &[(usize, usize, &str)] = &[
    (4, 1, "ei_class"),
    (5, 1, "ei_data"),
    (16, 2, "e_type"),
    (18, 2, "e_machine"),
    (24, 8, "e_entry"),
    (32, 8, "e_phoff"),
    (40, 8, "e_shoff"),
    (52, 2, "e_ehsize"),
    (54, 2, "e_phentsize"),
    (56, 2, "e_phnum"),
    (58, 2, "e_shentsize"),
    (60, 2, "e_shnum"),
    (62, 2, "e_shstrndx"),
];

/// ELF64 program header fields: (offset in the entry, width, name).
pub const PHDR_FIELDS: &[(usize, usize, &str)] = &[
    (0, 4, "p_type"),
    (4, 4, "p_flags"),
    (8, 8, "p_offset"),
    (16, 8, "p_vaddr"),
    (24, 8, "p_paddr"),
    (32, 8, "p_filesz"),
    (40, 8, "p_memsz"),
    (48, 8, "p_align"),
];

/// Program header types worth setting (LOAD, DYNAMIC, INTERP, NOTE, PHDR, TLS, GNU_STACK,
/// GNU_RELRO, unknown).
const PT_TYPES: &[u64] = &[
    1,
    2,
    3,
    4,
    6,
    7,
    0x6474_e551,
    0x6474_e552,
    0x7000_0000,
    0xffff_ffff,
];

/// One ELF-aware mutation (falls back to a generic one on non-ELF data).
pub fn elf(r: &mut Rng, data: &mut Vec<u8>) {
    if data.len() < 64 || !data.starts_with(b"\x7fELF") {
        bytes(r, data, 0, usize::MAX);
        return;
    }
    let phoff = get(data, 32, 8) as usize;
    let phnum = get(data, 56, 2) as usize;
    let phdr = |r: &mut Rng| phoff.saturating_add(56 * r.below(phnum.max(1) as u64) as usize);
    match r.below(12) {
        // A header field.
        0 | 1 => {
            let (at, w, _) = r.pick(EHDR_FIELDS);
            put(data, at, w, value(r));
        }
        // The entry: a sentinel, another segment's address, a misaligned one.
        2 => {
            let v = match r.below(3) {
                0 => u64::MAX,
                1 => get(data, phdr(r) + 16, 8).wrapping_add(r.below(4096)),
                _ => value(r),
            };
            put(data, 24, 8, v);
        }
        // A program header field.
        3..=5 => {
            let (at, w, _) = r.pick(PHDR_FIELDS);
            let p = phdr(r);
            let v = if at == 0 { r.pick(PT_TYPES) } else { value(r) };
            put(data, p + at, w, v);
        }
        // A huge segment (60 GiB and friends).
        6 => {
            let p = phdr(r);
            put(
                data,
                p + 40,
                8,
                r.pick(&[60 << 30, 1 << 36, u64::MAX, 1 << 40]),
            );
        }
        // Overlapping segments: one segment's address onto another.
        7 => {
            let (a, b) = (phdr(r), phdr(r));
            let v = get(data, a + 16, 8).wrapping_add(r.below(3) * 0x800);
            put(data, b + 16, 8, v);
        }
        // File range past the end of the file.
        8 => {
            let p = phdr(r);
            let v = (data.len() as u64).saturating_sub(r.below(64));
            put(data, p + 8, 8, v);
            put(data, p + 32, 8, value(r));
        }
        // Many program headers.
        9 => put(data, 56, 2, r.pick(&[0, 0xffff, 0xff, phnum as u64 + 1])),
        // Truncation.
        10 => {
            let n = r.below(data.len() as u64) as usize;
            data.truncate(n);
        }
        // Bytes in the headers.
        _ => {
            let end = phoff.saturating_add(56 * phnum).max(64);
            bytes(r, data, 0, end)
        }
    }
}
