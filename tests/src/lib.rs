//! Test harness of the project: runs guest programs under `qemu-aarch64` (the reference) and
//! under `vmrun`, with a timeout, captures stdout, stderr and the exit status (including death
//! by a signal), compares them and formats precise differences.
//!
//! The guest corpus lives in `tests/guests/` (built by `tests/guests/build.sh` into
//! `tests/guests/build/NAME-O0` and `NAME-O2`); [`guest_cases`] lists what to run and with which
//! arguments.

pub mod fuzz;

use std::fmt;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Default per-run timeout of the differential tests.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints a line on the real stderr, bypassing the test harness's output capture, so that
/// progress, timings and skip notices show in CI logs even when the test passes.
pub fn say(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// `say!("fmt", args)`: [`say`] with formatting.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {
        $crate::say(&format!($($t)*))
    };
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// Where `tests/guests/build.sh` puts the guest binaries.
pub fn guest_build_dir() -> PathBuf {
    workspace_root().join("tests/guests/build")
}

/// The signing key directory of the tests (`VMC_KEY_DIR` of the `vmc` they run), shared by
/// the test processes of this user: tests never use nor create the user's own key.
/// `vmc translate` creates the key there on first use.
pub fn test_key_dir() -> PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("vmc-test-keys-{uid}"))
}

/// A `vmc` command that signs with the tests' key ([`test_key_dir`]).
pub fn vmc_command(vmc: &Path) -> Command {
    let mut cmd = Command::new(vmc);
    cmd.env("VMC_KEY_DIR", test_key_dir());
    cmd
}

/// `vmrun` options trusting the images signed with the tests' key (after a `vmc translate`
/// has created it).
pub fn trust_test_key() -> Vec<String> {
    vec![
        "--trust-key".into(),
        test_key_dir().join("signing.pub").display().to_string(),
    ]
}

/// Finds the `vmrun` binary: `$VMRUN` if set, else the one of the profile this test was built
/// with (target/PROFILE/vmrun, next to the test's `deps/` directory), else target/release, else
/// target/debug.
pub fn find_vmrun() -> Option<PathBuf> {
    find_binary("vmrun", "VMRUN")
}

/// Finds the `vmc` compiler binary like [`find_vmrun`] (override: `$VMC`).
pub fn find_vmc() -> Option<PathBuf> {
    find_binary("vmc", "VMC")
}

fn find_binary(name: &str, var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/PROFILE/deps/TEST-HASH -> target/PROFILE/NAME
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join(name));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    candidates.push(target.join("release").join(name));
    candidates.push(target.join("debug").join(name));
    candidates.into_iter().find(|p| p.is_file())
}

/// Looks `prog` up in `PATH`.
pub fn find_in_path(prog: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Normal exit with this status.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
    /// Still running when the timeout expired (then killed).
    TimedOut(Duration),
    /// Could not be started.
    SpawnFailed(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit status {c}"),
            Status::Signaled(s) => write!(f, "killed by signal {s} ({})", signal_name(*s)),
            Status::TimedOut(d) => write!(f, "timed out after {:.0} s", d.as_secs_f64()),
            Status::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

/// Name of a Linux signal number, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => "?",
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
    pub elapsed: Duration,
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<std::thread::JoinHandle<Vec<u8>>> {
    r.map(|mut r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    })
}

/// Runs `cmd` (stdin from /dev/null, stdout and stderr captured) and waits at most `timeout`;
/// a process still running then is killed and reported as [`Status::TimedOut`].
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Outcome {
    let t0 = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                stdout: Vec::new(),
                stderr: Vec::new(),
                status: Status::SpawnFailed(e.to_string()),
                elapsed: t0.elapsed(),
            }
        }
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let mut timed_out = false;
    let mut sleep = Duration::from_millis(1);
    let exit = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if t0.elapsed() >= timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    };
    let elapsed = t0.elapsed();
    // A grandchild could keep the pipes open after a kill: do not wait for it forever.
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = if timed_out {
        (Vec::new(), Vec::new())
    } else {
        (join(out), join(err))
    };
    let status = if timed_out {
        Status::TimedOut(timeout)
    } else {
        match exit {
            Some(st) => match (st.code(), st.signal()) {
                (Some(c), _) => Status::Exited(c),
                (None, Some(s)) => Status::Signaled(s),
                _ => Status::SpawnFailed(format!("unknown wait status {st:?}")),
            },
            None => Status::SpawnFailed("wait failed".into()),
        }
    };
    Outcome {
        stdout,
        stderr,
        status,
        elapsed,
    }
}

/// A temporary directory removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory under the system temp dir.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir();
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the emulators' own diagnostics from a guest's stderr: lines starting with
/// `qemu: uncaught target signal` and lines starting with `vmrun: `.
pub fn strip_emulator_lines(stderr: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stderr.len());
    for line in stderr.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"qemu: uncaught target signal") || line.starts_with(b"vmrun: ") {
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// One stream (or the status) that differs between two runs.
#[derive(Debug, Clone)]
pub struct Difference {
    /// "stdout", "stderr" or "status".
    pub stream: &'static str,
    /// 1-based number of the first differing line (0 for the status).
    pub line: usize,
    /// The reference's version of that line (or status), printable.
    pub expected: String,
    /// The tested program's version.
    pub actual: String,
    /// Extra facts (sizes, line counts).
    pub note: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stream == "status" {
            write!(
                f,
                "status differs: expected {}, got {}",
                self.expected, self.actual
            )
        } else {
            writeln!(
                f,
                "{} differs at line {} ({})",
                self.stream, self.line, self.note
            )?;
            writeln!(f, "      expected: {}", self.expected)?;
            write!(f, "      actual:   {}", self.actual)
        }
    }
}

/// Shows a line with non-printable bytes escaped, cut to `max` characters.
pub fn printable(line: Option<&[u8]>, max: usize) -> String {
    let Some(line) = line else {
        return "<end of output>".to_string();
    };
    let mut s = String::new();
    for ch in String::from_utf8_lossy(line).chars() {
        if s.chars().count() >= max {
            s.push_str(" [...]");
            break;
        }
        match ch {
            '\n' => {}
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    format!("{s:?}")
}

/// Compares two byte streams line by line; `None` when equal.
pub fn diff_stream(stream: &'static str, expected: &[u8], actual: &[u8]) -> Option<Difference> {
    if expected == actual {
        return None;
    }
    let e: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let a: Vec<&[u8]> = actual.split_inclusive(|&b| b == b'\n').collect();
    let i = (0..e.len().max(a.len()))
        .find(|&i| e.get(i) != a.get(i))
        .unwrap_or(0);
    let note = format!(
        "expected {} lines / {} bytes, got {} lines / {} bytes",
        e.len(),
        expected.len(),
        a.len(),
        actual.len()
    );
    Some(Difference {
        stream,
        line: i + 1,
        expected: printable(e.get(i).copied(), 200),
        actual: printable(a.get(i).copied(), 200),
        note,
    })
}

/// Compares a reference outcome with a tested one: status, stdout, and stderr after
/// [`strip_emulator_lines`]. Returns every difference (empty when they agree).
pub fn compare(expected: &Outcome, actual: &Outcome) -> Vec<Difference> {
    let mut out = Vec::new();
    if expected.status != actual.status {
        out.push(Difference {
            stream: "status",
            line: 0,
            expected: expected.status.to_string(),
            actual: actual.status.to_string(),
            note: String::new(),
        });
    }
    if let Some(d) = diff_stream("stdout", &expected.stdout, &actual.stdout) {
        out.push(d);
    }
    if let Some(d) = diff_stream(
        "stderr",
        &strip_emulator_lines(&expected.stderr),
        &strip_emulator_lines(&actual.stderr),
    ) {
        out.push(d);
    }
    out
}

/// The emulator diagnostics (lines starting with `vmrun: ` / `qemu: `) of a run, for reports.
pub fn emulator_lines(stderr: &[u8]) -> Vec<String> {
    stderr
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"vmrun: ") || l.starts_with(b"qemu: "))
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// One run of the differential test: a guest binary and its arguments.
#[derive(Debug, Clone)]
pub struct GuestCase {
    /// Display name, e.g. `int_edge-O2` or `exit_code-O0 [42]`.
    pub label: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
}

/// Arguments of the differential runs of each program (several runs when there are several
/// lists). Programs not listed here run once without arguments. The compute kernels get small
/// sizes so that the suite stays fast under an interpreter.
pub fn guest_args(program: &str) -> Vec<Vec<&'static str>> {
    match program {
        "args_env" => vec![
            vec![],
            vec!["alpha", "two words", "", "--flag=1", "ünïcødé", "*"],
        ],
        "exit_code" => vec![
            vec!["0"],
            vec!["1"],
            vec!["42"],
            vec!["255"],
            vec!["256"],
            vec!["-1"],
        ],
        "segv" => vec![vec![], vec!["read"], vec!["jump"]],
        "matmul" => vec![vec!["24"]],
        "sort_bench" => vec![vec!["20000"]],
        "hash" => vec![vec!["65536"]],
        "crc32" => vec![vec!["65536"]],
        "bytecode" => vec![vec!["1000"]],
        "sieve" => vec![vec!["200000"]],
        "mandelbrot" => vec![vec!["48"]],
        "nbody" => vec![vec!["2000"]],
        _ => vec![vec![]],
    }
}

/// The environment given to every guest (after clearing the inherited one).
pub const GUEST_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin"),
    ("LANG", "C"),
    ("HOME", "/nonexistent"),
    ("VMC_TEST_VAR", "differential value"),
];

/// Lists the differential runs for the guests built in `build_dir` (files `NAME-O0`, `NAME-O2`),
/// sorted by name.
pub fn guest_cases(build_dir: &Path) -> Vec<GuestCase> {
    let mut bins: Vec<PathBuf> = match std::fs::read_dir(build_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("-O0") || n.ends_with("-O2"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    bins.sort();
    let mut cases = Vec::new();
    for bin in bins {
        let file = bin
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let program = &file[..file.len() - 3];
        let arg_sets = guest_args(program);
        let several = arg_sets.len() > 1;
        for args in arg_sets {
            let label = if several || !args.is_empty() {
                format!("{file} {args:?}")
            } else {
                file.clone()
            };
            cases.push(GuestCase {
                label,
                binary: bin.clone(),
                args: args.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    cases
}

/// Builds the command running `binary args` under `emulator` (qemu-aarch64 or vmrun) in `cwd`
/// with the fixed [`GUEST_ENV`].
pub fn guest_command(emulator: &Path, binary: &Path, args: &[String], cwd: &Path) -> Command {
    guest_command_with(emulator, &[], binary, args, cwd)
}

/// Like [`guest_command`] with options for the emulator itself (e.g. `--tier opt`) before
/// the program path.
pub fn guest_command_with(
    emulator: &Path,
    emulator_args: &[String],
    binary: &Path,
    args: &[String],
    cwd: &Path,
) -> Command {
    let mut cmd = Command::new(emulator);
    cmd.args(emulator_args)
        .arg(binary)
        .args(args)
        .current_dir(cwd)
        .env_clear();
    for (k, v) in GUEST_ENV {
        cmd.env(k, v);
    }
    cmd
}

/// One configuration of `vmrun` under test: a name for reports and its command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRun {
    /// `interp`, `baseline`, `opt`, `auto`, `opt-rp` or `auto-eager`.
    pub name: String,
    /// Options given to vmrun before the program.
    pub args: Vec<String>,
}

impl TierRun {
    fn new(name: &str, args: &[&str]) -> TierRun {
        TierRun {
            name: name.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Every tier configuration of the differential tests: each `--tier`, `opt-rp` (`--tier opt
/// --return-prediction`: guest calls as host calls) and `auto-eager` (`--tier auto` with
/// thresholds 1 and 2, so that optimized regions and background compilation run even in
/// short programs).
pub fn all_tiers() -> Vec<TierRun> {
    vec![
        TierRun::new("interp", &["--tier", "interp"]),
        TierRun::new("baseline", &["--tier", "baseline"]),
        TierRun::new("opt", &["--tier", "opt"]),
        TierRun::new("auto", &["--tier", "auto"]),
        TierRun::new("opt-rp", &["--tier", "opt", "--return-prediction"]),
        TierRun::new(
            "auto-eager",
            &[
                "--tier",
                "auto",
                "--baseline-threshold",
                "1",
                "--opt-threshold",
                "2",
            ],
        ),
    ]
}

/// The tiers selected by a comma-separated list of names (`VMC_DIFF_TIERS`), in the order of
/// [`all_tiers`]; `None` or an empty list selects them all. Unknown names are an error.
pub fn select_tiers(list: Option<&str>) -> Result<Vec<TierRun>, String> {
    let all = all_tiers();
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(all);
    };
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for n in &names {
        if !all.iter().any(|t| t.name == *n) {
            let known: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
            return Err(format!("unknown tier {n:?} (known: {})", known.join(", ")));
        }
    }
    Ok(all
        .into_iter()
        .filter(|t| names.contains(&t.name.as_str()))
        .collect())
}

/// The tiers named by `VMC_DIFF_TIERS` (all when unset); panics on an unknown name.
pub fn tiers_from_env() -> Vec<TierRun> {
    let list = std::env::var("VMC_DIFF_TIERS").ok();
    select_tiers(list.as_deref()).unwrap_or_else(|e| panic!("VMC_DIFF_TIERS: {e}"))
}

/// The result of one differential case.
#[derive(Debug)]
pub struct CaseResult {
    pub case: GuestCase,
    /// Name of the tested vmrun configuration (`default` when run without options).
    pub tier: String,
    pub reference: Outcome,
    pub tested: Outcome,
    pub differences: Vec<Difference>,
}

impl CaseResult {
    /// `LABEL [tier]`, for reports.
    pub fn label(&self) -> String {
        format!("{} [{}]", self.case.label, self.tier)
    }

    /// A multi-line report of a failing case.
    pub fn report(&self) -> String {
        let mut s = format!("FAIL {}\n", self.label());
        for d in &self.differences {
            s.push_str(&format!("    {d}\n"));
        }
        // vmrun's own diagnostics explain most failures: errors first, then warnings.
        let mut lines = emulator_lines(&self.tested.stderr);
        lines.dedup();
        lines.sort_by_key(|l| l.contains("warning"));
        for l in lines.iter().take(4) {
            s.push_str(&format!("    vmrun said: {l}\n"));
        }
        if self.reference.status != Status::Exited(0)
            && matches!(
                self.reference.status,
                Status::TimedOut(_) | Status::SpawnFailed(_)
            )
        {
            s.push_str(&format!(
                "    note: the reference run itself failed: {}\n",
                self.reference.status
            ));
        }
        s
    }
}

/// Runs `binary args` under `emulator` (with `emulator_args`) in a fresh temporary working
/// directory.
pub fn run_in_temp_dir(
    emulator: &Path,
    emulator_args: &[String],
    case: &GuestCase,
    timeout: Duration,
) -> Outcome {
    match TempDir::new("vmc-diff") {
        Ok(dir) => run_with_timeout(
            &mut guest_command_with(
                emulator,
                emulator_args,
                &case.binary,
                &case.args,
                dir.path(),
            ),
            timeout,
        ),
        Err(e) => Outcome {
            stdout: Vec::new(),
            stderr: Vec::new(),
            status: Status::SpawnFailed(format!("temp dir: {e}")),
            elapsed: Duration::ZERO,
        },
    }
}

/// Runs one case under the reference emulator and under the tested one, each in a fresh
/// temporary working directory.
pub fn run_case(
    case: &GuestCase,
    reference: &Path,
    tested: &Path,
    timeout: Duration,
) -> CaseResult {
    let reference = run_in_temp_dir(reference, &[], case, timeout);
    let tested = run_in_temp_dir(tested, &[], case, timeout);
    let differences = compare(&reference, &tested);
    CaseResult {
        case: case.clone(),
        tier: "default".to_string(),
        reference,
        tested,
        differences,
    }
}

/// Runs one case once under the reference emulator and then under `vmrun` in each tier
/// configuration, comparing every tier with the same reference outcome. One result per tier,
/// in the order of `tiers`.
pub fn run_case_tiers(
    case: &GuestCase,
    reference: &Path,
    vmrun: &Path,
    tiers: &[TierRun],
    timeout: Duration,
) -> Vec<CaseResult> {
    let expected = run_in_temp_dir(reference, &[], case, timeout);
    tiers
        .iter()
        .map(|t| {
            let tested = run_in_temp_dir(vmrun, &t.args, case, timeout);
            let differences = compare(&expected, &tested);
            CaseResult {
                case: case.clone(),
                tier: t.name.clone(),
                reference: expected.clone(),
                tested,
                differences,
            }
        })
        .collect()
}

/// Runs `f` over `items` on up to `threads` worker threads, keeping the input order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("worker result")
        })
        .collect()
}

/// The programs the end-to-end tests drive.
pub struct Tools {
    /// qemu-aarch64, the reference.
    pub qemu: PathBuf,
    /// The vmrun binary under test.
    pub vmrun: PathBuf,
    /// The vmc binary under test.
    pub vmc: PathBuf,
}

/// Finds qemu-aarch64, vmrun and vmc, or says why `test` is skipped.
pub fn tools(test: &str) -> Option<Tools> {
    let Some(qemu) = find_in_path("qemu-aarch64") else {
        say!("{test}: SKIPPED: qemu-aarch64 not found in PATH (apt-get install qemu-user)");
        return None;
    };
    let (Some(vmrun), Some(vmc)) = (find_vmrun(), find_vmc()) else {
        say!(
            "{test}: SKIPPED: no vmrun/vmc binary (cargo build --release -p vmrun -p vmc-compiler)"
        );
        return None;
    };
    Some(Tools { qemu, vmrun, vmc })
}

impl CaseResult {
    /// The result of running `case` under `tier`, compared with the reference outcome.
    pub fn new(case: &GuestCase, tier: &str, reference: &Outcome, tested: Outcome) -> CaseResult {
        CaseResult {
            case: case.clone(),
            tier: tier.to_string(),
            differences: compare(reference, &tested),
            reference: reference.clone(),
            tested,
        }
    }
}

/// Keeps the cases whose label contains `VMC_DIFF_FILTER`, when it is set.
pub fn retain_filtered(cases: &mut Vec<GuestCase>) {
    if let Ok(filter) = std::env::var("VMC_DIFF_FILTER") {
        cases.retain(|c| c.label.contains(&filter));
    }
}

/// Prints one ok/FAIL line per result and panics with every difference if any failed.
pub fn report_results(results: &[CaseResult], what: &str) {
    for r in results {
        say!(
            "  {} {:<52} qemu {:>6.2} s  vmrun {:>6.2} s  {}",
            if r.differences.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            r.label(),
            r.reference.elapsed.as_secs_f64(),
            r.tested.elapsed.as_secs_f64(),
            r.tested.status
        );
    }
    let failures: Vec<&CaseResult> = results
        .iter()
        .filter(|r| !r.differences.is_empty())
        .collect();
    if !failures.is_empty() {
        let mut msg = format!(
            "{} of {} {what} runs differ from qemu-aarch64:\n",
            failures.len(),
            results.len()
        );
        for f in failures {
            msg.push_str(&f.report());
        }
        panic!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_emulator_lines() {
        let s = b"a\nvmrun: x: guest terminated by signal 11\nqemu: uncaught target signal 6 (Aborted) - core dumped\nb\n";
        assert_eq!(strip_emulator_lines(s), b"a\nb\n");
    }

    #[test]
    fn diff_reports_first_line() {
        let d = diff_stream("stdout", b"one\ntwo\nthree\n", b"one\n2\nthree\n").unwrap();
        assert_eq!(d.line, 2);
        assert_eq!(d.expected, "\"two\"");
        assert_eq!(d.actual, "\"2\"");
        let d = diff_stream("stdout", b"one\n", b"one\nextra\n").unwrap();
        assert_eq!(d.line, 2);
        assert_eq!(d.expected, "<end of output>");
        assert!(diff_stream("stderr", b"x", b"x").is_none());
    }

    #[test]
    fn timeout_and_signal() {
        let o = run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(200));
        assert!(matches!(o.status, Status::TimedOut(_)), "{:?}", o.status);
        let o = run_with_timeout(
            Command::new("sh").args(["-c", "echo hi; echo err >&2; kill -SEGV $$"]),
            DEFAULT_TIMEOUT,
        );
        assert_eq!(o.status, Status::Signaled(11));
        assert_eq!(o.stdout, b"hi\n");
        assert_eq!(o.stderr, b"err\n");
        let o = run_with_timeout(Command::new("sh").args(["-c", "exit 3"]), DEFAULT_TIMEOUT);
        assert_eq!(o.status, Status::Exited(3));
    }

    #[test]
    fn tier_selection() {
        let names = |v: Vec<TierRun>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(
            names(select_tiers(None).unwrap()),
            ["interp", "baseline", "opt", "auto", "opt-rp", "auto-eager"]
        );
        assert_eq!(
            names(select_tiers(Some("auto, interp")).unwrap()),
            ["interp", "auto"]
        );
        assert_eq!(names(select_tiers(Some("")).unwrap()).len(), 6);
        assert!(select_tiers(Some("interp,jit")).is_err());
    }
}
