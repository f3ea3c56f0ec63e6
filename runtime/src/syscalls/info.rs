//! Identity, time, limits, scheduling and process-wide odds and ends: uname, the id calls,
//! set_tid_address, robust lists, rseq, rlimits, getrusage, times, sysinfo, the clocks and
//! sleeps, getrandom, sched_*, futex, prctl, membarrier, priorities, getcpu
//! (wait4/waitid are in [`super::process_ctl`]).

use libc::{c_long, c_void};

use super::guest::{
    fail, host, int, out_buf, read_bytes, read_u32, sys, write_bytes, write_u32, Aligned, Sys,
};
use super::{SysResult, Syscall};
use crate::process::Process;

/// This family's syscalls.
pub const TABLE: &[Syscall] = &[
    sys!(96, "set_tid_address", set_tid_address),
    sys!(98, "futex", futex),
    sys!(99, "set_robust_list", set_robust_list),
    sys!(100, "get_robust_list", get_robust_list),
    sys!(101, "nanosleep", nanosleep),
    sys!(113, "clock_gettime", clock_gettime),
    sys!(114, "clock_getres", clock_getres),
    sys!(115, "clock_nanosleep", clock_nanosleep),
    sys!(120, "sched_getscheduler", sched_getscheduler),
    sys!(121, "sched_getparam", sched_getparam),
    sys!(122, "sched_setaffinity", sched_setaffinity),
    sys!(123, "sched_getaffinity", sched_getaffinity),
    sys!(124, "sched_yield", sched_yield),
    sys!(125, "sched_get_priority_max", sched_get_priority_max),
    sys!(126, "sched_get_priority_min", sched_get_priority_min),
    sys!(140, "setpriority", setpriority),
    sys!(141, "getpriority", getpriority),
    sys!(148, "getresuid", getresuid),
    sys!(150, "getresgid", getresgid),
    sys!(153, "times", times),
    sys!(154, "setpgid", setpgid),
    sys!(155, "getpgid", getpgid),
    sys!(156, "getsid", getsid),
    sys!(157, "setsid", setsid),
    sys!(158, "getgroups", getgroups),
    sys!(160, "uname", uname),
    sys!(163, "getrlimit", getrlimit),
    sys!(164, "setrlimit", setrlimit),
    sys!(165, "getrusage", getrusage),
    sys!(167, "prctl", prctl),
    sys!(168, "getcpu", getcpu),
    sys!(169, "gettimeofday", gettimeofday),
    sys!(172, "getpid", getpid),
    sys!(173, "getppid", getppid),
    sys!(174, "getuid", getuid),
    sys!(175, "geteuid", geteuid),
    sys!(176, "getgid", getgid),
    sys!(177, "getegid", getegid),
    sys!(178, "gettid", gettid),
    sys!(179, "sysinfo", sysinfo),
    sys!(261, "prlimit64", prlimit64),
    sys!(278, "getrandom", getrandom),
    sys!(283, "membarrier", membarrier),
    sys!(293, "rseq", rseq),
];

/// The `machine` field uname reports.
pub const UNAME_MACHINE: &str = "aarch64";

fn uname(p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: struct utsname is plain old data.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a host utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return host(-1);
    }
    // struct new_utsname: six 65-byte fields on both; only `machine` changes.
    let fields = [
        &u.sysname,
        &u.nodename,
        &u.release,
        &u.version,
        &u.machine,
        &u.domainname,
    ];
    let mut out = [0u8; 6 * 65];
    for (i, f) in fields.iter().enumerate() {
        for (j, c) in f.iter().take(64).enumerate() {
            out[i * 65 + j] = *c as u8;
        }
    }
    out[4 * 65..5 * 65].fill(0);
    out[4 * 65..4 * 65 + UNAME_MACHINE.len()].copy_from_slice(UNAME_MACHINE.as_bytes());
    write_bytes(p, a[0], &out)?;
    Ok(SysResult::Ret(0))
}

fn getpid(_p: &mut Process, _a: [u64; 6]) -> Sys {
    Ok(SysResult::Ret(std::process::id() as i64))
}

macro_rules! simple {
    ($name:ident, $nr:expr) => {
        fn $name(_p: &mut Process, _a: [u64; 6]) -> Sys {
            // SAFETY: no arguments.
            host(unsafe { libc::syscall($nr) })
        }
    };
}
simple!(getppid, libc::SYS_getppid);
simple!(getuid, libc::SYS_getuid);
simple!(geteuid, libc::SYS_geteuid);
simple!(getgid, libc::SYS_getgid);
simple!(getegid, libc::SYS_getegid);
simple!(gettid, libc::SYS_gettid);
simple!(setsid, libc::SYS_setsid);
simple!(sched_yield, libc::SYS_sched_yield);

fn getpgid(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_getpgid, int(a[0])) })
}

fn getsid(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_getsid, int(a[0])) })
}

fn setpgid(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_setpgid, int(a[0]), int(a[1])) })
}

fn getgroups(p: &mut Process, a: [u64; 6]) -> Sys {
    let size = a[0] as i32;
    if size < 0 {
        return fail(libc::EINVAL);
    }
    let mut buf = vec![0u32; (size as usize).min(65536)];
    // SAFETY: host gid_t buffer of buf.len() entries.
    let r = unsafe { libc::syscall(libc::SYS_getgroups, buf.len() as c_long, buf.as_mut_ptr()) };
    if r < 0 {
        return host(r);
    }
    if size > 0 {
        let b: Vec<u8> = buf[..r as usize]
            .iter()
            .flat_map(|g| g.to_le_bytes())
            .collect();
        write_bytes(p, a[1], &b)?;
    }
    Ok(SysResult::Ret(r as i64))
}

fn resids(p: &mut Process, a: [u64; 6], nr: c_long) -> Sys {
    let mut ids = [0u32; 3];
    let base = ids.as_mut_ptr();
    // SAFETY: three host u32s.
    let r = unsafe { libc::syscall(nr, base, base.add(1), base.add(2)) };
    if r < 0 {
        return host(r);
    }
    for (i, id) in ids.iter().enumerate() {
        write_u32(p, a[i], *id)?;
    }
    Ok(SysResult::Ret(0))
}

fn getresuid(p: &mut Process, a: [u64; 6]) -> Sys {
    resids(p, a, libc::SYS_getresuid)
}

fn getresgid(p: &mut Process, a: [u64; 6]) -> Sys {
    resids(p, a, libc::SYS_getresgid)
}

fn set_tid_address(p: &mut Process, a: [u64; 6]) -> Sys {
    p.sys.clear_child_tid = a[0];
    gettid(p, a)
}

fn set_robust_list(p: &mut Process, a: [u64; 6]) -> Sys {
    // sizeof(struct robust_list_head) on 64-bit.
    if a[1] != 24 {
        return fail(libc::EINVAL);
    }
    p.sys.robust_list = (a[0], a[1]);
    Ok(SysResult::Ret(0))
}

fn get_robust_list(p: &mut Process, a: [u64; 6]) -> Sys {
    let pid = a[0] as i32;
    if pid != 0 && pid != std::process::id() as i32 {
        return fail(libc::ESRCH);
    }
    let (head, len) = p.sys.robust_list;
    write_bytes(p, a[1], &head.to_le_bytes())?;
    write_bytes(p, a[2], &len.to_le_bytes())?;
    Ok(SysResult::Ret(0))
}

fn rseq(_p: &mut Process, _a: [u64; 6]) -> Sys {
    // Restartable sequences are not offered; glibc falls back silently (no warning).
    fail(libc::ENOSYS)
}

// ---------------------------------------------------------------------------------------
// Limits and usage.

const RLIM_NLIMITS: u32 = 16;
const RLIMIT_DATA: u32 = 2;
const RLIMIT_STACK: u32 = 3;
const RLIMIT_AS: u32 = 9;

fn host_rlimit(res: u32) -> [u64; 2] {
    let mut r = [0u64; 2];
    // SAFETY: r is a host struct rlimit.
    unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            res as c_long,
            std::ptr::null::<c_void>(),
            r.as_mut_ptr(),
        )
    };
    r
}

/// prlimit64 for all three entry points. struct rlimit is { u64 cur; u64 max } on both.
/// RLIMIT_DATA/STACK/AS of the process itself are recorded for the guest but not applied
/// to the emulator (whose own memory use they would constrain), as qemu-user does.
fn do_prlimit(p: &mut Process, pid: i32, res: u32, new: u64, old: u64) -> Sys {
    if res >= RLIM_NLIMITS {
        return fail(libc::EINVAL);
    }
    let new_lim = if new != 0 {
        let b = read_bytes(p, new, 16)?;
        let l = [
            u64::from_le_bytes(b[..8].try_into().expect("8")),
            u64::from_le_bytes(b[8..].try_into().expect("8")),
        ];
        if l[0] > l[1] {
            return fail(libc::EINVAL);
        }
        Some(l)
    } else {
        None
    };
    let own = pid == 0 || pid == std::process::id() as i32;
    let nofile = res == super::fds::RLIMIT_NOFILE;
    if own && (nofile || matches!(res, RLIMIT_DATA | RLIMIT_STACK | RLIMIT_AS)) {
        // RLIMIT_NOFILE is the guest's descriptor space (see `fds`): never past the
        // runtime's own descriptors, even for root (as the kernel's nr_open).
        let cur = if nofile {
            super::fds::guest_nofile(p)
        } else {
            p.sys.rlimits[res as usize].unwrap_or_else(|| host_rlimit(res))
        };
        if let Some(n) = new_lim {
            // SAFETY: no arguments.
            if n[1] > cur[1] && (nofile || unsafe { libc::geteuid() } != 0) {
                return fail(libc::EPERM);
            }
        }
        if old != 0 {
            let b: Vec<u8> = cur.iter().flat_map(|w| w.to_le_bytes()).collect();
            write_bytes(p, old, &b)?;
        }
        if let Some(n) = new_lim {
            p.sys.rlimits[res as usize] = Some(n);
        }
        return Ok(SysResult::Ret(0));
    }
    let mut out = [0u64; 2];
    let np = new_lim.as_ref().map_or(std::ptr::null(), |l| l.as_ptr());
    let op = if old != 0 {
        out.as_mut_ptr()
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: np/op are NULL or host struct rlimit buffers.
    let r = unsafe { libc::syscall(libc::SYS_prlimit64, pid as c_long, res as c_long, np, op) };
    if r < 0 {
        return host(r);
    }
    if old != 0 {
        let b: Vec<u8> = out.iter().flat_map(|w| w.to_le_bytes()).collect();
        write_bytes(p, old, &b)?;
    }
    Ok(SysResult::Ret(0))
}

fn prlimit64(p: &mut Process, a: [u64; 6]) -> Sys {
    do_prlimit(p, a[0] as i32, a[1] as u32, a[2], a[3])
}

fn getrlimit(p: &mut Process, a: [u64; 6]) -> Sys {
    do_prlimit(p, 0, a[0] as u32, 0, a[1])
}

fn setrlimit(p: &mut Process, a: [u64; 6]) -> Sys {
    do_prlimit(p, 0, a[0] as u32, a[1], 0)
}

fn getrusage(p: &mut Process, a: [u64; 6]) -> Sys {
    // struct rusage (2 timevals + 14 longs = 144 bytes) is the same on both.
    let mut buf = Aligned::<144>::new();
    // SAFETY: host rusage-sized buffer.
    let r = unsafe { libc::syscall(libc::SYS_getrusage, int(a[0]), buf.ptr()) };
    if r < 0 {
        return host(r);
    }
    write_bytes(p, a[1], &buf.0)?;
    Ok(SysResult::Ret(0))
}

fn times(p: &mut Process, a: [u64; 6]) -> Sys {
    // struct tms: four clock_t (longs) on both.
    let mut buf = Aligned::<32>::new();
    // SAFETY: host tms-sized buffer.
    let r = unsafe { libc::syscall(libc::SYS_times, buf.ptr()) };
    if r == -1 {
        return host(r);
    }
    if a[0] != 0 {
        write_bytes(p, a[0], &buf.0)?;
    }
    Ok(SysResult::Ret(r as i64))
}

/// Size of the 64-bit struct sysinfo.
pub const SYSINFO_SIZE: usize = 112;

/// Converts a host struct sysinfo to the AArch64 layout: uptime i64 @0, loads[3] @8,
/// totalram @32, freeram @40, sharedram @48, bufferram @56, totalswap @64, freeswap @72,
/// procs u16 @80, totalhigh @88, freehigh @96, mem_unit u32 @104 (the same as x86-64's;
/// written field by field).
pub fn sysinfo_to_guest(s: &libc::sysinfo) -> [u8; SYSINFO_SIZE] {
    let mut b = [0u8; SYSINFO_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &s.uptime.to_le_bytes());
    for i in 0..3 {
        put(8 + 8 * i, &s.loads[i].to_le_bytes());
    }
    let words = [
        s.totalram,
        s.freeram,
        s.sharedram,
        s.bufferram,
        s.totalswap,
        s.freeswap,
    ];
    for (i, w) in words.iter().enumerate() {
        put(32 + 8 * i, &w.to_le_bytes());
    }
    put(80, &s.procs.to_le_bytes());
    put(88, &s.totalhigh.to_le_bytes());
    put(96, &s.freehigh.to_le_bytes());
    put(104, &s.mem_unit.to_le_bytes());
    b
}

fn sysinfo(p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: struct sysinfo is plain old data.
    let mut s: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: host struct.
    if unsafe { libc::sysinfo(&mut s) } != 0 {
        return host(-1);
    }
    write_bytes(p, a[0], &sysinfo_to_guest(&s))?;
    Ok(SysResult::Ret(0))
}

// ---------------------------------------------------------------------------------------
// Time. struct timespec and struct timeval are { i64, i64 } on both.

fn read_ts(p: &mut Process, addr: u64) -> Result<[i64; 2], SysResult> {
    let b = read_bytes(p, addr, 16)?;
    Ok([
        i64::from_le_bytes(b[..8].try_into().expect("8")),
        i64::from_le_bytes(b[8..].try_into().expect("8")),
    ])
}

fn write_ts(p: &mut Process, addr: u64, t: [i64; 2]) -> Result<(), SysResult> {
    let b: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
    write_bytes(p, addr, &b)?;
    Ok(())
}

fn clock_gettime(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut t = [0i64; 2];
    // SAFETY: host timespec.
    let r = unsafe { libc::syscall(libc::SYS_clock_gettime, int(a[0]), t.as_mut_ptr()) };
    if r < 0 {
        return host(r);
    }
    write_ts(p, a[1], t)?;
    Ok(SysResult::Ret(0))
}

fn clock_getres(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut t = [0i64; 2];
    // SAFETY: host timespec.
    let r = unsafe { libc::syscall(libc::SYS_clock_getres, int(a[0]), t.as_mut_ptr()) };
    if r < 0 {
        return host(r);
    }
    if a[1] != 0 {
        write_ts(p, a[1], t)?;
    }
    Ok(SysResult::Ret(0))
}

const TIMER_ABSTIME: u64 = 1;

fn clock_nanosleep(p: &mut Process, a: [u64; 6]) -> Sys {
    let req = read_ts(p, a[2])?;
    let mut rem = [0i64; 2];
    // SAFETY: host timespecs.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clock_nanosleep,
            int(a[0]),
            int(a[1]),
            req.as_ptr(),
            rem.as_mut_ptr(),
        )
    };
    let res = SysResult::host(r as i64);
    if res == SysResult::err(libc::EINTR) && a[3] != 0 && a[1] & TIMER_ABSTIME == 0 {
        write_ts(p, a[3], rem)?;
    }
    Ok(res)
}

fn nanosleep(p: &mut Process, a: [u64; 6]) -> Sys {
    let req = read_ts(p, a[0])?;
    let mut rem = [0i64; 2];
    // SAFETY: host timespecs.
    let r = unsafe { libc::syscall(libc::SYS_nanosleep, req.as_ptr(), rem.as_mut_ptr()) };
    let res = SysResult::host(r as i64);
    if res == SysResult::err(libc::EINTR) && a[1] != 0 {
        write_ts(p, a[1], rem)?;
    }
    Ok(res)
}

fn gettimeofday(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut tv = [0i64; 2];
    let mut tz = [0i32; 2];
    // SAFETY: host timeval and timezone.
    let r = unsafe { libc::syscall(libc::SYS_gettimeofday, tv.as_mut_ptr(), tz.as_mut_ptr()) };
    if r < 0 {
        return host(r);
    }
    if a[0] != 0 {
        write_ts(p, a[0], tv)?;
    }
    if a[1] != 0 {
        let b: Vec<u8> = tz.iter().flat_map(|w| w.to_le_bytes()).collect();
        write_bytes(p, a[1], &b)?;
    }
    Ok(SysResult::Ret(0))
}

fn getrandom(p: &mut Process, a: [u64; 6]) -> Sys {
    let buf = out_buf(p, a[0], a[1])?;
    // SAFETY: checked, writable guest slice.
    host(unsafe {
        libc::syscall(
            libc::SYS_getrandom,
            buf.as_mut_ptr(),
            buf.len(),
            a[2] as u32 as c_long,
        )
    })
}

// ---------------------------------------------------------------------------------------
// Scheduling.

fn sched_getaffinity(p: &mut Process, a: [u64; 6]) -> Sys {
    let len = a[1] as u32 as usize;
    if !len.is_multiple_of(8) {
        return fail(libc::EINVAL);
    }
    let mut buf = vec![0u64; len.min(4096) / 8];
    // SAFETY: host buffer of buf.len() * 8 bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getaffinity,
            int(a[0]),
            buf.len() * 8,
            buf.as_mut_ptr(),
        )
    };
    if r < 0 {
        return host(r);
    }
    let b: Vec<u8> = buf
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .take(r as usize)
        .collect();
    write_bytes(p, a[2], &b)?;
    Ok(SysResult::Ret(r as i64))
}

fn sched_setaffinity(p: &mut Process, a: [u64; 6]) -> Sys {
    let len = (a[1] as u32 as usize).min(4096);
    let b = read_bytes(p, a[2], len)?;
    // SAFETY: host buffer of b.len() bytes.
    host(unsafe { libc::syscall(libc::SYS_sched_setaffinity, int(a[0]), b.len(), b.as_ptr()) })
}

fn sched_getscheduler(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_sched_getscheduler, int(a[0])) })
}

fn sched_getparam(p: &mut Process, a: [u64; 6]) -> Sys {
    let mut prio = 0i32;
    // SAFETY: host struct sched_param (one int).
    let r = unsafe { libc::syscall(libc::SYS_sched_getparam, int(a[0]), &mut prio) };
    if r < 0 {
        return host(r);
    }
    write_u32(p, a[1], prio as u32)?;
    Ok(SysResult::Ret(0))
}

fn sched_get_priority_max(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_sched_get_priority_max, int(a[0])) })
}

fn sched_get_priority_min(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_sched_get_priority_min, int(a[0])) })
}

fn getpriority(_p: &mut Process, a: [u64; 6]) -> Sys {
    // The raw syscall returns 20 - nice, like the kernel's.
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_getpriority, int(a[0]), int(a[1])) })
}

fn setpriority(_p: &mut Process, a: [u64; 6]) -> Sys {
    // SAFETY: no pointers.
    host(unsafe { libc::syscall(libc::SYS_setpriority, int(a[0]), int(a[1]), int(a[2])) })
}

fn getcpu(p: &mut Process, a: [u64; 6]) -> Sys {
    let (mut cpu, mut node) = (0u32, 0u32);
    // SAFETY: host u32s.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu,
            &mut node,
            std::ptr::null::<c_void>(),
        )
    };
    if r < 0 {
        return host(r);
    }
    if a[0] != 0 {
        write_u32(p, a[0], cpu)?;
    }
    if a[1] != 0 {
        write_u32(p, a[1], node)?;
    }
    Ok(SysResult::Ret(0))
}

// ---------------------------------------------------------------------------------------
// futex: single-threaded semantics.

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;

/// Key in `Process::warned` for the one-time "futex deadlock" warning.
const FUTEX_DEADLOCK_WARNING: u64 = 0x1_0000_0000 | 98;

/// futex(uaddr, op, val, timeout, uaddr2, val3) for a single-threaded guest:
///
/// * WAKE / WAKE_BITSET / REQUEUE: nobody can be waiting, so 0 woken.
/// * CMP_REQUEUE: -EAGAIN if `*uaddr != val3`, else 0.
/// * WAKE_OP: performs the operation on `*uaddr2`, wakes nobody, returns 0.
/// * WAIT / WAIT_BITSET: -EAGAIN if `*uaddr != val` (as Linux). Otherwise no other thread
///   exists to wake us: with a timeout we sleep until it expires and return -ETIMEDOUT
///   (what Linux would do); without one, Linux would block forever (a deadlock), so we
///   warn once and return -EAGAIN instead, a spurious wake-up every futex user must handle
///   by re-checking its condition.
/// * Other operations (PI locks, ...): -ENOSYS.
fn futex(p: &mut Process, a: [u64; 6]) -> Sys {
    let (uaddr, op, val, timeout, uaddr2, val3) =
        (a[0], a[1] as u32, a[2] as u32, a[3], a[4], a[5] as u32);
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
        return fail(libc::ENOSYS);
    }
    if uaddr % 4 != 0 {
        return fail(libc::EINVAL);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if cmd == FUTEX_WAIT_BITSET && val3 == 0 {
                return fail(libc::EINVAL);
            }
            let ts = if timeout != 0 {
                Some(read_ts(p, timeout)?)
            } else {
                None
            };
            if read_u32(p, uaddr)? != val {
                return fail(libc::EAGAIN);
            }
            match ts {
                Some(t) => {
                    if t[0] < 0 || !(0..1_000_000_000).contains(&t[1]) {
                        return fail(libc::EINVAL);
                    }
                    // FUTEX_WAIT: relative, monotonic. FUTEX_WAIT_BITSET: absolute, on
                    // CLOCK_REALTIME if requested, else CLOCK_MONOTONIC.
                    let (clock, flags) = if cmd == FUTEX_WAIT {
                        (libc::CLOCK_MONOTONIC, 0)
                    } else if op & FUTEX_CLOCK_REALTIME != 0 {
                        (libc::CLOCK_REALTIME, libc::TIMER_ABSTIME)
                    } else {
                        (libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME)
                    };
                    let req = libc::timespec {
                        tv_sec: t[0],
                        tv_nsec: t[1],
                    };
                    // SAFETY: host timespec; EINTR just ends the sleep early.
                    unsafe { libc::clock_nanosleep(clock, flags, &req, std::ptr::null_mut()) };
                    fail(libc::ETIMEDOUT)
                }
                None => {
                    if p.warned.insert(FUTEX_DEADLOCK_WARNING) {
                        eprintln!(
                            "vmrun: warning: futex wait at {uaddr:#x} with no other thread to wake it \
                             (deadlock); returning EAGAIN"
                        );
                    }
                    fail(libc::EAGAIN)
                }
            }
        }
        FUTEX_WAKE | FUTEX_REQUEUE => Ok(SysResult::Ret(0)),
        FUTEX_WAKE_BITSET => {
            if val3 == 0 {
                return fail(libc::EINVAL);
            }
            Ok(SysResult::Ret(0))
        }
        FUTEX_CMP_REQUEUE => {
            if read_u32(p, uaddr)? != val3 {
                return fail(libc::EAGAIN);
            }
            Ok(SysResult::Ret(0))
        }
        FUTEX_WAKE_OP => {
            if uaddr2 % 4 != 0 {
                return fail(libc::EINVAL);
            }
            let encoded = val3;
            let opn = (encoded >> 28) & 7;
            let shift = encoded & (8 << 28) != 0;
            let mut oparg = ((encoded << 8) as i32 >> 20) as u32;
            if shift {
                oparg = 1u32.wrapping_shl(oparg & 31);
            }
            let old = read_u32(p, uaddr2)?;
            let new = match opn {
                0 => oparg,
                1 => old.wrapping_add(oparg),
                2 => old | oparg,
                3 => old & !oparg,
                4 => old ^ oparg,
                _ => return fail(libc::ENOSYS),
            };
            write_u32(p, uaddr2, new)?;
            Ok(SysResult::Ret(0))
        }
        _ => fail(libc::ENOSYS),
    }
}

// ---------------------------------------------------------------------------------------
// prctl, membarrier.

const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;

fn default_comm(p: &Process) -> [u8; 16] {
    let mut c = [0u8; 16];
    let name = p
        .exe
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or_default();
    let n = name.len().min(15);
    c[..n].copy_from_slice(&name[..n]);
    c
}

fn prctl(p: &mut Process, a: [u64; 6]) -> Sys {
    match a[0] {
        PR_SET_NAME => {
            // Up to 16 bytes are read; the name is truncated to 15 and NUL terminated.
            let mut c = [0u8; 16];
            let s = match p.mem.read_cstr(a[1], 15) {
                Ok(s) => s,
                Err(_) => read_bytes(p, a[1], 15)?,
            };
            c[..s.len().min(15)].copy_from_slice(&s[..s.len().min(15)]);
            p.sys.comm = Some(c);
            Ok(SysResult::Ret(0))
        }
        PR_GET_NAME => {
            let c = p.sys.comm.unwrap_or_else(|| default_comm(p));
            write_bytes(p, a[1], &c)?;
            Ok(SysResult::Ret(0))
        }
        _ => fail(libc::EINVAL),
    }
}

const MEMBARRIER_CMD_QUERY: u64 = 0;
const MEMBARRIER_CMD_GLOBAL: u64 = 1;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: u64 = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: u64 = 16;

/// membarrier: with a single guest thread every barrier is trivially satisfied.
fn membarrier(_p: &mut Process, a: [u64; 6]) -> Sys {
    let supported = MEMBARRIER_CMD_GLOBAL
        | MEMBARRIER_CMD_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
    match a[0] {
        MEMBARRIER_CMD_QUERY if a[1] == 0 => Ok(SysResult::Ret(supported as i64)),
        c if a[1] == 0 && c & supported == c && c.count_ones() == 1 => Ok(SysResult::Ret(0)),
        _ => fail(libc::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::super::guest::testing::*;
    use super::*;

    #[test]
    fn uname_machine() {
        let mut p = process();
        assert_eq!(call(&mut p, 160, &[SCRATCH]), SysResult::Ret(0));
        assert_eq!(get(&mut p, SCRATCH, 6), b"Linux\0");
        assert_eq!(get(&mut p, SCRATCH + 4 * 65, 8), b"aarch64\0");
        assert_eq!(call(&mut p, 160, &[8]), err(libc::EFAULT));
    }

    #[test]
    fn unknown_syscalls_are_enosys() {
        let mut p = process();
        assert_eq!(call(&mut p, 500, &[]), err(libc::ENOSYS));
        assert_eq!(call(&mut p, 198, &[2, 1, 0]), err(libc::ENOSYS)); // socket
        assert_eq!(call(&mut p, 293, &[]), err(libc::ENOSYS)); // rseq
        assert!(
            !p.warned.contains(&293),
            "rseq is answered without a warning"
        );
    }

    #[test]
    fn ids_and_time() {
        let mut p = process();
        assert_eq!(
            call(&mut p, 172, &[]),
            SysResult::Ret(std::process::id() as i64)
        );
        // SAFETY: no arguments.
        let uid = unsafe { libc::getuid() };
        assert_eq!(call(&mut p, 174, &[]), SysResult::Ret(uid as i64));
        assert_eq!(call(&mut p, 113, &[1, SCRATCH]), SysResult::Ret(0));
        let sec = i64::from_le_bytes(get(&mut p, SCRATCH, 8).try_into().unwrap());
        assert!(sec >= 0);
        assert_eq!(call(&mut p, 113, &[1, 8]), err(libc::EFAULT));
        assert_eq!(call(&mut p, 278, &[SCRATCH, 32, 0]), SysResult::Ret(32));
        assert_eq!(call(&mut p, 179, &[SCRATCH]), SysResult::Ret(0));
        assert!(
            u64::from_le_bytes(get(&mut p, SCRATCH + 32, 8).try_into().unwrap()) > 0,
            "totalram"
        );
        assert_eq!(
            call(&mut p, 260, &[1, 0, 0, 0]), // init is never our child
            err(libc::ECHILD)
        );
        // getrlimit(RLIMIT_NOFILE) and the recorded-but-not-applied RLIMIT_STACK.
        assert_eq!(call(&mut p, 163, &[7, SCRATCH]), SysResult::Ret(0));
        let lim = [1u64 << 20, 1 << 20]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect::<Vec<_>>();
        p.mem
            .slice_mut(SCRATCH + 0x100, 16)
            .unwrap()
            .copy_from_slice(&lim);
        assert_eq!(call(&mut p, 164, &[3, SCRATCH + 0x100]), SysResult::Ret(0));
        assert_eq!(call(&mut p, 163, &[3, SCRATCH + 0x200]), SysResult::Ret(0));
        assert_eq!(get(&mut p, SCRATCH + 0x200, 16), lim);
        assert_eq!(call(&mut p, 163, &[99, SCRATCH]), err(libc::EINVAL));
    }

    #[test]
    fn futex_single_thread() {
        let mut p = process();
        let f = SCRATCH + 0x40;
        p.mem
            .slice_mut(f, 4)
            .unwrap()
            .copy_from_slice(&5u32.to_le_bytes());
        const PRIV: u64 = 128;
        assert_eq!(
            call(&mut p, 98, &[f, FUTEX_WAKE as u64 | PRIV, 1]),
            SysResult::Ret(0)
        );
        assert_eq!(
            call(&mut p, 98, &[f, FUTEX_WAIT as u64 | PRIV, 4, 0]),
            err(libc::EAGAIN)
        );
        assert_eq!(
            call(&mut p, 98, &[f + 1, FUTEX_WAIT as u64, 5, 0]),
            err(libc::EINVAL)
        );
        assert_eq!(
            call(&mut p, 98, &[8, FUTEX_WAIT as u64, 5, 0]),
            err(libc::EFAULT)
        );
        // A timed wait on the current value sleeps for the timeout and times out.
        let ts = SCRATCH + 0x80;
        let t: Vec<u8> = [0i64, 1_000_000]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        p.mem.slice_mut(ts, 16).unwrap().copy_from_slice(&t);
        assert_eq!(
            call(&mut p, 98, &[f, FUTEX_WAIT as u64 | PRIV, 5, ts]),
            err(libc::ETIMEDOUT)
        );
        // An untimed wait that could never be woken returns a spurious EAGAIN (documented).
        assert_eq!(
            call(&mut p, 98, &[f, FUTEX_WAIT as u64 | PRIV, 5, 0]),
            err(libc::EAGAIN)
        );
        // WAKE_OP: *uaddr2 += 3.
        let f2 = SCRATCH + 0x44;
        p.mem
            .slice_mut(f2, 4)
            .unwrap()
            .copy_from_slice(&10u32.to_le_bytes());
        let op = (1u64 << 28) | (3 << 12);
        assert_eq!(
            call(&mut p, 98, &[f, FUTEX_WAKE_OP as u64, 1, 1, f2, op]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, f2, 4), 13u32.to_le_bytes());
    }

    #[test]
    fn prctl_names() {
        let mut p = process();
        assert_eq!(
            call(&mut p, 167, &[PR_GET_NAME, SCRATCH]),
            SysResult::Ret(0)
        );
        assert_eq!(&get(&mut p, SCRATCH, 16)[..16], b"vmrun-test-demo\0");
        put_str(&mut p, SCRATCH + 0x100, b"a-very-long-thread-name");
        assert_eq!(
            call(&mut p, 167, &[PR_SET_NAME, SCRATCH + 0x100]),
            SysResult::Ret(0)
        );
        assert_eq!(
            call(&mut p, 167, &[PR_GET_NAME, SCRATCH]),
            SysResult::Ret(0)
        );
        assert_eq!(get(&mut p, SCRATCH, 16), b"a-very-long-thr\0");
        assert_eq!(call(&mut p, 167, &[9999, 0]), err(libc::EINVAL));
        assert_eq!(call(&mut p, 283, &[0, 0]), SysResult::Ret(1 | 8 | 16));
    }
}
