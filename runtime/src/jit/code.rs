//! Executable memory for translated code: one memfd mapped twice, writable at one address
//! and executable at another (never both at once).
//!
//! After a reserved prefix (the entry trampoline) the memory is a ring of equal segments
//! filled in turn by a bump allocator. When the current segment is full the cache moves to
//! the next one, the oldest: before reusing it, the cache keeps the translations there that
//! ran since the segment was last swept ([`CodeMemory::relocate`] packs them at its start:
//! translated code is position-independent, it has no relocations) and drops the others.
//! So a full cache evicts cold code a segment at a time instead of flushing everything.

use std::io;

use super::fault::CodeRange;

/// Segments of the ring (fewer when the memory is small, see [`MIN_SEGMENT`]).
const SEGMENTS: usize = 8;
/// Smallest segment size in bytes.
const MIN_SEGMENT: usize = 32 << 10;

/// A fixed-size code buffer.
pub struct CodeMemory {
    rw: *mut u8,
    rx: *const u8,
    size: usize,
    /// Allocation point (an offset in the current segment).
    used: usize,
    /// Bytes at the start that are never reused (the entry trampoline).
    reserved: usize,
    /// Segment size (0 until [`CodeMemory::reserve_current`] divides the rest).
    segment: usize,
    /// Index of the segment being filled.
    current: usize,
    /// The executable mapping, declared to the host-fault handler.
    _range: CodeRange,
}

// SAFETY: the mappings are owned by this value; it is only used from the dispatcher thread.
unsafe impl Send for CodeMemory {}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        // SAFETY: both mappings were created by `new` with `size` bytes and are ours.
        unsafe {
            libc::munmap(self.rw as *mut libc::c_void, self.size);
            libc::munmap(self.rx as *mut libc::c_void, self.size);
        }
    }
}

impl CodeMemory {
    /// Maps `size` bytes (rounded up to pages).
    pub fn new(size: usize) -> io::Result<CodeMemory> {
        let size = (size.max(1 << 16) + 0xfff) & !0xfff;
        // SAFETY: plain syscalls; every result is checked before use.
        unsafe {
            let fd = libc::memfd_create(c"vmc-jit-code".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let close = |e: io::Error| {
                libc::close(fd);
                e
            };
            if libc::ftruncate(fd, size as libc::off_t) != 0 {
                return Err(close(io::Error::last_os_error()));
            }
            let rw = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if rw == libc::MAP_FAILED {
                return Err(close(io::Error::last_os_error()));
            }
            let rx = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if rx == libc::MAP_FAILED {
                libc::munmap(rw, size);
                return Err(close(io::Error::last_os_error()));
            }
            libc::close(fd);
            Ok(CodeMemory {
                rw: rw as *mut u8,
                rx: rx as *const u8,
                size,
                used: 0,
                reserved: 0,
                segment: 0,
                current: 0,
                _range: CodeRange::new(rx as u64, rx as u64 + size as u64),
            })
        }
    }

    /// Copies `code` in; returns its executable address, or `None` when the current
    /// segment is full (see [`CodeMemory::next_segment`]).
    pub fn alloc(&mut self, code: &[u8]) -> Option<u64> {
        let start = align16(self.used);
        let end = start.checked_add(code.len())?;
        if end > self.segment_end() {
            return None;
        }
        // SAFETY: [start, end) lies inside the writable mapping.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.rw.add(start), code.len()) };
        self.used = end;
        Some(self.rx as u64 + start as u64)
    }

    /// End offset of the current segment (the whole memory before the ring is set up).
    fn segment_end(&self) -> usize {
        if self.segment == 0 {
            self.size
        } else {
            self.reserved + (self.current + 1) * self.segment
        }
    }

    /// Keeps what is allocated so far for good and divides the rest into the ring.
    pub fn reserve_current(&mut self) {
        self.reserved = align16(self.used);
        let rest = self.size - self.reserved;
        let n = (rest / MIN_SEGMENT).clamp(1, SEGMENTS);
        self.segment = (rest / n) & !15;
        self.current = 0;
        self.used = self.reserved;
    }

    /// Number of segments in the ring.
    pub fn segments(&self) -> usize {
        (self.size - self.reserved)
            .checked_div(self.segment)
            .unwrap_or(1)
    }

    /// Largest translation that fits (one segment).
    pub fn max_code(&self) -> usize {
        self.segment
    }

    /// Moves the allocation point to the start of the next segment of the ring and returns
    /// that segment's executable address range: the caller must move out ([`Self::relocate`],
    /// in ascending address order) or forget every translation in it before allocating.
    pub fn next_segment(&mut self) -> std::ops::Range<u64> {
        self.current = (self.current + 1) % self.segments();
        let start = self.reserved + self.current * self.segment;
        self.used = start;
        let base = self.rx as u64;
        base + start as u64..base + (start + self.segment) as u64
    }

    /// Moves `len` bytes of code at executable address `from`, in the segment just started,
    /// to the allocation point (never after `from`: callers go in ascending address order);
    /// returns the new executable address.
    pub fn relocate(&mut self, from: u64, len: usize) -> u64 {
        let to = align16(self.used);
        let src = (from - self.rx as u64) as usize;
        assert!(
            to <= src && src + len <= self.segment_end(),
            "code relocation out of order"
        );
        // SAFETY: both ranges lie inside the writable mapping (checked above); `copy`
        // allows the overlap of a move towards lower addresses.
        unsafe { std::ptr::copy(self.rw.add(src), self.rw.add(to), len) };
        self.used = to + len;
        self.rx as u64 + to as u64
    }
}

/// `n` rounded up to the 16-byte alignment of translations.
fn align16(n: usize) -> usize {
    (n + 15) & !15
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_of_segments_with_relocation() {
        let mut m = CodeMemory::new(512 << 10).unwrap();
        let t = m.alloc(&[0xc3; 40]).unwrap();
        m.reserve_current();
        assert_eq!(m.segments(), 8);
        let seg = m.max_code();
        assert!(seg >= MIN_SEGMENT - 16);
        let a = m.alloc(&vec![1u8; seg / 2]).unwrap();
        let b = m.alloc(&vec![2u8; seg / 4]).unwrap();
        assert!(a > t && b > a);
        // The first segment is full for another half segment: move on, round the ring.
        assert!(m.alloc(&vec![3u8; seg / 2]).is_none());
        for _ in 0..7 {
            let r = m.next_segment();
            assert!(!r.contains(&a));
        }
        let r = m.next_segment();
        assert!(r.contains(&a) && r.contains(&b));
        // Keep `b` (moved to the start), drop `a`.
        let nb = m.relocate(b, seg / 4);
        assert_eq!(nb, a);
        // SAFETY: `nb` is inside the executable view, which is readable.
        let moved = unsafe { std::slice::from_raw_parts(nb as *const u8, seg / 4) };
        assert!(moved.iter().all(|&x| x == 2));
        assert!(m.alloc(&vec![4u8; seg / 2]).is_some());
        // Too big for any segment.
        assert!(m.alloc(&vec![5u8; seg + 16]).is_none());
        // The trampoline survives.
        // SAFETY: as above.
        assert_eq!(unsafe { *(t as *const u8) }, 0xc3);
    }
}
