//! The guest address space: one host reservation, guest address = offset into it.
//!
//! The whole guest range ([`GUEST_SPACE`] bytes, plus a guard) is reserved `PROT_NONE` up
//! front; pages the guest maps readable are made accessible on the host (so host protection
//! mirrors guest read permission), and accesses are also checked against a per-page
//! permission table. The runtime dereferences a guest address only after checking it against
//! the table; translated code checks stores against the table and bounds every load to the
//! reservation, where the host MMU refuses what the guest may not read (see
//! `jit::fault`). A wild guest pointer can only fault (becoming the guest's SIGSEGV), never
//! reach host memory.

use vmc_compiler::mem::{Fault, Memory};

pub use vmc_compiler::layout::{perm, GUEST_SPACE, PAGE};

/// Errors from setting up the guest address space.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// The host refused the reservation.
    #[error("cannot reserve {0} bytes of host address space for the guest: {1}")]
    Reserve(u64, std::io::Error),
    /// A guest range lies outside the guest address space.
    #[error("guest range {0:#x}+{1:#x} is outside the guest address space")]
    OutOfRange(u64, u64),
    /// The host refused to change protections.
    #[error("host mprotect failed: {0}")]
    Protect(std::io::Error),
}

/// Rounds up to a page boundary.
pub fn page_up(x: u64) -> u64 {
    x.saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// Rounds down to a page boundary.
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

/// Bytes reserved after the guest space, never accessible: an inline load of up to 16 bytes
/// at any in-range address stays inside the reservation.
pub const GUARD: u64 = 64 << 10;

/// Bytes of host address space the guest reservation takes.
pub const RESERVED: u64 = GUEST_SPACE + GUARD;

/// The derived span bits of a page with permissions `p` followed by a page with `next`.
fn span_bits(p: u8, next: u8) -> u8 {
    let mut s = 0;
    if p & next & perm::R != 0 {
        s |= perm::SPAN_R;
    }
    if p & next & perm::W != 0 && (p | next) & perm::CODE == 0 {
        s |= perm::SPAN_W;
    }
    s
}

/// Converts Linux PROT_* bits to [`perm`] bits.
pub fn prot_to_perm(prot: u64) -> u8 {
    let mut p = perm::MAPPED;
    if prot & 1 != 0 {
        p |= perm::R;
    }
    if prot & 2 != 0 {
        p |= perm::W | perm::R;
    }
    if prot & 4 != 0 {
        p |= perm::X | perm::R;
    }
    p
}

/// Converts [`perm`] bits back to Linux PROT_* bits.
pub fn perm_to_prot(p: u8) -> u64 {
    ((p & perm::R != 0) as u64)
        | ((p & perm::W != 0) as u64) << 1
        | ((p & perm::X != 0) as u64) << 2
}

/// The guest's memory.
pub struct GuestMemory {
    base: *mut u8,
    perms: Vec<u8>,
    /// Set when the guest wrote to a page holding translated code; the dispatcher then
    /// discards translations of the dirty range.
    pub code_written: Option<(u64, u64)>,
}

// SAFETY: the reservation is owned by this value and only reached through `&mut self`.
unsafe impl Send for GuestMemory {}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of our own RESERVED-byte mapping.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, RESERVED as usize);
        }
    }
}

impl GuestMemory {
    /// Reserves the guest address space (nothing mapped yet).
    pub fn new() -> Result<Self, MemError> {
        // SAFETY: an anonymous PROT_NONE reservation at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RESERVED as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Reserve(RESERVED, std::io::Error::last_os_error()));
        }
        Ok(GuestMemory {
            base: p as *mut u8,
            perms: vec![0; (GUEST_SPACE / PAGE) as usize],
            code_written: None,
        })
    }

    fn check_range(addr: u64, len: u64) -> Result<(), MemError> {
        match addr.checked_add(len) {
            Some(end) if end <= GUEST_SPACE => Ok(()),
            _ => Err(MemError::OutOfRange(addr, len)),
        }
    }

    /// Host address of guest address 0 (for translated code's inline accesses).
    pub fn host_base(&self) -> *mut u8 {
        self.base
    }

    /// Host address of the per-page permission table (one byte per page, [`perm`] bits).
    pub fn perms_table(&self) -> *const u8 {
        self.perms.as_ptr()
    }

    /// Permission bits of the page holding `addr` (0 outside the address space).
    pub fn perm(&self, addr: u64) -> u8 {
        self.perms.get((addr / PAGE) as usize).copied().unwrap_or(0)
    }

    /// Sets the permissions of a page range and re-derives the span bits it affects (its
    /// own pages and the page before it).
    fn set_perms(&mut self, pages: std::ops::Range<usize>, f: impl Fn(u8) -> u8) {
        let spans = !(perm::SPAN_R | perm::SPAN_W);
        for p in &mut self.perms[pages.clone()] {
            *p = f(*p & spans);
        }
        for i in pages.start.saturating_sub(1)..pages.end {
            let next = self.perms.get(i + 1).copied().unwrap_or(0);
            self.perms[i] = self.perms[i] & spans | span_bits(self.perms[i], next);
        }
    }

    /// Host address range of the reservation (for the host fault handler).
    pub fn host_range(&self) -> (u64, u64) {
        (self.base as u64, self.base as u64 + RESERVED)
    }

    /// Host address of guest address `addr` (inside the reservation: checked by callers).
    fn host(&self, addr: u64) -> *mut libc::c_void {
        self.base.wrapping_add(addr as usize) as *mut libc::c_void
    }

    /// Replaces `[addr, addr+len)` (page aligned, checked) by fresh zero-filled anonymous
    /// memory, read+write on the host when `accessible`, else inaccessible. One `mmap`
    /// whatever the length (the kernel populates pages lazily), and it drops any file
    /// mapping the range held. MAP_FIXED replaces the range atomically, so the reservation
    /// never has a hole another host mapping could fall into.
    fn host_map_anon(&self, addr: u64, len: u64, accessible: bool) -> Result<(), MemError> {
        let prot = if accessible {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_NONE
        };
        // SAFETY: the range lies inside our own reservation (checked by callers) and is page
        // aligned; MAP_FIXED replaces only our pages.
        let r = unsafe {
            libc::mmap(
                self.host(addr),
                len as usize,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(MemError::Protect(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Sets the host protection of a range to mirror guest permissions `p`: read+write when
    /// the guest may read (writes are checked against the table), else none. A shared
    /// mapping of a file opened read-only refuses host write access: then, when the guest
    /// does not ask to write either, the pages are made read-only on the host (when it does,
    /// the error stands, as Linux's own `mprotect` refuses with EACCES).
    fn host_protect(&self, addr: u64, len: u64, p: u8) -> Result<(), MemError> {
        let mprotect = |prot| {
            // SAFETY: the range was checked to lie inside our reservation and is page aligned.
            let r = unsafe { libc::mprotect(self.host(addr), len as usize, prot) };
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        let r = if p & perm::R == 0 {
            mprotect(libc::PROT_NONE)
        } else {
            match mprotect(libc::PROT_READ | libc::PROT_WRITE) {
                Err(e) if e.raw_os_error() == Some(libc::EACCES) && p & perm::W == 0 => {
                    mprotect(libc::PROT_READ)
                }
                r => r,
            }
        };
        r.map_err(MemError::Protect)
    }

    /// Maps `[addr, addr+len)` (page aligned) with Linux `prot`, zero-filled.
    pub fn map(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), MemError> {
        let (addr, len) = (page_down(addr), page_up(len));
        Self::check_range(addr, len)?;
        let p = prot_to_perm(prot);
        self.host_map_anon(addr, len, p & perm::R != 0)?;
        self.set_perms(Self::page_range(addr, len), |_| p);
        Ok(())
    }

    /// Maps `len` bytes of the open file `fd` from `offset` at `[addr, addr+len)` (page
    /// aligned) with Linux `prot`, sharing the host's page cache (`shared`: writes reach the
    /// file, as MAP_SHARED) instead of copying: one host `mmap` whatever the length. Pages
    /// wholly beyond the end of the file are [`perm::UNBACKED`]: accesses raise SIGBUS, as in
    /// Linux (a file that grows later does not make them accessible; one truncated later
    /// makes the host raise SIGBUS, which kills the guest as Linux's default action would).
    /// The error carries the host's errno (EACCES, ENODEV, ...) for the guest.
    pub fn map_file(
        &mut self,
        addr: u64,
        len: u64,
        prot: u64,
        fd: i32,
        offset: u64,
        shared: bool,
    ) -> Result<(), MemError> {
        let (addr, len) = (page_down(addr), page_up(len));
        Self::check_range(addr, len)?;
        let errno = |e: i32| MemError::Protect(std::io::Error::from_raw_os_error(e));
        // SAFETY: a plain struct of integers, written by fstat below.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on a descriptor number into our own host struct.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(MemError::Protect(std::io::Error::last_os_error()));
        }
        // Only regular files have an end to fault beyond; devices map what was asked for.
        let backed = if st.st_mode & libc::S_IFMT == libc::S_IFREG {
            let size = u64::try_from(st.st_size).unwrap_or(0);
            page_up(size.saturating_sub(offset)).min(len)
        } else {
            len
        };
        let off = libc::off_t::try_from(offset).map_err(|_| errno(libc::EOVERFLOW))?;
        let p = prot_to_perm(prot);
        let host_prot = if p & perm::R == 0 {
            libc::PROT_NONE
        } else if shared && p & perm::W == 0 {
            // Host write access to a shared mapping needs a writable descriptor, and the
            // guest does not write (the table says so): read-only is enough.
            libc::PROT_READ
        } else {
            libc::PROT_READ | libc::PROT_WRITE
        };
        let kind = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        };
        if backed > 0 {
            // SAFETY: the range lies inside our own reservation and is page aligned;
            // MAP_FIXED replaces only our pages; the kernel checks `fd` and its mode.
            let r = unsafe {
                libc::mmap(
                    self.host(addr),
                    backed as usize,
                    host_prot,
                    kind | libc::MAP_FIXED,
                    fd,
                    off,
                )
            };
            if r == libc::MAP_FAILED {
                return Err(MemError::Protect(std::io::Error::last_os_error()));
            }
            self.set_perms(Self::page_range(addr, backed), |_| p);
        }
        if backed < len {
            self.host_map_anon(addr + backed, len - backed, false)?;
            self.set_perms(Self::page_range(addr + backed, len - backed), |_| {
                perm::MAPPED | perm::UNBACKED
            });
        }
        Ok(())
    }

    /// Maps `[addr, addr+len)` with Linux `prot` where nothing is mapped yet, and adds `prot`
    /// to the pages already mapped there (ELF segments sharing a page): one host call per run
    /// of unmapped pages, so a segment of any size is set up at once.
    pub fn map_merge(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), MemError> {
        let (addr, len) = (page_down(addr), page_up(len));
        Self::check_range(addr, len)?;
        let pages = Self::page_range(addr, len);
        let mut i = pages.start;
        while i < pages.end {
            let mapped = self.perms[i] != 0;
            let run = self.perms[i..pages.end]
                .iter()
                .position(|q| (*q != 0) != mapped)
                .map_or(pages.end, |n| i + n);
            if mapped {
                for page in i..run {
                    let old = perm_to_prot(self.perms[page]);
                    self.protect(page as u64 * PAGE, PAGE, old | prot)?;
                }
            } else {
                self.map(i as u64 * PAGE, (run - i) as u64 * PAGE, prot)?;
            }
            i = run;
        }
        Ok(())
    }

    /// Moves the mapping of `[old, old+len)` to the free range at `new` without copying
    /// (the host `mremap`s the pages, file-backed or not); `old` is left unmapped. Fails with
    /// EFAULT when part of the old range is unmapped. Translated-code marks are not carried
    /// over (the caller invalidates both ranges).
    pub fn move_pages(&mut self, old: u64, len: u64, new: u64) -> Result<(), MemError> {
        let (old, len, new) = (page_down(old), page_up(len), page_down(new));
        Self::check_range(old, len)?;
        Self::check_range(new, len)?;
        let (from, to) = (Self::page_range(old, len), Self::page_range(new, len));
        if from.start < to.end && to.start < from.end {
            return Err(MemError::OutOfRange(new, len));
        }
        if self.perms[from.clone()]
            .iter()
            .any(|p| p & perm::MAPPED == 0)
        {
            return Err(MemError::Protect(std::io::Error::from_raw_os_error(
                libc::EFAULT,
            )));
        }
        // MREMAP_DONTUNMAP leaves the old range mapped (no hole in the reservation that
        // another host mapping could take before it is closed again just below).
        // SAFETY: both ranges lie inside our own reservation, are page aligned and do not
        // overlap; MREMAP_FIXED replaces only our pages at `new`.
        let r = unsafe {
            libc::mremap(
                self.host(old),
                len as usize,
                len as usize,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP,
                self.host(new),
            )
        };
        if r == libc::MAP_FAILED {
            return Err(MemError::Protect(std::io::Error::last_os_error()));
        }
        self.host_map_anon(old, len, false)?;
        let moved: Vec<u8> = self.perms[from.clone()]
            .iter()
            .map(|p| p & !(perm::CODE | perm::SPAN_R | perm::SPAN_W))
            .collect();
        for (i, p) in to.clone().zip(moved) {
            self.perms[i] = p;
        }
        self.set_perms(to, |p| p);
        self.set_perms(from, |_| 0);
        Ok(())
    }

    /// Page-index range of a checked, page-aligned guest range.
    fn page_range(addr: u64, len: u64) -> std::ops::Range<usize> {
        (addr / PAGE) as usize..((addr + len) / PAGE) as usize
    }

    /// Zero-fills a host range (its old contents are dropped).
    fn discard(&mut self, addr: u64, len: u64) {
        // SAFETY: inside our reservation (checked by callers); MADV_DONTNEED on a private
        // anonymous mapping just drops the pages, which read back as zeros.
        unsafe {
            libc::madvise(
                self.base.add(addr as usize) as *mut libc::c_void,
                len as usize,
                libc::MADV_DONTNEED,
            );
        }
    }

    /// Zero-fills the mapped pages of a range, keeping their permissions (MADV_DONTNEED).
    pub fn zero(&mut self, addr: u64, len: u64) {
        let (addr, len) = (page_down(addr), page_up(len));
        if Self::check_range(addr, len).is_ok() {
            self.discard(addr, len);
        }
    }

    /// Unmaps a range.
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<(), MemError> {
        let (addr, len) = (page_down(addr), page_up(len));
        Self::check_range(addr, len)?;
        self.host_map_anon(addr, len, false)?;
        self.set_perms(Self::page_range(addr, len), |_| 0);
        Ok(())
    }

    /// Changes the protection of mapped pages. Fails with `false` if any page is unmapped.
    /// Pages beyond the end of their file keep their state (see [`Self::map_file`]).
    pub fn protect(&mut self, addr: u64, len: u64, prot: u64) -> Result<bool, MemError> {
        let (addr, len) = (page_down(addr), page_up(len));
        Self::check_range(addr, len)?;
        let range = Self::page_range(addr, len);
        if self.perms[range.clone()]
            .iter()
            .any(|p| p & perm::MAPPED == 0)
        {
            return Ok(false);
        }
        let p = prot_to_perm(prot);
        self.host_protect(addr, len, p)?;
        // Close the unbacked pages again (the tail of a file mapping: usually none).
        for i in range.clone() {
            if self.perms[i] & perm::UNBACKED != 0 {
                self.host_protect(i as u64 * PAGE, PAGE, 0)?;
            }
        }
        // Translated code stays marked: the marks are about the contents, not the rights.
        self.set_perms(range, |old| {
            if old & perm::UNBACKED != 0 {
                old
            } else {
                p | old & perm::CODE
            }
        });
        Ok(true)
    }

    /// Whether every page of the range is unmapped.
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        let (addr, len) = (page_down(addr), page_up(len));
        if Self::check_range(addr, len).is_err() {
            return false;
        }
        self.perms[(addr / PAGE) as usize..((addr + len) / PAGE) as usize]
            .iter()
            .all(|p| *p == 0)
    }

    /// Finds `len` free bytes, searching down from `below` (for mmap without a hint).
    pub fn find_free(&self, len: u64, below: u64) -> Option<u64> {
        let pages = (page_up(len) / PAGE) as usize;
        let mut end = (below.min(GUEST_SPACE) / PAGE) as usize;
        while end >= pages {
            let start = end - pages;
            match self.perms[start..end].iter().rposition(|p| *p != 0) {
                None => return Some(start as u64 * PAGE),
                Some(i) => end = start + i,
            }
        }
        None
    }

    /// Page-index range of `[addr, addr+len)`, clamped to the address space.
    fn pages(&self, addr: u64, len: u64) -> std::ops::Range<usize> {
        let first = ((addr / PAGE) as usize).min(self.perms.len());
        let last = ((addr.saturating_add(len.max(1)) - 1) / PAGE) as usize;
        first..(last + 1).min(self.perms.len())
    }

    /// Marks the pages of `[addr, addr+len)` as holding translated code.
    pub fn mark_code(&mut self, addr: u64, len: u64) {
        let r = self.pages(addr, len);
        self.set_perms(r, |p| p | perm::CODE);
    }

    /// Clears the translated-code marks of a range.
    pub fn clear_code(&mut self, addr: u64, len: u64) {
        let r = self.pages(addr, len);
        self.set_perms(r, |p| p & !perm::CODE);
    }

    /// Checks `[addr, addr+len)` against `need` and returns the host pointer.
    #[inline]
    fn check(&mut self, addr: u64, len: u64, need: u8, write: bool) -> Result<*mut u8, Fault> {
        let fault = Fault::Segv { addr, write };
        let end = addr
            .checked_add(len)
            .filter(|e| *e <= GUEST_SPACE)
            .ok_or(fault)?;
        if len == 0 {
            return Ok(self.base);
        }
        let (first, last) = ((addr / PAGE) as usize, ((end - 1) / PAGE) as usize);
        let mut code = false;
        for (i, p) in self.perms[first..=last].iter().enumerate() {
            if p & need != need || p & perm::UNBACKED != 0 {
                let bad = if i == 0 {
                    addr
                } else {
                    (first + i) as u64 * PAGE
                };
                if p & perm::UNBACKED != 0 {
                    return Err(Fault::Unbacked { addr: bad });
                }
                return Err(Fault::Segv { addr: bad, write });
            }
            code |= p & perm::CODE != 0;
        }
        if write && code {
            self.code_written = Some(match self.code_written {
                Some((a, b)) => (a.min(addr), b.max(end)),
                None => (addr, end),
            });
        }
        // SAFETY: addr + len <= GUEST_SPACE, inside the reservation.
        Ok(unsafe { self.base.add(addr as usize) })
    }

    /// Guest bytes as a slice, checked for read permission.
    pub fn slice(&mut self, addr: u64, len: u64) -> Result<&[u8], Fault> {
        let p = self.check(addr, len, perm::R, false)?;
        // SAFETY: checked: the range is mapped and readable (host-accessible).
        Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
    }

    /// Guest bytes as a mutable slice, checked for write permission.
    pub fn slice_mut(&mut self, addr: u64, len: u64) -> Result<&mut [u8], Fault> {
        let p = self.check(addr, len, perm::W, true)?;
        // SAFETY: checked: the range is mapped and writable (host-accessible).
        Ok(unsafe { std::slice::from_raw_parts_mut(p, len as usize) })
    }

    /// Writes bytes ignoring guest permissions (loader use), the range must be mapped.
    pub fn poke(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let p = self.check(addr, data.len() as u64, perm::MAPPED, true)?;
        // Pages the guest may not write may be closed or read-only on the host (a shared
        // mapping of a read-only file: then opening fails, as Linux's write does): open
        // them for the copy, then restore the protection their guest rights give.
        let pages = self.pages(addr, data.len() as u64);
        let closed: Vec<usize> = pages.filter(|&i| self.perms[i] & perm::W == 0).collect();
        let fault = Fault::Segv { addr, write: true };
        let mut opened = Vec::with_capacity(closed.len());
        let mut result = Ok(());
        for &i in &closed {
            if self
                .host_protect(i as u64 * PAGE, PAGE, perm::R | perm::W)
                .is_err()
            {
                result = Err(fault);
                break;
            }
            opened.push(i);
        }
        if result.is_ok() {
            // SAFETY: checked: mapped pages inside the reservation, host-writable now.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        }
        for &i in &opened {
            if self
                .host_protect(i as u64 * PAGE, PAGE, self.perms[i])
                .is_err()
            {
                result = Err(fault);
            }
        }
        result
    }

    /// Reads a NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(&mut self, addr: u64, max: usize) -> Result<Vec<u8>, Fault> {
        let mut out = Vec::new();
        let mut a = addr;
        loop {
            // Read up to the end of the page at a time.
            let chunk = (PAGE - a % PAGE).min((max + 1 - out.len()) as u64);
            let s = self.slice(a, chunk)?;
            if let Some(n) = s.iter().position(|b| *b == 0) {
                out.extend_from_slice(&s[..n]);
                return Ok(out);
            }
            out.extend_from_slice(s);
            a += chunk;
            if out.len() > max {
                return Err(Fault::Segv {
                    addr: a,
                    write: false,
                });
            }
        }
    }

    /// Fetches an instruction word for translation (needs execute permission).
    pub fn fetch(&mut self, addr: u64) -> Option<u32> {
        if !addr.is_multiple_of(4) {
            return None;
        }
        let p = self.check(addr, 4, perm::X, false).ok()?;
        // SAFETY: checked: mapped, executable, 4 bytes inside the reservation.
        Some(unsafe { (p as *const u32).read_unaligned() })
    }

    /// Reads bytes ignoring guest permissions (/proc/self/mem); the range must be mapped.
    pub fn peek(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let fault = Fault::Segv { addr, write: false };
        let len = buf.len() as u64;
        let end = addr
            .checked_add(len)
            .filter(|e| *e <= GUEST_SPACE)
            .ok_or(fault)?;
        if len == 0 {
            return Ok(());
        }
        let pages = self.pages(addr, end - addr);
        // Unmapped pages, and pages beyond the end of a mapped file (no data: Linux's
        // access fails there too), cannot be read.
        if self.perms[pages.clone()]
            .iter()
            .any(|p| p & perm::MAPPED == 0 || p & perm::UNBACKED != 0)
        {
            return Err(fault);
        }
        // Unreadable guest pages are inaccessible on the host: open them for the copy.
        let closed: Vec<usize> = pages.filter(|&i| self.perms[i] & perm::R == 0).collect();
        for &i in &closed {
            self.host_protect(i as u64 * PAGE, PAGE, perm::R)
                .map_err(|_| fault)?;
        }
        // SAFETY: mapped pages inside the reservation (checked above), host-accessible now.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(addr as usize), buf.as_mut_ptr(), buf.len())
        };
        for &i in &closed {
            self.host_protect(i as u64 * PAGE, PAGE, 0)
                .map_err(|_| fault)?;
        }
        Ok(())
    }

    /// The per-page permission bytes of the whole guest space (for /proc/self/maps).
    pub fn page_perms(&self) -> &[u8] {
        &self.perms
    }
}

impl Memory for GuestMemory {
    #[inline]
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, Fault> {
        let p = self.check(addr, size as u64, perm::R, false)?;
        // SAFETY: checked: `size` readable bytes at p.
        unsafe {
            Ok(match size {
                1 => *p as u64,
                2 => (p as *const u16).read_unaligned() as u64,
                4 => (p as *const u32).read_unaligned() as u64,
                _ => (p as *const u64).read_unaligned(),
            })
        }
    }
    #[inline]
    fn write(&mut self, addr: u64, size: u8, val: u64) -> Result<(), Fault> {
        let p = self.check(addr, size as u64, perm::W, true)?;
        // SAFETY: checked: `size` writable bytes at p.
        unsafe {
            match size {
                1 => *p = val as u8,
                2 => (p as *mut u16).write_unaligned(val as u16),
                4 => (p as *mut u32).write_unaligned(val as u32),
                _ => (p as *mut u64).write_unaligned(val),
            }
        }
        Ok(())
    }
    fn read_bytes(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        buf.copy_from_slice(self.slice(addr, buf.len() as u64)?);
        Ok(())
    }
    fn write_bytes(&mut self, addr: u64, buf: &[u8]) -> Result<(), Fault> {
        self.slice_mut(addr, buf.len() as u64)?.copy_from_slice(buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The span bits follow every change of the page or of its successor.
    #[test]
    fn span_bits_follow_mappings_and_code_marks() {
        let mut m = GuestMemory::new().expect("reserve");
        let a = 0x10_0000;
        m.map(a, 3 * PAGE, 3).expect("map rw");
        let span = |m: &GuestMemory, i: u64| m.perm(a + i * PAGE) & (perm::SPAN_R | perm::SPAN_W);
        assert_eq!(span(&m, 0), perm::SPAN_R | perm::SPAN_W);
        assert_eq!(span(&m, 1), perm::SPAN_R | perm::SPAN_W);
        // The last page of the mapping: its successor is unmapped.
        assert_eq!(span(&m, 2), 0);
        m.mark_code(a + PAGE, 4);
        assert_eq!(span(&m, 0), perm::SPAN_R);
        assert_eq!(span(&m, 1), perm::SPAN_R);
        m.clear_code(a + PAGE, 4);
        assert_eq!(span(&m, 0), perm::SPAN_R | perm::SPAN_W);
        assert!(m.protect(a + PAGE, PAGE, 1).expect("protect"));
        assert_eq!(span(&m, 0), perm::SPAN_R);
        assert_eq!(span(&m, 1), perm::SPAN_R);
        m.unmap(a + PAGE, PAGE).expect("unmap");
        assert_eq!(span(&m, 0), 0);
        assert_eq!(m.perm(a + PAGE), 0);
    }

    /// Pages the guest may not read are inaccessible on the host, and the loader can still
    /// write them.
    #[test]
    fn unreadable_pages_are_closed_on_the_host() {
        let mut m = GuestMemory::new().expect("reserve");
        let a = 0x20_0000;
        m.map(a, PAGE, 0).expect("map none");
        m.poke(a, b"abc").expect("poke");
        assert!(m.slice(a, 3).is_err());
        assert!(m.protect(a, PAGE, 1).expect("protect"));
        assert_eq!(m.slice(a, 3).expect("read"), b"abc");
        assert!(m.protect(a, PAGE, 0).expect("protect"));
        assert!(m.slice(a, 1).is_err());
    }
}
