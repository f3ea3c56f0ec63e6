//! A contained /proc, like qemu-user's: the guest's own /proc entries describe the guest,
//! never the emulator's host process.
//!
//! The check is path-independent: every open looks at what it actually opened (`fstatfs`
//! for procfs, then the kernel's name of the file) and, before that, at the name itself
//! opened without following a final symlink, so symlinks, directory descriptors,
//! `/proc/<host pid>`, `/proc/thread-self` and `task/<tid>` all end up in [`policy`]:
//! - own process: `maps`, `cmdline`, `environ`, `auxv` and `stat` are generated for the
//!   guest and served from a sealed-off memfd; `mem` is a [`Special`] descriptor whose
//!   reads and writes reach guest memory only ([`intercept`]); `exe` is the guest program;
//!   `fd/N` and `fdinfo/N` of runtime descriptors do not exist; a short allowlist of
//!   harmless files passes through; everything else (map_files, pagemap, smaps, ...) is
//!   EACCES;
//! - another process running vmrun (a forked guest): what exposes its host memory or
//!   mappings is EACCES, its runtime descriptors do not exist.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;

use super::fds;
use super::guest::{fail, Sys};
use super::SysResult;
use crate::loader::{STACK_SIZE, STACK_TOP};
use crate::memory::{page_down, page_up, perm, PAGE};
use crate::process::Process;

/// What a guest mapping is called in /proc/self/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The file's path.
    pub path: Vec<u8>,
    /// File offset of the mapping's first byte.
    pub offset: u64,
    /// The file's device.
    pub dev: u64,
    /// The file's inode.
    pub ino: u64,
}

/// Names of file-backed guest ranges: start -> (end, name). Anonymous memory, the heap,
/// the stack and the vDSO page are named from the process state when printed.
#[derive(Debug, Clone, Default)]
pub struct MapNames(BTreeMap<u64, (u64, FileName)>);

impl MapNames {
    /// Names `[start, start+len)`, replacing what it overlaps.
    pub fn note(&mut self, start: u64, len: u64, name: FileName) {
        self.forget(start, len);
        if len > 0 {
            self.0.insert(start, (start.saturating_add(len), name));
        }
    }

    /// Drops the names of `[start, start+len)`, splitting records that straddle it.
    pub fn forget(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        let hit: Vec<u64> = self
            .0
            .range(..end)
            .filter(|(_, (e, _))| *e > start)
            .map(|(s, _)| *s)
            .collect();
        for s in hit {
            let Some((e, name)) = self.0.remove(&s) else {
                continue;
            };
            if s < start {
                self.0.insert(s, (start, name.clone()));
            }
            if e > end {
                let offset = name.offset + (end - s);
                self.0.insert(end, (e, FileName { offset, ..name }));
            }
        }
    }

    /// The record holding `addr`: its start and name.
    fn at(&self, addr: u64) -> Option<(u64, &FileName)> {
        self.0
            .range(..=addr)
            .next_back()
            .filter(|(_, (e, _))| addr < *e)
            .map(|(s, (_, n))| (*s, n))
    }
}

/// Where the initial stack holds the guest's argv and envp strings, and its auxv.
#[derive(Debug, Clone, Default)]
pub struct ProcInfo {
    /// argv strings `[start, end)` (Linux `arg_start`/`arg_end`).
    pub arg: (u64, u64),
    /// envp strings `[start, end)`.
    pub env: (u64, u64),
    /// The auxv words as loaded, AT_NULL included.
    pub auxv: Vec<u8>,
    /// The initial stack pointer.
    pub sp: u64,
    /// Lowest and highest address of the executable's code segments.
    pub code: (u64, u64),
    /// Lowest and highest address of its writable segments.
    pub data: (u64, u64),
}

/// A generated read-only file of our own /proc/<pid>.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    /// `maps`.
    Maps,
    /// `cmdline`.
    Cmdline,
    /// `environ`.
    Environ,
    /// `auxv`.
    Auxv,
    /// `stat`.
    Stat,
}

impl Gen {
    fn name(self) -> &'static str {
        match self {
            Gen::Maps => "maps",
            Gen::Cmdline => "cmdline",
            Gen::Environ => "environ",
            Gen::Auxv => "auxv",
            Gen::Stat => "stat",
        }
    }
}

/// A descriptor the runtime serves (or names) itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `/proc/self/mem`: reads and writes go to guest memory at the file offset.
    Mem,
    /// A generated file (for the name readlink shows).
    Gen(Gen),
}

/// Records what [`ProcInfo`] and [`MapNames`] need from a freshly loaded image (called
/// by `Process::spawn_image` once the stack is set up).
pub fn note_image(p: &mut Process, elf: &[u8], sp: u64) {
    let word = |p: &mut Process, a: u64| {
        let mut b = [0u8; 8];
        p.mem
            .peek(a, &mut b)
            .map(|_| u64::from_le_bytes(b))
            .unwrap_or(0)
    };
    let argc = word(p, sp);
    let strings = |p: &mut Process, first: u64, n: u64| -> (u64, u64, u64) {
        let (mut lo, mut hi, mut a) = (u64::MAX, 0u64, first);
        for _ in 0..n.min(1 << 20) {
            let s = word(p, a);
            if s == 0 {
                break;
            }
            let len = p.mem.read_cstr(s, 1 << 20).map_or(0, |v| v.len() as u64);
            lo = lo.min(s);
            hi = hi.max(s + len + 1);
            a += 8;
        }
        (if lo == u64::MAX { 0 } else { lo }, hi, a)
    };
    let (a0, a1, after_argv) = strings(p, sp + 8, argc);
    let (e0, e1, after_envp) = strings(p, after_argv + 8, u64::MAX);
    let mut auxv = Vec::new();
    let mut a = after_envp + 8;
    loop {
        let (k, v) = (word(p, a), word(p, a + 8));
        auxv.extend_from_slice(&k.to_le_bytes());
        auxv.extend_from_slice(&v.to_le_bytes());
        if k == 0 || auxv.len() > 4096 {
            break;
        }
        a += 16;
    }
    let mut info = ProcInfo {
        arg: (a0, a1),
        env: (e0, e1),
        auxv,
        sp,
        code: (u64::MAX, 0),
        data: (u64::MAX, 0),
    };
    // The executable's segments, named by its path.
    let st = std::fs::metadata(&p.exe).ok();
    let (dev, ino) = st.map_or((0, 0), |m| {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    });
    let path = p.exe.as_os_str().as_bytes().to_vec();
    if let Ok(hdr) = crate::loader::check_elf(elf) {
        use object::read::elf::{FileHeader, ProgramHeader};
        let le = object::LittleEndian;
        for ph in hdr.program_headers(le, elf).unwrap_or(&[]) {
            if ph.p_type(le) != object::elf::PT_LOAD {
                continue;
            }
            let start = ph.p_vaddr(le).wrapping_add(p.image.bias);
            let file_end = start.saturating_add(ph.p_filesz(le));
            let end = start.saturating_add(ph.p_memsz(le));
            let range = if ph.p_flags(le) & object::elf::PF_X != 0 {
                &mut info.code
            } else {
                &mut info.data
            };
            *range = (range.0.min(start), range.1.max(end));
            let s = page_down(start);
            let len = page_up(file_end).saturating_sub(s);
            let offset = page_down(ph.p_offset(le));
            let name = FileName {
                path: path.clone(),
                offset,
                dev,
                ino,
            };
            p.sys.maps.note(s, len, name);
        }
    }
    for r in [&mut info.code, &mut info.data] {
        if r.0 == u64::MAX {
            *r = (0, 0);
        }
    }
    p.sys.proc_info = info;
}

/// Keeps mapping names in step after mmap, munmap and mremap (called by the dispatcher
/// with the call's result).
pub fn track(p: &mut Process, nr: u64, a: &[u64; 6], r: SysResult) {
    let SysResult::Ret(v) = r else { return };
    if v < 0 {
        return;
    }
    match nr {
        222 => {
            let len = page_up(a[1]);
            p.sys.maps.forget(v as u64, len);
            if a[3] & 0x20 == 0 {
                if let Some(name) = file_name(a[4] as i32, a[5]) {
                    p.sys.maps.note(v as u64, len, name);
                }
            }
        }
        215 => p.sys.maps.forget(a[0], page_up(a[1])),
        216 => {
            let (old, old_len, new_len) = (a[0], page_up(a[1]), page_up(a[2]));
            let moved = p.sys.maps.at(old).map(|(s, n)| FileName {
                offset: n.offset + (old - s),
                ..n.clone()
            });
            p.sys.maps.forget(old, old_len);
            if let Some(n) = moved {
                p.sys.maps.note(v as u64, new_len, n);
            }
        }
        _ => {}
    }
}

/// The kernel's name for an open descriptor of ours (`readlink /proc/self/fd/N`).
fn fd_path(fd: i32) -> Option<Vec<u8>> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

/// The name of a file mapping: path, offset, device and inode.
fn file_name(fd: i32, offset: u64) -> Option<FileName> {
    let mut st = zeroed_stat();
    // SAFETY: host struct stat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some(FileName {
        path: fd_path(fd)?,
        offset,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: struct stat is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

fn statfs_type(fd: i32) -> i64 {
    let mut s = super::fs::HostStatfs::default();
    // SAFETY: host struct statfs.
    let r = unsafe { libc::syscall(libc::SYS_fstatfs, fd, &mut s as *mut _) };
    if r == 0 {
        s.f_type
    } else {
        0
    }
}

/// Whose /proc/<pid> directory an entry lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This process.
    Own,
    /// Another process running the vmrun binary (another guest).
    Vmrun,
    /// Any other process.
    Other,
}

/// A file under some /proc/<pid>/ (or /proc/<pid>/task/<tid>/).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    /// Whose entry.
    pub owner: Owner,
    /// The host pid.
    pub pid: u32,
    /// Path components below the pid (or task) directory.
    pub rest: Vec<Vec<u8>>,
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn stat_path(path: &[u8]) -> Option<(u64, u64)> {
    let c = CString::new(path).ok()?;
    let mut st = zeroed_stat();
    // SAFETY: valid C string, host struct stat.
    (unsafe { libc::stat(c.as_ptr(), &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// The identity of the host's vmrun binary.
fn host_exe() -> Option<(u64, u64)> {
    static E: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    *E.get_or_init(|| stat_path(b"/proc/self/exe"))
}

/// What an open descriptor is, when it is a file of some process's /proc directory.
pub fn classify(fd: i32) -> Option<ProcEntry> {
    if statfs_type(fd) != PROC_SUPER_MAGIC {
        return None;
    }
    let path = fd_path(fd)?;
    let comps: Vec<&[u8]> = path
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    for (i, c) in comps.iter().enumerate() {
        let Some(pid) = digits(c) else { continue };
        let mut root = Vec::new();
        for c in &comps[..i] {
            root.push(b'/');
            root.extend_from_slice(c);
        }
        if root.is_empty() {
            root.push(b'/');
        }
        // A procfs root is the procfs inode 1.
        let is_root = CString::new(root.clone()).ok().is_some_and(|r| {
            let mut st = zeroed_stat();
            // SAFETY: valid C string, host struct stat.
            let ok = unsafe { libc::stat(r.as_ptr(), &mut st) } == 0;
            ok && st.st_ino == 1
        });
        if !is_root {
            continue;
        }
        let mut rest: Vec<Vec<u8>> = comps[i + 1..].iter().map(|c| c.to_vec()).collect();
        if rest.len() >= 2 && rest[0] == b"task" && digits(&rest[1]).is_some() {
            rest.drain(..2);
        }
        let owner = if pid == std::process::id() {
            Owner::Own
        } else {
            let mut exe = root.clone();
            exe.extend_from_slice(format!("/{pid}/exe").as_bytes());
            match (stat_path(&exe), host_exe()) {
                (Some(a), Some(b)) if a == b => Owner::Vmrun,
                _ => Owner::Other,
            }
        };
        return Some(ProcEntry { owner, pid, rest });
    }
    None
}

/// What to do with an opened /proc entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Use the host file.
    Pass,
    /// Fail with this errno.
    Deny(i32),
    /// Open the guest's executable instead.
    Exe,
    /// Serve generated content.
    Gen(Gen),
    /// Serve guest memory.
    Mem,
}

/// Files of our own /proc/<pid> that pass through: they describe the host process in
/// ways that neither expose its memory nor let the guest change it.
const OWN_ALLOW: &[&str] = &[
    "status",
    "statm",
    "limits",
    "mounts",
    "mountinfo",
    "mountstats",
    "cgroup",
    "oom_score",
    "oom_score_adj",
    "oom_adj",
    "comm",
    "cwd",
    "root",
    "io",
    "sched",
    "schedstat",
    "wchan",
    "personality",
    "loginuid",
    "sessionid",
    "uid_map",
    "gid_map",
    "setgroups",
    "projid_map",
    "ns",
    "net",
    "attr",
    "timerslack_ns",
    "cpuset",
    "arch_status",
    "autogroup",
    "timens_offsets",
    "children",
    "task",
    "fd",
    "fdinfo",
];

/// Files of another guest's /proc/<pid> that would expose its host memory or mappings.
const OTHER_VMRUN_DENY: &[&str] = &[
    "mem",
    "maps",
    "smaps",
    "smaps_rollup",
    "pagemap",
    "map_files",
    "numa_maps",
    "environ",
    "auxv",
    "stack",
    "syscall",
];

/// The rule for one /proc entry.
pub fn policy(e: &ProcEntry) -> Action {
    let Some(first) = e.rest.first() else {
        return Action::Pass;
    };
    let first = first.as_slice();
    // fd/N and fdinfo/N of runtime descriptors do not exist.
    if (first == b"fd" || first == b"fdinfo")
        && e.owner != Owner::Other
        && e.rest
            .get(1)
            .and_then(|n| digits(n))
            .is_some_and(|n| fds::is_hidden(n as u64))
    {
        return Action::Deny(libc::ENOENT);
    }
    match e.owner {
        Owner::Other => Action::Pass,
        Owner::Vmrun => {
            if OTHER_VMRUN_DENY.iter().any(|d| d.as_bytes() == first) {
                Action::Deny(libc::EACCES)
            } else {
                Action::Pass
            }
        }
        Owner::Own => match first {
            b"maps" => Action::Gen(Gen::Maps),
            b"cmdline" => Action::Gen(Gen::Cmdline),
            b"environ" => Action::Gen(Gen::Environ),
            b"auxv" => Action::Gen(Gen::Auxv),
            b"stat" => Action::Gen(Gen::Stat),
            b"mem" => Action::Mem,
            b"exe" => Action::Exe,
            f if OWN_ALLOW.iter().any(|d| d.as_bytes() == f) => Action::Pass,
            _ => Action::Deny(libc::EACCES),
        },
    }
}

fn host_openat(dirfd: i32, path: &CStr, flags: i32, mode: u32) -> i64 {
    // SAFETY: valid C string; no other pointers.
    unsafe {
        libc::syscall(
            libc::SYS_openat,
            dirfd as libc::c_long,
            path.as_ptr(),
            flags as libc::c_long,
            mode as libc::c_long,
        )
    }
}

fn close(fd: i32) {
    // SAFETY: a descriptor this module opened.
    unsafe { libc::close(fd) };
}

/// The policy for the name `path` itself, a final symlink not followed (exe, fd/N,
/// map_files/...).
fn name_action(dirfd: i32, path: &CStr) -> Option<(Action, u32)> {
    classify_name(dirfd, path).map(|e| (policy(&e), e.pid))
}

/// What the name `path` itself is (a final symlink not followed), when it is on procfs.
fn classify_name(dirfd: i32, path: &CStr) -> Option<ProcEntry> {
    let fd = host_openat(
        dirfd,
        path,
        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    );
    if fd < 0 {
        return None;
    }
    let e = classify(fd as i32);
    close(fd as i32);
    e
}

/// Puts the open file `new` at descriptor number `fd` (closing what was there).
fn replace(fd: i32, new: i32, cloexec: bool) -> Result<(), SysResult> {
    // SAFETY: plain descriptor operations on descriptors of this call.
    let r = unsafe { libc::dup3(new, fd, if cloexec { libc::O_CLOEXEC } else { 0 }) };
    close(new);
    if r < 0 {
        close(fd);
        return Err(SysResult::host(-1));
    }
    Ok(())
}

/// A fresh open file holding `content`, opened with `flags` (its access mode).
fn memfd_with(name: &str, content: &[u8], flags: i32) -> Result<i32, SysResult> {
    let cname = CString::new(name).unwrap_or_default();
    // SAFETY: valid C string.
    let m = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if m < 0 {
        return Err(SysResult::host(-1));
    }
    let mut done = 0;
    while done < content.len() {
        // SAFETY: a host buffer within its bounds.
        let n = unsafe {
            libc::write(
                m,
                content[done..].as_ptr() as *const libc::c_void,
                content.len() - done,
            )
        };
        if n <= 0 {
            close(m);
            return Err(SysResult::host(-1));
        }
        done += n as usize;
    }
    // A new open file of the memfd with the guest's access mode (so writes to a read-only
    // file are EBADF as in Linux).
    let path = CString::new(format!("/proc/self/fd/{m}")).unwrap_or_default();
    let r = host_openat(libc::AT_FDCWD, &path, flags | libc::O_CLOEXEC, 0);
    close(m);
    if r < 0 {
        return Err(SysResult::host(-1));
    }
    Ok(r as i32)
}

/// openat for the guest: the host open, contained by [`policy`] (`flags` are host flags).
pub fn open(p: &mut Process, dirfd: i32, path: &CStr, flags: i32, mode: u32) -> Sys {
    if let Some((act, _)) = name_action(dirfd, path) {
        match act {
            Action::Deny(e) => return fail(e),
            Action::Exe => return open_exe(p, flags),
            _ => {}
        }
    }
    let fd = host_openat(dirfd, path, flags, mode);
    if fd < 0 {
        return Ok(SysResult::host(fd));
    }
    let fd = fd as i32;
    let act = match classify(fd) {
        Some(e) => policy(&e),
        // Reaching the host's vmrun binary (by a link to /proc/self/exe) means the guest's.
        None if host_exe().is_some() && fd_identity(fd) == host_exe() => Action::Exe,
        None => Action::Pass,
    };
    let cloexec = flags & libc::O_CLOEXEC != 0;
    let accmode = flags & libc::O_ACCMODE;
    match act {
        Action::Pass => {}
        Action::Deny(e) => {
            close(fd);
            return fail(e);
        }
        Action::Exe => {
            close(fd);
            return open_exe(p, flags);
        }
        _ if flags & libc::O_PATH != 0 => {}
        Action::Gen(g) => {
            if accmode != libc::O_RDONLY {
                close(fd);
                return fail(libc::EACCES);
            }
            let content = generate(p, g);
            replace(fd, memfd_with(g.name(), &content, libc::O_RDONLY)?, cloexec)?;
            p.sys.special_fds.insert(fd, Special::Gen(g));
        }
        Action::Mem => {
            replace(fd, memfd_with("mem", &[], accmode)?, cloexec)?;
            p.sys.special_fds.insert(fd, Special::Mem);
        }
    }
    Ok(SysResult::Ret(fd as i64))
}

fn fd_identity(fd: i32) -> Option<(u64, u64)> {
    let mut st = zeroed_stat();
    // SAFETY: host struct stat.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

fn open_exe(p: &Process, flags: i32) -> Sys {
    let path = CString::new(p.exe.as_os_str().as_bytes()).unwrap_or_default();
    Ok(SysResult::host(host_openat(
        libc::AT_FDCWD,
        &path,
        flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC),
        0,
    )))
}

/// readlinkat for the guest: `Some` when the link is one of our own /proc links.
pub fn readlink(p: &Process, dirfd: i32, path: &CStr) -> Option<Result<Vec<u8>, SysResult>> {
    let e = classify_name(dirfd, path)?;
    match policy(&e) {
        Action::Deny(err) => Some(fail(err)),
        Action::Exe => Some(Ok(p.exe.as_os_str().as_bytes().to_vec())),
        _ if e.owner == Owner::Own && e.rest.len() == 2 && e.rest[0] == b"fd" => {
            let n = digits(&e.rest[1])? as i32;
            let name = match p.sys.special_fds.get(&n)? {
                Special::Mem => "mem",
                Special::Gen(g) => g.name(),
            };
            Some(Ok(format!("/proc/{}/{name}", e.pid).into_bytes()))
        }
        _ => None,
    }
}

/// Removes runtime descriptors from a getdents64 result read from `fd` (`buf[..n]`);
/// returns the new length.
pub fn filter_dents(fd: i32, buf: &mut [u8], n: usize) -> usize {
    let Some(e) = classify(fd) else { return n };
    if e.owner == Owner::Other
        || e.rest.len() != 1
        || !(e.rest[0] == b"fd" || e.rest[0] == b"fdinfo")
    {
        return n;
    }
    let (mut rd, mut wr) = (0usize, 0usize);
    while rd + 19 <= n {
        let reclen = u16::from_le_bytes([buf[rd + 16], buf[rd + 17]]) as usize;
        if reclen == 0 || rd + reclen > n {
            break;
        }
        let name = &buf[rd + 19..rd + reclen];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        let hidden = digits(name).is_some_and(|v| fds::is_hidden(v as u64));
        if !hidden {
            buf.copy_within(rd..rd + reclen, wr);
            wr += reclen;
        }
        rd += reclen;
    }
    wr
}

// ---------------------------------------------------------------------------------------
// Generated files.

fn generate(p: &mut Process, g: Gen) -> Vec<u8> {
    let peek = |p: &mut Process, (s, e): (u64, u64)| {
        let mut v = vec![0u8; e.saturating_sub(s).min(1 << 20) as usize];
        match p.mem.peek(s, &mut v) {
            Ok(()) => v,
            Err(_) => Vec::new(),
        }
    };
    match g {
        Gen::Maps => render_maps(p),
        Gen::Cmdline => peek(p, p.sys.proc_info.arg),
        Gen::Environ => peek(p, p.sys.proc_info.env),
        Gen::Auxv => p.sys.proc_info.auxv.clone(),
        Gen::Stat => render_stat(p),
    }
}

/// How one page is named in the maps file.
#[derive(Clone, PartialEq, Eq)]
enum Label {
    Anon,
    Special(&'static str),
    /// A file record, by its start.
    File(u64),
}

/// The guest's mappings in Linux's /proc/<pid>/maps format.
pub fn render_maps(p: &Process) -> Vec<u8> {
    let perms = p.mem.page_perms();
    let stack = (STACK_TOP - STACK_SIZE, STACK_TOP);
    let heap = (p.brk_start, page_up(p.brk));
    let label = |addr: u64| -> Label {
        if p.sys.sigtramp != 0 && page_down(p.sys.sigtramp) == addr {
            Label::Special("[vdso]")
        } else if (stack.0..stack.1).contains(&addr) {
            Label::Special("[stack]")
        } else if (heap.0..heap.1).contains(&addr) {
            Label::Special("[heap]")
        } else if let Some((s, _)) = p.sys.maps.at(addr) {
            Label::File(s)
        } else {
            Label::Anon
        }
    };
    let mut out = Vec::new();
    // The current line: start, end, permission bits, label.
    let mut cur: Option<(u64, u64, u8, Label)> = None;
    let emit = |out: &mut Vec<u8>, (s, e, bits, l): (u64, u64, u8, Label)| {
        let flag = |b: u8, c: char| if bits & b != 0 { c } else { '-' };
        let (name, offset, dev, ino) = match &l {
            Label::Anon => (Vec::new(), 0, 0, 0),
            Label::Special(n) => (n.as_bytes().to_vec(), 0, 0, 0),
            Label::File(start) => match p.sys.maps.at(*start) {
                Some((rs, f)) => (f.path.clone(), f.offset + (s - rs), f.dev, f.ino),
                None => (Vec::new(), 0, 0, 0),
            },
        };
        let mut line = format!(
            "{s:08x}-{e:08x} {}{}{}p {offset:08x} {:02x}:{:02x} {ino} ",
            flag(perm::R, 'r'),
            flag(perm::W, 'w'),
            flag(perm::X, 'x'),
            libc::major(dev),
            libc::minor(dev),
        )
        .into_bytes();
        if !name.is_empty() {
            // Linux pads the name to column 73.
            while line.len() < 72 {
                line.push(b' ');
            }
            line.push(b' ');
            line.extend_from_slice(&name);
        }
        line.push(b'\n');
        out.extend_from_slice(&line);
    };
    const CHUNK: usize = 512;
    for (ci, chunk) in perms.chunks(CHUNK).enumerate() {
        if chunk.iter().all(|b| *b == 0) {
            if let Some(c) = cur.take() {
                emit(&mut out, c);
            }
            continue;
        }
        for (j, &bits) in chunk.iter().enumerate() {
            let addr = (ci * CHUNK + j) as u64 * PAGE;
            if bits & perm::MAPPED == 0 {
                if let Some(c) = cur.take() {
                    emit(&mut out, c);
                }
                continue;
            }
            let rwx = bits & (perm::R | perm::W | perm::X);
            let l = label(addr);
            match &mut cur {
                Some((_, e, b, cl)) if *e == addr && *b == rwx && *cl == l => *e = addr + PAGE,
                _ => {
                    if let Some(c) = cur.take() {
                        emit(&mut out, c);
                    }
                    cur = Some((addr, addr + PAGE, rwx, l));
                }
            }
        }
    }
    if let Some(c) = cur.take() {
        emit(&mut out, c);
    }
    out
}

/// /proc/self/stat: the host's values, with the guest's name and addresses.
fn render_stat(p: &Process) -> Vec<u8> {
    let host = std::fs::read("/proc/self/stat").unwrap_or_default();
    let Some(close_paren) = host.iter().rposition(|b| *b == b')') else {
        return host;
    };
    let comm: Vec<u8> = match &p.sys.comm {
        Some(c) => c.iter().take_while(|b| **b != 0).copied().collect(),
        None => p
            .exe
            .file_name()
            .map(|n| n.as_bytes().iter().take(15).copied().collect())
            .unwrap_or_default(),
    };
    let mut fields: Vec<String> = String::from_utf8_lossy(&host[close_paren + 1..])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let info = &p.sys.proc_info;
    let mapped = p
        .mem
        .page_perms()
        .iter()
        .filter(|b| **b & perm::MAPPED != 0)
        .count() as u64
        * PAGE;
    // Field numbers as in proc(5); `fields[0]` is field 3 (state).
    let set = [
        (23, mapped),
        (26, info.code.0),
        (27, info.code.1),
        (28, info.sp),
        (29, 0),
        (30, 0),
        (45, info.data.0),
        (46, info.data.1),
        (47, p.brk_start),
        (48, info.arg.0),
        (49, info.arg.1),
        (50, info.env.0),
        (51, info.env.1),
    ];
    for (n, v) in set {
        if let Some(f) = fields.get_mut(n - 3) {
            *f = v.to_string();
        }
    }
    let mut out = format!("{} (", std::process::id()).into_bytes();
    out.extend_from_slice(&comm);
    out.extend_from_slice(b") ");
    out.extend_from_slice(fields.join(" ").as_bytes());
    out.push(b'\n');
    out
}

// ---------------------------------------------------------------------------------------
// /proc/self/mem.

/// Transfers between guest buffers `segs` and guest memory at `off` (the file offset),
/// like the kernel's mem_rw with FOLL_FORCE: any mapped page, whatever its protection.
/// Returns the bytes done; EIO when the first byte is not mapped, EFAULT when the first
/// buffer byte is bad.
fn mem_xfer(p: &mut Process, mut off: u64, segs: &[(u64, u64)], write: bool) -> SysResult {
    let mut done = 0u64;
    let mut page = vec![0u8; PAGE as usize];
    for &(buf, len) in segs {
        let mut i = 0u64;
        while i < len {
            let n = (len - i).min(PAGE - off % PAGE);
            let chunk = &mut page[..n as usize];
            let (ok, errno) = if write {
                match p.mem.slice(buf + i, n) {
                    Err(_) => (false, libc::EFAULT),
                    Ok(s) => {
                        chunk.copy_from_slice(s);
                        let ok = p.mem.poke(off, chunk).is_ok();
                        if ok {
                            p.invalidate(off, n);
                        }
                        (ok, libc::EIO)
                    }
                }
            } else if p.mem.peek(off, chunk).is_err() {
                (false, libc::EIO)
            } else {
                match p.mem.slice_mut(buf + i, n) {
                    Ok(s) => {
                        s.copy_from_slice(chunk);
                        (true, 0)
                    }
                    Err(_) => (false, libc::EFAULT),
                }
            };
            if !ok {
                return if done == 0 {
                    SysResult::err(errno)
                } else {
                    SysResult::Ret(done as i64)
                };
            }
            i += n;
            off = off.wrapping_add(n);
            done += n;
        }
    }
    SysResult::Ret(done as i64)
}

/// Reads a guest iovec array (16-byte {base, len} entries).
fn iovecs(p: &mut Process, iov: u64, cnt: u64) -> Result<Vec<(u64, u64)>, SysResult> {
    if cnt > 1024 {
        return fail(libc::EINVAL);
    }
    let raw = super::guest::read_bytes(p, iov, cnt as usize * 16)?;
    Ok(raw
        .chunks_exact(16)
        .map(|e| {
            let w = |o: usize| u64::from_le_bytes(e[o..o + 8].try_into().unwrap_or([0; 8]));
            (w(0), w(8))
        })
        .collect())
}

/// Serves the calls on [`Special::Mem`] descriptors (and refuses mmap of them) before
/// any handler runs; `None` for every other call.
pub fn intercept(p: &mut Process, nr: u64, a: &[u64; 6]) -> Option<SysResult> {
    if p.sys.special_fds.is_empty() {
        return None;
    }
    let is_mem = |fd: u64| p.sys.special_fds.get(&(fd as i32)) == Some(&Special::Mem);
    if nr == 222 && a[3] & 0x20 == 0 && is_mem(a[4]) {
        return Some(SysResult::err(libc::ENODEV));
    }
    // (write?, vectored?, offset argument: None = the file position, Some(i) = a[i]
    // unless it is -1 for preadv2/pwritev2)
    let (write, vectored, pos) = match nr {
        63 => (false, false, None),
        64 => (true, false, None),
        65 => (false, true, None),
        66 => (true, true, None),
        67 => (false, false, Some(3)),
        68 => (true, false, Some(3)),
        69 | 286 => (false, true, Some(3)),
        70 | 287 => (true, true, Some(3)),
        _ => return None,
    };
    if !is_mem(a[0]) {
        return None;
    }
    let fd = a[0] as i32;
    Some(mem_call(p, fd, a, write, vectored, pos).unwrap_or_else(|e| e))
}

fn mem_call(
    p: &mut Process,
    fd: i32,
    a: &[u64; 6],
    write: bool,
    vectored: bool,
    pos: Option<usize>,
) -> Result<SysResult, SysResult> {
    // SAFETY: no pointers.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let mode = fl & libc::O_ACCMODE;
    let allowed = if write {
        mode != libc::O_RDONLY
    } else {
        mode != libc::O_WRONLY
    };
    if fl < 0 || !allowed {
        return fail(libc::EBADF);
    }
    let segs = if vectored {
        iovecs(p, a[1], a[2] as u32 as u64)?
    } else {
        vec![(a[1], a[2])]
    };
    let explicit = pos.map(|i| a[i]).filter(|o| *o as i64 != -1);
    // SAFETY: no pointers.
    let off = match explicit {
        Some(o) => o,
        None => (unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }) as u64,
    };
    let r = mem_xfer(p, off, &segs, write);
    if let (None, SysResult::Ret(n)) = (explicit, r) {
        if n > 0 {
            // SAFETY: no pointers.
            unsafe { libc::lseek(fd, off.wrapping_add(n as u64) as i64, libc::SEEK_SET) };
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    const AT_FDCWD: u64 = -100i64 as u64;

    fn open(p: &mut Process, path: &[u8], flags: u64) -> i64 {
        put_str(p, SCRATCH + 0x8000, path);
        match call(p, 56, &[AT_FDCWD, SCRATCH + 0x8000, flags, 0]) {
            SysResult::Ret(v) => v,
            r => panic!("{r:?}"),
        }
    }

    fn read_all(p: &mut Process, fd: i64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let SysResult::Ret(n) = call(p, 63, &[fd as u64, SCRATCH + 0x9000, 0x1000]) else {
                panic!()
            };
            if n <= 0 {
                return out;
            }
            out.extend(get(p, SCRATCH + 0x9000, n as usize));
        }
    }

    #[test]
    fn maps_lists_the_guest_only() {
        let mut p = process();
        let fd = open(&mut p, b"/proc/self/maps", 0);
        assert!(fd >= 0);
        let text = String::from_utf8(read_all(&mut p, fd)).unwrap();
        assert!(!text.contains("vmrun ") && !text.contains("memfd") && !text.contains("vsyscall"));
        let mut seen_stack = false;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(f.len() == 5 || f.len() == 6, "{line:?}");
            let (s, e) = f[0].split_once('-').unwrap();
            let (s, e) = (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
            );
            assert!(s < e && e <= crate::memory::GUEST_SPACE, "{line}");
            assert_eq!(f[1].len(), 4);
            seen_stack |= f.get(5) == Some(&"[stack]");
            if f.len() == 6 {
                assert_eq!(line.find(f[5]), Some(73), "{line:?}");
            }
        }
        assert!(seen_stack, "{text}");
        // The demo's entry lies in an r-xp line named after the executable.
        let entry = p.image.entry;
        let line = text
            .lines()
            .find(|l| {
                let (s, e) = l.split(' ').next().unwrap().split_once('-').unwrap();
                (u64::from_str_radix(s, 16).unwrap()..u64::from_str_radix(e, 16).unwrap())
                    .contains(&entry)
            })
            .unwrap();
        assert!(
            line.contains(" r-xp ") && line.ends_with("vmrun-test-demo"),
            "{line}"
        );
        // Not writable: EACCES, as the kernel's 0444.
        put_str(&mut p, SCRATCH + 0x8000, b"/proc/self/maps");
        assert_eq!(
            call(&mut p, 56, &[AT_FDCWD, SCRATCH + 0x8000, 2, 0]),
            err(libc::EACCES)
        );
    }

    #[test]
    fn map_names_split_and_forget() {
        let mut m = MapNames::default();
        let f = FileName {
            path: b"/f".to_vec(),
            offset: 0x1000,
            dev: 0,
            ino: 1,
        };
        m.note(0x10000, 0x4000, f.clone());
        m.forget(0x11000, 0x1000);
        assert_eq!(m.at(0x10000).unwrap().1.offset, 0x1000);
        assert!(m.at(0x11000).is_none());
        let (s, n) = m.at(0x12000).unwrap();
        assert_eq!((s, n.offset), (0x12000, 0x3000));
        assert!(m.at(0x14000).is_none());
    }

    #[test]
    fn mem_reads_and_writes_guest_memory_only() {
        let mut p = process();
        let fd = open(&mut p, b"/proc/self/mem", 2) as u64;
        // A read-only page of the guest: writable through mem (FOLL_FORCE).
        let ro = SCRATCH + 0x20000;
        p.mem.map(ro, PAGE, 1).unwrap();
        put_str(&mut p, SCRATCH, b"forced");
        assert_eq!(call(&mut p, 68, &[fd, SCRATCH, 6, ro]), SysResult::Ret(6));
        assert_eq!(get(&mut p, ro, 6), b"forced");
        assert_eq!(
            call(&mut p, 67, &[fd, SCRATCH + 0x100, 6, ro]),
            SysResult::Ret(6)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x100, 6), b"forced");
        // Unmapped, beyond the guest space, or the host: EIO.
        for off in [
            0x1000u64,
            crate::memory::GUEST_SPACE,
            p.mem.host_base() as u64,
            u64::MAX - 8,
        ] {
            assert_eq!(
                call(&mut p, 68, &[fd, SCRATCH, 6, off]),
                err(libc::EIO),
                "{off:#x}"
            );
            assert_eq!(
                call(&mut p, 67, &[fd, SCRATCH, 6, off]),
                err(libc::EIO),
                "{off:#x}"
            );
        }
        // A transfer running into an unmapped page is short.
        let end = ro + PAGE - 2;
        assert_eq!(
            call(&mut p, 67, &[fd, SCRATCH + 0x100, 6, end]),
            SysResult::Ret(2)
        );
        // lseek + read/write use the file position.
        assert_eq!(call(&mut p, 62, &[fd, ro, 0]), SysResult::Ret(ro as i64));
        assert_eq!(
            call(&mut p, 63, &[fd, SCRATCH + 0x200, 3]),
            SysResult::Ret(3)
        );
        assert_eq!(
            call(&mut p, 63, &[fd, SCRATCH + 0x203, 3]),
            SysResult::Ret(3)
        );
        assert_eq!(get(&mut p, SCRATCH + 0x200, 6), b"forced");
        // A bad guest buffer: EFAULT; mmap of mem: ENODEV.
        assert_eq!(call(&mut p, 67, &[fd, 8, 6, ro]), err(libc::EFAULT));
        assert_eq!(
            call(&mut p, 222, &[0, PAGE, 1, 2, fd, 0]),
            err(libc::ENODEV)
        );
        // dup keeps the kind; close forgets it.
        let SysResult::Ret(d) = call(&mut p, 23, &[fd]) else {
            panic!()
        };
        assert_eq!(
            call(&mut p, 67, &[d as u64, SCRATCH + 0x300, 6, ro]),
            SysResult::Ret(6)
        );
        assert_eq!(call(&mut p, 57, &[d as u64]), SysResult::Ret(0));
        assert!(!p.sys.special_fds.contains_key(&(d as i32)));
        // Read-only open: writes are EBADF.
        let r = open(&mut p, b"/proc/self/mem", 0) as u64;
        assert_eq!(call(&mut p, 68, &[r, SCRATCH, 6, ro]), err(libc::EBADF));
        // Through a directory descriptor of /proc/self.
        let dir = open(&mut p, b"/proc/self", 0o40000) as u64;
        put_str(&mut p, SCRATCH + 0x8000, b"mem");
        let SysResult::Ret(m) = call(&mut p, 56, &[dir, SCRATCH + 0x8000, 2, 0]) else {
            panic!()
        };
        assert_eq!(
            call(&mut p, 67, &[m as u64, SCRATCH + 0x300, 6, ro]),
            SysResult::Ret(6)
        );
        // Host-exposing entries are refused.
        for path in [
            &b"/proc/self/pagemap"[..],
            b"/proc/self/smaps",
            b"/proc/thread-self/syscall",
        ] {
            put_str(&mut p, SCRATCH + 0x8000, path);
            assert_eq!(
                call(&mut p, 56, &[AT_FDCWD, SCRATCH + 0x8000, 0, 0]),
                err(libc::EACCES)
            );
        }
        put_str(&mut p, SCRATCH + 0x8000, b"/proc/self/status");
        assert!(
            matches!(call(&mut p, 56, &[AT_FDCWD, SCRATCH + 0x8000, 0, 0]), SysResult::Ret(v) if v >= 0)
        );
    }
}
