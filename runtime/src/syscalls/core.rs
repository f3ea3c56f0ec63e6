//! Process lifetime and memory: exit, exit_group, brk, mmap, munmap, mprotect, mremap,
//! madvise.

use super::{SysResult, Syscall};
use crate::memory::{page_up, perm_to_prot, PAGE};
use crate::process::{Process, BRK_LIMIT, MMAP_TOP};

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    Syscall {
        nr: 93,
        name: "exit",
        handler: exit,
    },
    Syscall {
        nr: 94,
        name: "exit_group",
        handler: exit,
    },
    Syscall {
        nr: 214,
        name: "brk",
        handler: brk,
    },
    Syscall {
        nr: 222,
        name: "mmap",
        handler: mmap,
    },
    Syscall {
        nr: 215,
        name: "munmap",
        handler: munmap,
    },
    Syscall {
        nr: 226,
        name: "mprotect",
        handler: mprotect,
    },
    Syscall {
        nr: 216,
        name: "mremap",
        handler: mremap,
    },
    Syscall {
        nr: 233,
        name: "madvise",
        handler: madvise,
    },
];

fn exit(_p: &mut Process, a: [u64; 6]) -> SysResult {
    SysResult::Exit(a[0] as i32 & 0xff)
}

fn brk(p: &mut Process, a: [u64; 6]) -> SysResult {
    let want = a[0];
    if want < p.brk_start || want > p.brk_start + BRK_LIMIT {
        return SysResult::Ret(p.brk as i64);
    }
    let (old_end, new_end) = (page_up(p.brk), page_up(want));
    if new_end > old_end {
        if !p.mem.is_free(old_end, new_end - old_end)
            || p.mem.map(old_end, new_end - old_end, 3).is_err()
        {
            return SysResult::Ret(p.brk as i64);
        }
    } else if new_end < old_end && p.mem.unmap(new_end, old_end - new_end).is_err() {
        return SysResult::Ret(p.brk as i64);
    }
    p.brk = want;
    SysResult::Ret(want as i64)
}

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

fn mmap(p: &mut Process, a: [u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2], a[3], a[4] as i32, a[5]);
    if len == 0 || addr % PAGE != 0 || off % PAGE != 0 || flags & (MAP_SHARED | MAP_PRIVATE) == 0 {
        return SysResult::err(libc::EINVAL);
    }
    let len = page_up(len);
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let target = if fixed {
        if !Process::in_space(addr, len) {
            return SysResult::err(libc::ENOMEM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !p.mem.is_free(addr, len) {
            return SysResult::err(libc::EEXIST);
        }
        addr
    } else if addr != 0 && Process::in_space(addr, len) && p.mem.is_free(addr, len) {
        addr
    } else {
        match p.mem.find_free(len, MMAP_TOP) {
            Some(a) => a,
            None => return SysResult::err(libc::ENOMEM),
        }
    };
    let r = if flags & MAP_ANONYMOUS != 0 {
        p.mem.map(target, len, prot)
    } else {
        // The host file itself is mapped into the guest range: no copy, pages are read
        // as the guest touches them, MAP_SHARED writes reach the file.
        p.mem
            .map_file(target, len, prot, fd, off, flags & MAP_SHARED != 0)
    };
    if let Err(e) = r {
        return SysResult::err(host_errno(&e));
    }
    p.invalidate(target, len);
    SysResult::Ret(target as i64)
}

fn munmap(p: &mut Process, a: [u64; 6]) -> SysResult {
    let (addr, len) = (a[0], page_up(a[1]));
    if addr % PAGE != 0 || len == 0 || !Process::in_space(addr, len) {
        return SysResult::err(libc::EINVAL);
    }
    if p.mem.unmap(addr, len).is_err() {
        return SysResult::err(libc::EINVAL);
    }
    p.invalidate(addr, len);
    SysResult::Ret(0)
}

fn mprotect(p: &mut Process, a: [u64; 6]) -> SysResult {
    let (addr, len, prot) = (a[0], page_up(a[1]), a[2]);
    if addr % PAGE != 0 || !Process::in_space(addr, len) {
        return SysResult::err(libc::EINVAL);
    }
    match p.mem.protect(addr, len, prot) {
        Ok(true) => {
            p.invalidate(addr, len);
            SysResult::Ret(0)
        }
        Ok(false) => SysResult::err(libc::ENOMEM),
        // E.g. EACCES: write access to a shared mapping of a read-only file.
        Err(e) => SysResult::err(host_errno(&e)),
    }
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

fn mremap(p: &mut Process, a: [u64; 6]) -> SysResult {
    let (old, old_len, new_len, flags) = (a[0], page_up(a[1]), page_up(a[2]), a[3]);
    if old % PAGE != 0
        || new_len == 0
        || old_len == 0
        || flags & MREMAP_FIXED != 0
        || !Process::in_space(old, old_len)
    {
        return SysResult::err(libc::EINVAL);
    }
    if new_len <= old_len {
        if new_len < old_len {
            let _ = p.mem.unmap(old + new_len, old_len - new_len);
            p.invalidate(old + new_len, old_len - new_len);
        }
        return SysResult::Ret(old as i64);
    }
    let prot = perm_to_prot(p.mem.perm(old));
    if Process::in_space(old + old_len, new_len - old_len)
        && p.mem.is_free(old + old_len, new_len - old_len)
    {
        if p.mem.map(old + old_len, new_len - old_len, prot).is_err() {
            return SysResult::err(libc::ENOMEM);
        }
        return SysResult::Ret(old as i64);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return SysResult::err(libc::ENOMEM);
    }
    let Some(target) = p.mem.find_free(new_len, MMAP_TOP) else {
        return SysResult::err(libc::ENOMEM);
    };
    // The host mapping moves (file or anonymous, no copy), then grows like in place.
    if let Err(e) = p.mem.move_pages(old, old_len, target) {
        return SysResult::err(host_errno(&e));
    }
    if new_len > old_len
        && p.mem
            .map(target + old_len, new_len - old_len, prot)
            .is_err()
    {
        return SysResult::err(libc::ENOMEM);
    }
    p.invalidate(old, old_len);
    p.invalidate(target, new_len);
    SysResult::Ret(target as i64)
}

/// The errno of a failed memory operation for the guest (ENOMEM when the host gave none).
fn host_errno(e: &crate::memory::MemError) -> i32 {
    match e {
        crate::memory::MemError::Protect(io) => io.raw_os_error().unwrap_or(libc::ENOMEM),
        _ => libc::ENOMEM,
    }
}

const MADV_DONTNEED: u64 = 4;

fn madvise(p: &mut Process, a: [u64; 6]) -> SysResult {
    let (addr, len, advice) = (a[0], page_up(a[1]), a[2]);
    if addr % PAGE != 0 || !Process::in_space(addr, len) {
        return SysResult::err(libc::EINVAL);
    }
    if advice == MADV_DONTNEED {
        // Private anonymous pages read back as zeros afterwards.
        p.mem.zero(addr, len);
        p.invalidate(addr, len);
    }
    SysResult::Ret(0)
}
