//! `vmrun`: runs AArch64 Linux programs on an x86-64 host, in user mode like qemu-user.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod mapped;
use vmc_compiler::aot::image::Image;
use vmc_compiler::aot::sign::TrustedKeys;
use vmc_runtime::aot::ImageMem;
use vmc_runtime::profile::Recorder;
use vmc_runtime::tiers::{TierConfig, TierMode};
use vmc_runtime::{ExecOptions, Process, ProcessConfig, Termination, Timing};

/// Exit status when the program file does not exist (as a shell's "command not found").
const EXIT_NOT_FOUND: u8 = 127;
/// Exit status when the file exists but cannot be run (not ELF, wrong ISA, truncated ...).
const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit status for usage and internal errors.
const EXIT_USAGE: u8 = 2;

/// The embedded sample guest (built from tests/guests/demo/demo.c by its build.sh).
const DEMO_ELF: &[u8] = include_bytes!("../demo.elf");

#[derive(Parser, Debug)]
#[command(
    name = "vmrun",
    version,
    about = "Run AArch64 Linux programs on this x86-64 host (user mode, like qemu-aarch64)",
    after_help = "Exit status: the guest's own status; 128+N when the guest is killed by signal N \
                  (vmrun then dies by the same signal, like qemu-user); 126 when the program cannot be \
                  executed (not ELF, wrong architecture, truncated, dynamically linked); 127 when it does \
                  not exist; 2 for usage errors.\nLogging: RUST_LOG=debug (or trace) on stderr.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the built-in sample guest program and show what the pipeline did.
    Demo {
        /// Print the translated IR of the entry block too.
        #[arg(long)]
        ir: bool,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Prefix for absolute guest paths, like qemu-user's -L (e.g. a Debian arm64 root).
    #[arg(short = 'L', value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Use this argv[0] instead of the program path.
    #[arg(
        short = '0',
        long = "argv0",
        value_name = "NAME",
        allow_hyphen_values = true
    )]
    argv0: Option<String>,
    /// Run AOT images signed by this public key too (64 hex digits, or a file of keys as
    /// written by `vmc key --export`; repeatable). Also trusted: your own key and those in
    /// the trusted_keys file of your key directory (`vmc key --path`).
    #[arg(long, value_name = "HEX|FILE")]
    trust_key: Vec<String>,
    /// Internal (a guest's execve): the program is a guest program, never an AOT image
    /// (except the one given by --guest-image), and the guest environment is read from
    /// --guest-env-fd instead of this process's environment.
    #[arg(long, hide = true, requires = "guest_env_fd", conflicts_with_all = ["set_env", "unset_env"])]
    guest_exec: bool,
    /// Internal: fd of a file holding the guest environment, NUL-terminated entries.
    #[arg(long, hide = true, value_name = "FD", requires = "guest_exec")]
    guest_env_fd: Option<i32>,
    /// Internal: the signature (hex) of the one image a --guest-exec may run: the image the
    /// guest ran from, re-executing itself.
    #[arg(long, hide = true, value_name = "HEX", requires = "guest_exec")]
    guest_image: Option<String>,
    /// Set a guest environment variable (repeatable).
    #[arg(short = 'E', value_name = "VAR=VALUE")]
    set_env: Vec<String>,
    /// Remove a guest environment variable (repeatable).
    #[arg(short = 'U', value_name = "VAR")]
    unset_env: Vec<String>,
    /// Print every executed guest instruction to stderr (runs the interpreter).
    #[arg(long)]
    trace: bool,
    /// Execution tiers: interp (tier 0 only), baseline (JIT every block at once), opt
    /// (optimized regions at once), auto (interpreter, then baseline, then optimized regions
    /// compiled in the background when hot).
    #[arg(long, value_enum, default_value = "auto")]
    tier: TierArg,
    /// Executions of a block before the baseline JIT compiles it (auto).
    #[arg(long, value_name = "N", default_value_t = TierConfig::default().baseline_threshold)]
    baseline_threshold: u32,
    /// Executions of a block before it heads an optimized region (auto).
    #[arg(long, value_name = "N", default_value_t = TierConfig::default().opt_threshold)]
    opt_threshold: u32,
    /// Host code kept before translations are evicted, e.g. 64M (K, M, G suffixes).
    #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = parse_size)]
    code_cache_size: usize,
    /// Make every guest fault in translated code precise (the crash message names the
    /// faulting instruction and guest handlers see exact registers), as in the interpreter:
    /// loads check the page table instead of relying on the host MMU (slower; AOT image code
    /// is then not used).
    #[arg(long)]
    precise_faults: bool,
    /// Return-address prediction in JIT code: guest calls become host calls and their
    /// returns host returns (predicted by the CPU's return stack), optimized regions take in
    /// the return sites of their calls. Off by default: measured no faster here (README).
    /// An image's code decides (`vmc translate --return-prediction`).
    #[arg(long)]
    return_prediction: bool,
    /// Print execution statistics to stderr at exit.
    #[arg(long)]
    stats: bool,
    /// Write execution statistics as JSON to FILE at exit.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Record an execution profile to FILE at exit (block and edge counts, indirect-branch
    /// targets, call counts, entries) for `vmc translate --profile`. Works in every tier;
    /// an AOT image is profiled by running its embedded guest under the instrumented JIT.
    #[arg(long, value_name = "FILE")]
    profile_out: Option<PathBuf>,
    /// The AArch64 program to run.
    #[arg(required = true, value_name = "PROGRAM")]
    program: Option<PathBuf>,
    /// Arguments passed to the program.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

/// `--tier` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum TierArg {
    /// Reference interpreter only.
    Interp,
    /// Baseline JIT for every block.
    Baseline,
    /// Optimizing JIT for every region.
    Opt,
    /// Tiered: interpreter, baseline, optimized.
    Auto,
}

/// Parses `123`, `64K`, `16M`, `1G`.
fn parse_size(s: &str) -> Result<usize, String> {
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1usize << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: usize = num.parse().map_err(|_| format!("not a size: {s}"))?;
    n.checked_mul(mult)
        .filter(|v| *v >= 1 << 16)
        .ok_or_else(|| format!("size {s} is out of range (at least 64K)"))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo { ir }) => demo(ir),
        None => run(cli.run),
    }
}

/// Reads the guest environment a guest's execve passed (`--guest-env-fd`, see
/// `vmc_runtime::syscalls::process_ctl::vmrun_argv`), entries exactly as the guest gave
/// them, and closes the fd.
fn guest_env_from_fd(fd: i32) -> std::io::Result<Vec<Vec<u8>>> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::FileExt;
    if fd <= 2 {
        return Err(std::io::Error::other(format!("bad --guest-env-fd {fd}")));
    }
    // SAFETY: the fd was opened for this process by the vmrun that exec'd it and nothing
    // else in this process uses it: the File owns it now and closes it (before any guest
    // code runs, so the guest never sees it).
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut data = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read_at(&mut buf, data.len() as u64) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Every entry ends with a NUL: the piece after the last one is empty.
    let mut env: Vec<Vec<u8>> = data.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    env.pop();
    Ok(env)
}

/// The keys whose images run here: the user's own, the trusted_keys file's, --trust-key.
fn trusted_keys(args: &RunArgs) -> Result<TrustedKeys, vmc_compiler::aot::sign::KeyError> {
    let mut t = TrustedKeys::for_user()?;
    for k in &args.trust_key {
        t.add_arg(k)?;
    }
    Ok(t)
}

/// Builds the guest environment from the host's, with -E/-U applied.
fn guest_env(args: &RunArgs) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut env: Vec<(Vec<u8>, Vec<u8>)> = std::env::vars_os()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .filter(|(k, _)| !args.unset_env.iter().any(|u| u.as_bytes() == k.as_slice()))
        .collect();
    for kv in &args.set_env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        env.retain(|(ek, _)| ek != k.as_bytes());
        env.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    env.into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend(v);
            k
        })
        .collect()
}

fn run(args: RunArgs) -> ExitCode {
    let Some(program) = args.program.clone() else {
        eprintln!("vmrun: no program given (see --help)");
        return ExitCode::from(EXIT_USAGE);
    };
    let mut cfg = ProcessConfig {
        sysroot: args.sysroot.clone(),
        argv0: args.argv0.clone().map(String::into_bytes),
    };
    let guest_args: Vec<Vec<u8>> = args.args.iter().map(|a| a.clone().into_bytes()).collect();
    let cannot = |e: &dyn std::fmt::Display| {
        eprintln!("vmrun: {}: {e}", program.display());
        ExitCode::from(EXIT_CANNOT_EXECUTE)
    };
    let env = match args.guest_env_fd {
        Some(fd) => match guest_env_from_fd(fd) {
            Ok(env) => env,
            Err(e) => return cannot(&format!("cannot read the guest environment: {e}")),
        },
        None => guest_env(&args),
    };
    let bytes = match mapped::Program::open(&program) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("vmrun: {}: cannot read: {e}", program.display());
            return ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_CANNOT_EXECUTE
            });
        }
    };
    // An AOT image (from `vmc translate`) carries its guest; its code is linked here and
    // entered by guest PC, with the JIT for anything it lacks.
    let mut aot = None;
    // The JIT makes calls the way the image does (`vmc translate --return-prediction`): a
    // host call into code that never returns to it would only pile up host frames.
    let mut return_prediction = args.return_prediction;
    let load_start = std::time::Instant::now();
    let image_mem: std::sync::Arc<ImageMem>;
    let mut running_image = None;
    let guest: &[u8] = if Image::looks_like_image(&bytes) {
        // A guest's execve runs guest programs, not host code: only the image the guest
        // runs from, re-executing itself (its parent checked the file; this checks again
        // what is read, which may have changed since).
        if args.guest_exec && args.guest_image.is_none() {
            return cannot(&"a guest program cannot execute an AOT image (host code)");
        }
        let trusted = match trusted_keys(&args) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("vmrun: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        // Read once into private memory: verified there, and run from there.
        image_mem = match ImageMem::read(bytes.file()) {
            Ok(m) => std::sync::Arc::new(m),
            Err(e) => return cannot(&format!("cannot read: {e}")),
        };
        drop(bytes);
        let img = match Image::open(&image_mem, &trusted) {
            Ok(i) => i,
            Err(e) => return cannot(&e),
        };
        if let Some(want) = &args.guest_image {
            if img.id.signature_hex() != *want {
                return cannot(&"not the image the guest runs: a guest program cannot execute an AOT image (host code)");
            }
        }
        running_image = Some(img.id.clone());
        // The guest sees the file name it was translated from in argv[0], as if it ran
        // itself from the image's directory (multi-call programs such as busybox pick
        // their applet by it); an image named like its guest keeps its own path.
        let name = &img.meta.guest_name;
        let own = program.file_name().is_some_and(|f| f == name.as_str());
        if cfg.argv0.is_none() && !name.is_empty() && !own {
            let shown = program.with_file_name(name);
            cfg.argv0 = Some(shown.as_os_str().as_encoded_bytes().to_vec());
        }
        match vmc_runtime::aot::load(&img, Some(&image_mem)) {
            // Image code carries no counters: a profiled run uses the instrumented JIT.
            Ok(_) if args.profile_out.is_some() => {
                log::info!("profiling: running the image's guest under the JIT")
            }
            Ok(code) => aot = Some(std::sync::Arc::new(code)),
            Err(e) => return cannot(&e),
        }
        if return_prediction && !img.meta.return_prediction {
            log::warn!("--return-prediction ignored: the image was translated without it");
        }
        return_prediction = img.meta.return_prediction;
        img.guest
    } else {
        &bytes
    };
    let image_load = load_start.elapsed();
    let mut proc = match Process::spawn_image(guest, &program, &guest_args, &env, &cfg) {
        Ok(p) => p,
        Err(e) => return cannot(&e),
    };
    proc.running_image = running_image;
    let profile = args.profile_out.as_ref().map(|path| {
        let name = program.file_name().unwrap_or_default().to_string_lossy();
        std::sync::Arc::new(Recorder::new(path, guest, &name))
    });
    let mode = match args.tier {
        TierArg::Interp => TierMode::Interp,
        TierArg::Baseline => TierMode::Baseline,
        TierArg::Opt => TierMode::Opt,
        TierArg::Auto => TierMode::Auto,
    };
    let tiers = TierConfig {
        mode,
        baseline_threshold: args.baseline_threshold.max(1),
        opt_threshold: args.opt_threshold.max(1),
        code_cache_size: args.code_cache_size,
        precise_faults: args.precise_faults,
        return_prediction,
        ..TierConfig::default()
    };
    let opts = ExecOptions {
        trace: args.trace,
        tiers,
        timing: args.stats || args.stats_json.is_some(),
        aot,
        max_dispatches: None,
        profile: profile.clone(),
    };
    let mut timing = Timing {
        image_load: if opts.aot.is_some() {
            image_load
        } else {
            Duration::ZERO
        },
        ..Timing::default()
    };
    let term = proc.run(&opts, &mut timing);
    if let Some(p) = &profile {
        match p.write() {
            Ok(true) if args.stats => eprintln!(
                "vmrun: profile of {} blocks written to {}",
                p.blocks(),
                p.path().display()
            ),
            Ok(_) => {}
            Err(e) => eprintln!("vmrun: {e}"),
        }
    }
    let mode_name = format!("{:?}", args.tier).to_lowercase();
    report(
        &proc,
        &timing,
        &term,
        args.stats,
        args.stats_json.as_deref(),
        &mode_name,
    );
    finish(&program, term)
}

/// Prints and writes statistics as requested.
fn report(
    proc: &Process,
    timing: &Timing,
    term: &Termination,
    stats: bool,
    json: Option<&Path>,
    mode: &str,
) {
    let c = &proc.counters;
    if stats {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let j = &c.jit;
        let rate = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        let per_insn = |d: Duration, n: u64| {
            if n == 0 {
                0.0
            } else {
                d.as_secs_f64() * 1e6 / n as f64
            }
        };
        eprintln!("vmrun statistics ({mode})");
        eprintln!("  code cache lookups        {:>14}", j.lookups);
        eprintln!(
            "  hits / misses             {:>14} / {} ({:.2}% hit rate)",
            j.hits,
            j.misses,
            rate(j.hits, j.lookups)
        );
        eprintln!("  guest insns to IR         {:>14}", c.insns_translated);
        eprintln!(
            "  baseline translations     {:>14} ({} guest insns, {:.1} ms, {:.2} us/insn)",
            j.baseline_translations,
            j.baseline_guest_insns,
            ms(j.baseline_compile_time),
            per_insn(j.baseline_compile_time, j.baseline_guest_insns)
        );
        eprintln!(
            "  optimized translations    {:>14} ({} guest insns, {:.1} ms, {:.2} us/insn)",
            j.opt_translations,
            j.opt_guest_insns,
            ms(j.opt_compile_time),
            per_insn(j.opt_compile_time, j.opt_guest_insns)
        );
        eprintln!("  host code bytes           {:>14}", j.host_code_bytes);
        eprintln!(
            "  chain links made / broken {:>14} / {}",
            j.chain_links_made, j.chain_links_broken
        );
        eprintln!("  tier-ups                  {:>14}", j.tier_ups);
        eprintln!("  invalidations             {:>14}", j.invalidations);
        eprintln!(
            "  evictions / kept          {:>14} / {}",
            j.evictions, j.evictions_survived
        );
        eprintln!("  compile failures          {:>14}", j.compile_failures);
        eprintln!(
            "  blocks interpreted        {:>14} ({} guest insns)",
            c.blocks_executed, c.insns_executed
        );
        eprintln!("  entries into JIT code     {:>14}", j.jit_entries);
        if j.aot_regions > 0 {
            eprintln!(
                "  AOT regions loaded        {:>14} ({} invalidated)",
                j.aot_regions, j.aot_invalidations
            );
            eprintln!(
                "  AOT vs JIT fallback       {:>14} dispatcher entries into AOT code / {} into JIT code, {} blocks interpreted",
                j.aot_entries, j.jit_entries, c.blocks_executed
            );
        }
        eprintln!("  system calls              {:>14}", c.syscalls);
        if j.aot_regions > 0 {
            eprintln!(
                "  time loading the image    {:>11.1} ms",
                ms(timing.image_load)
            );
        }
        eprintln!("  time total                {:>11.1} ms", ms(timing.total));
        eprintln!("  time in interpreter       {:>11.1} ms", ms(timing.interp));
        eprintln!("  time in JIT code          {:>11.1} ms", ms(timing.jit));
        eprintln!(
            "  time in runtime (syscalls){:>11.1} ms",
            ms(timing.syscalls)
        );
        eprintln!(
            "  time translating to IR    {:>11.1} ms",
            ms(timing.translate)
        );
        eprintln!("  exit                      {:>14}", term.exit_code());
    }
    if let Some(path) = json {
        let v = serde_json::json!({
            "tier": format!("{mode}"),
            "counters": c,
            "time_interp_s": timing.interp.as_secs_f64(),
            "time_jit_s": timing.jit.as_secs_f64(),
            "time_total_s": timing.total.as_secs_f64(),
            "time_translate_s": timing.translate.as_secs_f64(),
            "time_syscalls_s": timing.syscalls.as_secs_f64(),
            "time_image_load_s": timing.image_load.as_secs_f64(),
            "exit_status": term.exit_code(),
        });
        if let Err(e) = std::fs::write(
            path,
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
        ) {
            eprintln!("vmrun: {}: cannot write statistics: {e}", path.display());
        }
    }
}

/// Ends vmrun the way the guest ended: same exit status, or death by the same signal.
fn finish(program: &Path, term: Termination) -> ExitCode {
    match term {
        Termination::Exited(code) => ExitCode::from(code as u8),
        Termination::Signaled { signal, reason } => {
            eprintln!(
                "vmrun: {}: guest terminated by signal {signal} ({}): {reason}",
                program.display(),
                signal_name(signal)
            );
            die_by_signal(signal);
            ExitCode::from((128 + signal) as u8)
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Kills this process with `signal` (default action, no core file), as qemu-user does.
fn die_by_signal(signal: i32) {
    // SAFETY: plain libc calls on our own process: no core dump, default disposition,
    // unblock the signal, then raise it.
    unsafe {
        let lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
}

fn demo(show_ir: bool) -> ExitCode {
    let name = Path::new("vmrun-demo");
    println!("vmrun demo: running the embedded AArch64 sample ({} bytes, built from tests/guests/demo/demo.c)", DEMO_ELF.len());
    println!("--- guest output ---");
    let mut proc = match Process::spawn_image(DEMO_ELF, name, &[], &[], &ProcessConfig::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vmrun: demo: {e}");
            return ExitCode::from(EXIT_CANNOT_EXECUTE);
        }
    };
    let entry = proc.cpu.pc;
    let entry_block = {
        let mem = &mut proc.mem;
        vmc_compiler::a64::translate_block(&mut |a| mem.fetch(a), entry)
    };
    let mut timing = Timing::default();
    let term = proc.run(&ExecOptions::default(), &mut timing);
    let c = &proc.counters;
    println!("--- what vmrun did ---");
    println!("loaded a static AArch64 ELF, entry point {entry:#x}");
    println!(
        "translated {} blocks ({} guest instructions) from A64 to IR with yaxpeax-arm",
        c.blocks_translated, c.insns_translated
    );
    println!(
        "ran in {:.1} ms: {} blocks interpreted ({} guest instructions), {} blocks compiled by the \
         baseline JIT, {} regions by the optimizing JIT, {} entries into JIT code",
        timing.total.as_secs_f64() * 1e3,
        c.blocks_executed,
        c.insns_executed,
        c.jit.baseline_translations,
        c.jit.opt_translations,
        c.jit.jit_entries
    );
    println!(
        "emulated {} Linux system calls; guest exit status {}",
        c.syscalls,
        term.exit_code()
    );
    if show_ir {
        println!("--- entry block: A64 -> IR ---\n{entry_block}");
    } else {
        println!("(run `vmrun demo --ir` to see the entry block's IR)");
    }
    match term {
        Termination::Exited(0) => ExitCode::SUCCESS,
        other => {
            eprintln!("vmrun: demo: unexpected end: {other:?}");
            ExitCode::from(1)
        }
    }
}
