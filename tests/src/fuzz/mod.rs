//! `vmfuzz`: proves that no input (guest ELF, AOT image, profile, instruction stream) panics,
//! crashes or hangs the host.
//!
//! Cases run in-process in forked worker processes (a fork server): a worker runs a slice of
//! the cases in a loop, each under [`std::panic::catch_unwind`] with a panic hook that records
//! the message instead of printing it, and reports every case's outcome to the parent over a
//! pipe. When a worker dies by a signal (a host crash) or stops reporting within the case time
//! budget (a hang; the parent kills it), the parent counts that for the case it was on, saves
//! the reproducer and starts a new worker from the next case.
//!
//! Each worker first isolates itself ([`sandbox`]): guests can make any system call, so the
//! case runner lives in fresh PID, mount, network, IPC and UTS namespaces, chrooted into an
//! empty directory, as an unprivileged user with small process, file-size and core limits.
//!
//! Deterministic: case `i`'s input depends only on (seed, target, i) ([`case_rng`]), so
//! `--seed S --case I` re-runs one case.

pub mod elf;
pub mod image;
pub mod insn;
pub mod mutate;
pub mod profile;
pub mod sandbox;

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a fuzz target is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Mutated static AArch64 ELF executables, loaded and run bounded in every tier.
    Elf,
    /// Mutated AOT images, parsed, loaded and (when their code is intact) run.
    Image,
    /// Mutated profiles, decoded, merged, summarized and used to guide translation.
    Profile,
    /// Random A64 programs, interpreter against the JIT tiers.
    Insn,
    /// Hidden: plants a panic, a crash and a hang, to prove the harness sees them.
    SelfTest,
}

/// The public targets, in `--target all` order.
pub const ALL: [Target; 4] = [Target::Elf, Target::Image, Target::Profile, Target::Insn];

impl Target {
    /// The target's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Elf => "elf",
            Target::Image => "image",
            Target::Profile => "profile",
            Target::Insn => "insn",
            Target::SelfTest => "self-test",
        }
    }

    /// The target named `s` (including the hidden `self-test`).
    pub fn parse(s: &str) -> Option<Target> {
        ALL.into_iter()
            .chain([Target::SelfTest])
            .find(|t| t.name() == s)
    }

    /// Wall-time budget of one case before it counts as a hang.
    pub fn default_budget(self) -> Duration {
        match self {
            // Opt-tier compiles of real programs and images take a while; a hang is far
            // beyond any of them.
            Target::Elf | Target::Image | Target::Profile => Duration::from_secs(20),
            Target::Insn => Duration::from_secs(30),
            Target::SelfTest => Duration::from_secs(1),
        }
    }
}

/// How a case ended, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The input was refused with an error (like vmrun's exit 126).
    Refused,
    /// The guest ran (it exited or was killed by a guest signal), or the input was used.
    Ran,
    /// Two executions that must agree did not; the text shows how.
    Mismatch(String),
    /// The host panicked; the message and location.
    Panic(String),
    /// The guest was still running after half the case budget, in translated code (guest
    /// loops inside translated code are not bounded by the dispatch budget) or blocked in a
    /// system call: a guest that does not end, not a host hang. The worker ends after
    /// reporting it.
    GuestLoop,
}

impl Outcome {
    fn code(&self) -> u8 {
        match self {
            Outcome::Refused => 0,
            Outcome::Ran => 1,
            Outcome::Mismatch(_) => 2,
            Outcome::Panic(_) => 3,
            Outcome::GuestLoop => 4,
        }
    }

    fn text(&self) -> &str {
        match self {
            Outcome::Mismatch(t) | Outcome::Panic(t) => t,
            _ => "",
        }
    }

    fn from_wire(code: u8, text: String) -> Option<Outcome> {
        Some(match code {
            0 => Outcome::Refused,
            1 => Outcome::Ran,
            2 => Outcome::Mismatch(text),
            3 => Outcome::Panic(text),
            4 => Outcome::GuestLoop,
            _ => return None,
        })
    }
}

/// One prepared target: its seeds, built once in the parent before the workers fork.
pub trait Fuzzer: Sync {
    /// The input of case `i` (a function of the generator only).
    fn input(&self, rng: &mut Rng, case: u64) -> Vec<u8>;
    /// Runs one input in this (sandboxed) process.
    fn run(&self, input: &[u8], rng: &mut Rng, case: u64) -> Outcome;
}

/// Counts of one target's campaign.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Counts {
    /// Target name.
    pub target: String,
    /// Cases run.
    pub cases: u64,
    /// Inputs refused with an error.
    pub refused: u64,
    /// Guests that ran (exit or guest signal), or inputs used successfully.
    pub ran: u64,
    /// Guests stopped while looping in translated code (see [`Outcome::GuestLoop`]).
    pub guest_loops: u64,
    /// Host panics.
    pub panics: u64,
    /// Workers killed by a signal.
    pub crashes: u64,
    /// Cases over their time budget.
    pub hangs: u64,
    /// Differential mismatches (insn).
    pub mismatches: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Cases per minute.
    pub per_minute: f64,
    /// Saved reproducers.
    pub reproducers: Vec<String>,
}

impl Counts {
    /// Whether anything went wrong.
    pub fn failed(&self) -> bool {
        self.panics + self.crashes + self.hangs + self.mismatches > 0
    }
}

/// A campaign's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// What to fuzz.
    pub target: Target,
    /// Number of cases (from `first`).
    pub cases: u64,
    /// First case index.
    pub first: u64,
    /// Seed.
    pub seed: u64,
    /// Worker processes.
    pub jobs: usize,
    /// Where reproducers go.
    pub out: PathBuf,
    /// Per-case time budget.
    pub budget: Duration,
    /// Print progress lines.
    pub progress: bool,
    /// Run these bytes instead of the generated input (a saved reproducer: the generated
    /// inputs change when the seed corpus does).
    pub input: Option<Vec<u8>>,
}

/// Small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    /// A random element.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The generator of case `i`: a function of (seed, target, i) only.
pub fn case_rng(seed: u64, target: Target, case: u64) -> Rng {
    let t = target
        .name()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
    let mut r = Rng::new(seed ^ t.rotate_left(17) ^ case.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next();
    r
}

/// Builds the fuzzer of `target` (reads the seed corpus, translates seed images, ...).
pub fn prepare(target: Target) -> Result<Box<dyn Fuzzer>, String> {
    Ok(match target {
        Target::Elf => Box::new(elf::ElfFuzzer::new()?),
        Target::Image => Box::new(image::ImageFuzzer::new()?),
        Target::Profile => Box::new(profile::ProfileFuzzer::new()?),
        Target::Insn => Box::new(insn::InsnFuzzer::new()),
        Target::SelfTest => Box::new(SelfTest),
    })
}

/// Plants a panic (case 4k+1), a crash (4k+2) and a hang (4k+3); 4k is clean.
struct SelfTest;

impl Fuzzer for SelfTest {
    fn input(&self, _rng: &mut Rng, case: u64) -> Vec<u8> {
        case.to_le_bytes().to_vec()
    }
    fn run(&self, _input: &[u8], _rng: &mut Rng, case: u64) -> Outcome {
        match case % 4 {
            1 => panic!("planted panic in case {case}"),
            2 => {
                // SAFETY: resets SIGSEGV to its default action and raises it: the worker
                // dies by the signal, which is the point.
                unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                    libc::raise(libc::SIGSEGV);
                }
                Outcome::Ran
            }
            // A host stuck in its own code (not in a system call, not in translated code).
            3 => loop {
                std::hint::spin_loop();
                std::hint::black_box(case);
            },
            _ => Outcome::Ran,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The worker side.

/// The message of the last panic in this process (the hook records instead of printing).
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let bt = std::backtrace::Backtrace::force_capture();
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{msg}{at}\nbacktrace:\n{bt}"));
    }));
}

/// Runs one case in this process, catching a panic; `given` replaces the generated input.
pub fn run_case(
    f: &dyn Fuzzer,
    seed: u64,
    target: Target,
    case: u64,
    given: Option<&[u8]>,
) -> Outcome {
    let mut rng = case_rng(seed, target, case);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let input = f.input(&mut rng, case);
        f.run(given.unwrap_or(&input), &mut rng, case)
    }));
    match r {
        Ok(o) => o,
        Err(_) => Outcome::Panic(
            PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| "panic (no message recorded)".into()),
        ),
    }
}

/// Worker exit code after a panic or a guest loop (the parent restarts from the next case).
const EXIT_ON_PURPOSE: i32 = 3;

/// The case runner: cases `start, start + stride, ... < end`, reported on `fd`.
fn worker_loop(f: &dyn Fuzzer, cfg: &Config, start: u64, stride: u64, end: u64, fd: i32) -> i32 {
    install_panic_hook();
    watchdog::install(fd);
    let mut case = start;
    while case < end {
        watchdog::arm(case, cfg.budget / 2);
        let o = run_case(f, cfg.seed, cfg.target, case, cfg.input.as_deref());
        watchdog::disarm();
        sandbox::kill_strays();
        if !write_all(fd, &frame(case, &o)) {
            return 1;
        }
        if matches!(o, Outcome::Panic(_)) {
            return EXIT_ON_PURPOSE;
        }
        case += stride;
    }
    0
}

/// The report of one case: case (u64), outcome code (u8), text length (u32), text.
fn frame(case: u64, o: &Outcome) -> Vec<u8> {
    let text = o.text().as_bytes();
    let mut frame = Vec::with_capacity(13 + text.len());
    frame.extend_from_slice(&case.to_le_bytes());
    frame.push(o.code());
    frame.extend_from_slice(&(text.len() as u32).to_le_bytes());
    frame.extend_from_slice(text);
    frame
}

/// Tells a guest that does not end from a stuck host: after half the case budget, SIGALRM
/// samples where the worker is, every 10 ms; if any of [`watchdog::SAMPLES`] samples is in
/// translated code (guest loops there are not bounded by the dispatch budget), or all are in
/// a system call that uses no CPU (the guest waits for something that never comes), the case is
/// reported as [`Outcome::GuestLoop`] and the worker exits; otherwise the samples stop and
/// the parent's budget declares a hang (the host is stuck in its own code).
mod watchdog {
    use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
    use std::time::Duration;

    /// Samples taken before deciding.
    pub const SAMPLES: u32 = 20;
    static FD: AtomicI32 = AtomicI32::new(-1);
    static CASE: AtomicU64 = AtomicU64::new(0);
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    static IN_CODE: AtomicU32 = AtomicU32::new(0);
    static IN_SYSCALL: AtomicU32 = AtomicU32::new(0);
    static CPU_AT_FIRST: AtomicU64 = AtomicU64::new(0);

    /// CPU time of this process in nanoseconds (async-signal-safe).
    fn cpu_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the valid struct; it is async-signal-safe.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    fn timer(first: Duration, every: Duration) {
        let tv = |d: Duration| libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        let t = libc::itimerval {
            it_value: tv(first),
            it_interval: tv(every),
        };
        // SAFETY: sets this process's real-time interval timer from a valid struct.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut()) };
    }

    extern "C" fn on_alarm(_: libc::c_int, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler; the handler
        // only reads atomics and calls async-signal-safe functions (write, _exit, setitimer).
        unsafe {
            let uc = uc as *const libc::ucontext_t;
            let pc = (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
            // In a blocking system call made for the guest (read of an empty pipe, pause,
            // wait4, ...): interrupted at or just after a `syscall` instruction (0f 05), whose
            // code bytes are readable.
            let at_syscall = |a: u64| std::ptr::read_unaligned(a as *const [u8; 2]) == [0x0f, 0x05];
            if vmc_runtime::jit::fault::in_translated_code(pc) {
                IN_CODE.fetch_add(1, Ordering::Relaxed);
            } else if at_syscall(pc) || at_syscall(pc - 2) {
                IN_SYSCALL.fetch_add(1, Ordering::Relaxed);
            }
            let taken = TAKEN.fetch_add(1, Ordering::Relaxed);
            if taken == 0 {
                CPU_AT_FIRST.store(cpu_ns(), Ordering::Relaxed);
            }
            if taken + 1 < SAMPLES {
                return;
            }
            timer(Duration::ZERO, Duration::ZERO);
            // Waiting costs no CPU; a host busy in system calls of its own (mapping a huge
            // segment page by page) burns it.
            let busy = cpu_ns().saturating_sub(CPU_AT_FIRST.load(Ordering::Relaxed));
            let waiting = IN_SYSCALL.load(Ordering::Relaxed) == SAMPLES && busy < 20_000_000;
            if IN_CODE.load(Ordering::Relaxed) == 0 && !waiting {
                return; // The host is stuck: left to the parent's hang detection.
            }
            let mut f = [0u8; 13];
            f[..8].copy_from_slice(&CASE.load(Ordering::Relaxed).to_le_bytes());
            f[8] = 4;
            libc::write(
                FD.load(Ordering::Relaxed),
                f.as_ptr() as *const libc::c_void,
                13,
            );
            libc::_exit(super::EXIT_ON_PURPOSE);
        }
    }

    /// Installs the SIGALRM handler; reports go to `fd`.
    pub fn install(fd: i32) {
        FD.store(fd, Ordering::Relaxed);
        // SAFETY: installs a handler that is async-signal-safe (see `on_alarm`).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            sa.sa_sigaction = on_alarm as *const () as usize;
            libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        }
    }

    /// Starts watching `case`: sampling begins after `after`.
    pub fn arm(case: u64, after: Duration) {
        CASE.store(case, Ordering::Relaxed);
        TAKEN.store(0, Ordering::Relaxed);
        IN_CODE.store(0, Ordering::Relaxed);
        IN_SYSCALL.store(0, Ordering::Relaxed);
        timer(
            after.max(Duration::from_millis(1)),
            Duration::from_millis(10),
        );
    }

    /// Stops watching.
    pub fn disarm() {
        timer(Duration::ZERO, Duration::ZERO);
    }
}

fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: writes from a live slice to our own pipe end.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

// ---------------------------------------------------------------------------------------
// The parent side.

/// A running worker.
struct Lane {
    pid: libc::pid_t,
    pipe: OwnedFd,
    /// The case it is on (the next to report).
    case: u64,
    /// Last report (or start).
    since: Instant,
    buf: Vec<u8>,
    /// The last report was a panic or a guest loop (the worker then exits on purpose).
    ended: bool,
    /// Its chroot directory.
    root: PathBuf,
}

/// Forks a worker for cases `start, start + stride, ... < end`.
fn spawn(f: &dyn Fuzzer, cfg: &Config, start: u64, stride: u64, end: u64) -> Result<Lane, String> {
    let root = sandbox::make_root()?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both fds were just created and are owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: the parent is single-threaded; the child only runs the worker and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(r);
        let code = sandbox::enter(&root, w.as_raw_fd(), |fd| {
            worker_loop(f, cfg, start, stride, end, fd)
        });
        // SAFETY: leave without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    Ok(Lane {
        pid,
        pipe: r,
        case: start,
        since: Instant::now(),
        buf: Vec::new(),
        ended: false,
        root,
    })
}

/// The reproducer of case `case`: its input bytes, and a text file naming how to re-run it.
fn save_reproducer(f: &dyn Fuzzer, cfg: &Config, case: u64, what: &str, detail: &str) -> String {
    let mut rng = case_rng(cfg.seed, cfg.target, case);
    // The input is regenerated here (deterministic), never by the crashed worker.
    let input = match &cfg.input {
        Some(given) => given.clone(),
        None => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.input(&mut rng, case)))
            .unwrap_or_default(),
    };
    let stem = format!("{}-seed{}-case{}", cfg.target.name(), cfg.seed, case);
    let _ = std::fs::create_dir_all(&cfg.out);
    let bin = cfg.out.join(format!("{stem}.bin"));
    let _ = std::fs::write(&bin, &input);
    let mut txt = String::new();
    let _ = writeln!(
        txt,
        "{what} in target {} seed {} case {case}\nre-run: cargo run --release -p vmc-tests --bin vmfuzz -- --target {} --seed {} --case {case} --input {}\ninput: {} ({} bytes)\n\n{detail}",
        cfg.target.name(),
        cfg.seed,
        cfg.target.name(),
        cfg.seed,
        bin.display(),
        bin.display(),
        input.len()
    );
    let _ = std::fs::write(cfg.out.join(format!("{stem}.txt")), txt);
    bin.display().to_string()
}

/// Runs a campaign and returns its counts.
pub fn campaign(cfg: &Config) -> Result<Counts, String> {
    let f = prepare(cfg.target)?;
    let f = f.as_ref();
    let t0 = Instant::now();
    let end = cfg.first.saturating_add(cfg.cases);
    let jobs = (cfg.jobs.max(1) as u64).min(cfg.cases.max(1));
    let mut counts = Counts {
        target: cfg.target.name().into(),
        ..Counts::default()
    };
    let mut lanes: Vec<Option<Lane>> = Vec::new();
    for j in 0..jobs {
        let start = cfg.first + j;
        lanes.push(if start < end {
            Some(spawn(f, cfg, start, jobs, end)?)
        } else {
            None
        });
    }
    let mut last_progress = Instant::now();
    while lanes.iter().any(Option::is_some) {
        let mut pfds: Vec<libc::pollfd> = lanes
            .iter()
            .flatten()
            .map(|l| libc::pollfd {
                fd: l.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: polls our own pipe ends, described by the live vector.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 200) };
        let mut k = 0;
        for slot in lanes.iter_mut() {
            let Some(lane) = slot else { continue };
            let ready = pfds[k].revents != 0;
            k += 1;
            let mut eof = false;
            if ready {
                let mut chunk = [0u8; 65536];
                // SAFETY: reads into a live local buffer from our own pipe end.
                let n = unsafe {
                    libc::read(
                        lane.pipe.as_raw_fd(),
                        chunk.as_mut_ptr() as *mut libc::c_void,
                        chunk.len(),
                    )
                };
                if n <= 0 {
                    eof = true;
                } else {
                    lane.buf.extend_from_slice(&chunk[..n as usize]);
                }
            }
            // Complete frames.
            let mut bad = false;
            while lane.buf.len() >= 13 {
                let case = u64::from_le_bytes(lane.buf[..8].try_into().unwrap_or_default());
                let code = lane.buf[8];
                let len = u32::from_le_bytes(lane.buf[9..13].try_into().unwrap_or_default());
                if lane.buf.len() < 13 + len as usize {
                    break;
                }
                let text = String::from_utf8_lossy(&lane.buf[13..13 + len as usize]).into_owned();
                lane.buf.drain(..13 + len as usize);
                let Some(o) = Outcome::from_wire(code, text).filter(|_| case == lane.case) else {
                    bad = true;
                    break;
                };
                counts.cases += 1;
                match &o {
                    Outcome::Refused => counts.refused += 1,
                    Outcome::Ran => counts.ran += 1,
                    Outcome::GuestLoop => {
                        counts.guest_loops += 1;
                        lane.ended = true;
                    }
                    Outcome::Mismatch(t) | Outcome::Panic(t) => {
                        let what = if matches!(o, Outcome::Panic(_)) {
                            counts.panics += 1;
                            lane.ended = true;
                            "host PANIC"
                        } else {
                            counts.mismatches += 1;
                            "MISMATCH"
                        };
                        let path = save_reproducer(f, cfg, case, what, t);
                        eprintln!(
                            "vmfuzz: {what} in {} case {case}: {} (reproducer {path})",
                            cfg.target.name(),
                            t.lines().next().unwrap_or("")
                        );
                        counts.reproducers.push(path);
                    }
                }
                lane.case += jobs;
                lane.since = Instant::now();
            }
            let hung = !eof && !bad && lane.since.elapsed() > cfg.budget;
            if bad || hung {
                // SAFETY: kills our own child worker (its namespace dies with it).
                unsafe { libc::kill(lane.pid, libc::SIGKILL) };
            }
            if !(eof || bad || hung) {
                continue;
            }
            let mut status = 0;
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(lane.pid, &mut status, 0) };
            sandbox::remove_root(&lane.root);
            let case = lane.case;
            let next = if case >= end {
                None
            } else if lane.ended && !hung && !bad {
                Some(case)
            } else {
                let (what, detail) = if hung {
                    counts.hangs += 1;
                    (
                        "HANG",
                        format!("no report within the {:?} case budget", cfg.budget),
                    )
                } else {
                    counts.crashes += 1;
                    let how = sandbox::describe_exit(status);
                    (
                        "host CRASH",
                        if bad {
                            format!("worker protocol corrupted; worker {how}")
                        } else {
                            format!("worker {how}")
                        },
                    )
                };
                counts.cases += 1;
                let path = save_reproducer(f, cfg, case, what, &detail);
                eprintln!(
                    "vmfuzz: {what} in {} case {case}: {detail} (reproducer {path})",
                    cfg.target.name()
                );
                counts.reproducers.push(path);
                Some(case + jobs).filter(|&c| c < end)
            };
            *slot = match next {
                Some(start) => Some(spawn(f, cfg, start, jobs, end)?),
                None => None,
            };
        }
        if cfg.progress && last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            eprintln!(
                "vmfuzz: {}: {}/{} cases, {:.0}/min",
                cfg.target.name(),
                counts.cases,
                cfg.cases,
                counts.cases as f64 / t0.elapsed().as_secs_f64() * 60.0
            );
        }
    }
    counts.seconds = t0.elapsed().as_secs_f64();
    counts.per_minute = counts.cases as f64 / counts.seconds.max(1e-9) * 60.0;
    Ok(counts)
}

/// The counts as a table.
pub fn table(all: &[Counts]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:>9} {:>9} {:>9} {:>6} {:>7} {:>7} {:>6} {:>10} {:>8} {:>10}",
        "target",
        "cases",
        "refused",
        "ran",
        "loops",
        "panics",
        "crashes",
        "hangs",
        "mismatches",
        "secs",
        "cases/min"
    );
    for c in all {
        let _ = writeln!(
            s,
            "{:<8} {:>9} {:>9} {:>9} {:>6} {:>7} {:>7} {:>6} {:>10} {:>8.1} {:>10.0}",
            c.target,
            c.cases,
            c.refused,
            c.ran,
            c.guest_loops,
            c.panics,
            c.crashes,
            c.hangs,
            c.mismatches,
            c.seconds,
            c.per_minute
        );
    }
    s
}

/// The workspace root.
pub fn root() -> PathBuf {
    crate::workspace_root()
}

/// Reads a file of the guest corpus, if built.
pub fn guest(name: &str) -> Option<Vec<u8>> {
    std::fs::read(Path::new(&root()).join("tests/guests/build").join(name)).ok()
}

/// The embedded demo guest of vmrun.
pub const DEMO_ELF: &[u8] = include_bytes!("../../../vmrun/demo.elf");
