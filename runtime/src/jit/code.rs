//! Executable memory for translated code: one memfd mapped twice, writable at one address
//! and executable at another (never both at once), filled by a bump allocator.

use std::io;

use super::fault::CodeRange;

/// A fixed-size code buffer.
pub struct CodeMemory {
    rw: *mut u8,
    rx: *const u8,
    size: usize,
    used: usize,
    /// Bytes at the start that survive [`CodeMemory::reset`] (the entry trampoline).
    reserved: usize,
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
                _range: CodeRange::new(rx as u64, rx as u64 + size as u64),
            })
        }
    }

    /// Copies `code` in; returns its executable address, or `None` when full.
    pub fn alloc(&mut self, code: &[u8]) -> Option<u64> {
        let start = (self.used + 15) & !15;
        let end = start.checked_add(code.len())?;
        if end > self.size {
            return None;
        }
        // SAFETY: [start, end) lies inside the writable mapping.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.rw.add(start), code.len()) };
        self.used = end;
        // SAFETY: same offset inside the executable view of the same pages.
        Some(unsafe { self.rx.add(start) } as u64)
    }

    /// Keeps what is allocated so far across resets.
    pub fn reserve_current(&mut self) {
        self.reserved = self.used;
    }

    /// Forgets every allocation after the reserved prefix (all translations are dropped).
    pub fn reset(&mut self) {
        self.used = self.reserved;
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.size
    }
}
