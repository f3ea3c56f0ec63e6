//! `vmbench`: runs each benchmark program in every available mode (native x86-64 build of the
//! same source, qemu-aarch64, vmrun's interpreter tier), alternating the modes run by run,
//! and reports medians and ratios measured side by side in one run. It checks that every mode
//! printed the same output, writes `results.json` and a grouped bar chart `chart.svg`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "vmbench",
    version,
    about = "Compare native, qemu-aarch64 and vmrun on guest programs"
)]
struct Cli {
    /// Small inputs and one run per mode: a smoke test that finishes in about a minute.
    #[arg(long)]
    quick: bool,
    /// Output directory for results.json and chart.svg.
    #[arg(long, default_value = "target/vmbench")]
    out: PathBuf,
    /// Runs per mode (medians are reported); default 3, or 1 with --quick.
    #[arg(long)]
    runs: Option<usize>,
    /// Modes to run, comma separated: native, qemu, interp, baseline, opt, jit (vmrun's
    /// default tiered mode), aot (an image from `vmc translate`, JIT for the rest), pgo
    /// (AOT+PGO: a training run under `vmrun --profile-out`, then `vmc translate --profile`),
    /// jit-rp and aot-rp (jit and aot with return-address prediction, `--return-prediction`).
    #[arg(
        long,
        default_value = "native,qemu,interp,jit,aot,pgo",
        value_delimiter = ','
    )]
    modes: Vec<String>,
    /// Measure `vmc translate` throughput and its parallel speed-up (-j 1 against -j 2,
    /// alternating, medians of --runs) on this large binary, e.g. tests/guests/build/busybox;
    /// the kernels run too only when named.
    #[arg(long, value_name = "BINARY")]
    scaling: Option<PathBuf>,
    /// Benchmarks to run (names from benches/kernels.txt); default all.
    programs: Vec<String>,
}

/// Translation throughput and parallel speed-up on one large binary.
#[derive(Debug, Serialize)]
struct Scaling {
    input: String,
    input_bytes: u64,
    guest_insns: u64,
    /// Wall times per job count, in run order.
    runs_j1_s: Vec<f64>,
    runs_j2_s: Vec<f64>,
    median_j1_s: f64,
    median_j2_s: f64,
    insns_per_s_j1: f64,
    insns_per_s_j2: f64,
    /// Median -j 1 time over median -j 2 time.
    speedup: f64,
}

/// Translates `input` with -j 1 and -j 2 alternately, `runs` times each.
fn scaling(root: &Path, out: &Path, input: &Path, runs: usize) -> Result<Scaling> {
    let vmc = root.join("target/release/vmc");
    let dir = out.join("scaling");
    std::fs::create_dir_all(&dir)?;
    let (image, summary) = (dir.join("image.aot"), dir.join("summary.json"));
    let mut times = [Vec::new(), Vec::new()];
    let mut guest_insns = 0;
    for _ in 0..runs {
        for (k, jobs) in ["1", "2"].into_iter().enumerate() {
            let t0 = Instant::now();
            let st = Command::new(&vmc)
                .args(["translate", "-q", "-j", jobs, "--summary-json"])
                .arg(&summary)
                .arg(input)
                .arg("-o")
                .arg(&image)
                .status()
                .with_context(|| format!("{}", vmc.display()))?;
            times[k].push(t0.elapsed().as_secs_f64());
            if !st.success() {
                bail!("vmc translate -j {jobs} {} failed", input.display());
            }
            let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
            guest_insns = s["inputs"][0]["guest_insns"].as_u64().unwrap_or(0);
        }
    }
    let [mut j1, mut j2] = times;
    let (runs_j1_s, runs_j2_s) = (j1.clone(), j2.clone());
    let (m1, m2) = (median(&mut j1), median(&mut j2));
    Ok(Scaling {
        input: input.display().to_string(),
        input_bytes: std::fs::metadata(input)?.len(),
        guest_insns,
        runs_j1_s,
        runs_j2_s,
        median_j1_s: m1,
        median_j2_s: m2,
        insns_per_s_j1: guest_insns as f64 / m1.max(1e-9),
        insns_per_s_j2: guest_insns as f64 / m2.max(1e-9),
        speedup: m1 / m2.max(1e-9),
    })
}

/// One benchmark: a guest program name and its arguments (full and quick sizes).
#[derive(Debug, Clone)]
struct Bench {
    name: String,
    /// The prebuilt program it runs (`tests/guests/build/BINARY`, natively
    /// `tests/guests/build/native/BINARY`), or `None` for `NAME-O2` built from
    /// `tests/guests/NAME.c`.
    binary: Option<String>,
    args: Vec<String>,
    /// Arguments with `--quick`; `None`: not run with `--quick`.
    quick_args: Option<Vec<String>>,
}

impl Bench {
    /// The file name of its program under `tests/guests/build` (and `.../native`).
    fn file(&self) -> String {
        match &self.binary {
            Some(b) => b.clone(),
            None => format!("{}-O2", self.name),
        }
    }
}

/// Bytes of the generated text the `{input}` argument names.
const INPUT_BYTES: usize = 16 << 20;

/// Writes (once) the input file of the `{input}` argument: deterministic pseudo-English
/// text, so compressors and checksums work on data like their usual inputs.
fn input_file(out: &Path) -> Result<PathBuf> {
    let path = out.join("inputs").join("text-16M.txt");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == INPUT_BYTES as u64) {
        return Ok(path);
    }
    std::fs::create_dir_all(path.parent().context("input dir")?)?;
    const WORDS: &str =
        "the of and to in a is that for it as was with be by on not he this are or his \
        from at which but have an had they you were their one all we translation binary \
        register memory instruction guest host compiler region block cache signal kernel \
        page table";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut text = Vec::with_capacity(INPUT_BYTES + 16);
    while text.len() < INPUT_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        text.push(match x >> 60 {
            0 => b'\n',
            1 => b',',
            _ => b' ',
        });
        if x >> 56 == 0xff {
            // A number now and then.
            text.extend_from_slice(format!("{} ", x % 100_000).as_bytes());
        }
    }
    text.truncate(INPUT_BYTES);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[derive(Debug, Serialize)]
struct ModeResult {
    mode: String,
    median_s: f64,
    runs_s: Vec<f64>,
    ratio_vs_native: Option<f64>,
    ratio_vs_qemu: Option<f64>,
    output_matches: bool,
    /// For vmrun modes: translation cost, hit rate, time per tier (last run).
    vmrun_stats: Option<VmrunStats>,
}

/// The figures of one vmrun run that the report shows.
#[derive(Debug, Serialize)]
struct VmrunStats {
    baseline_us_per_insn: Option<f64>,
    opt_us_per_insn: Option<f64>,
    hit_rate: Option<f64>,
    share_interp: f64,
    share_jit: f64,
    share_runtime: f64,
    /// Dispatcher entries into image code (aot, pgo).
    aot_entries: u64,
    /// Dispatcher entries into JIT code and blocks interpreted: code the image lacked.
    jit_fallbacks: u64,
}

fn summarize_stats(v: serde_json::Value) -> VmrunStats {
    let f = |path: &[&str]| {
        let mut x = &v;
        for p in path {
            x = &x[*p];
        }
        x.as_f64()
    };
    let secs = |path: &[&str]| {
        let mut x = &v;
        for p in path {
            x = &x[*p];
        }
        x["secs"].as_f64().unwrap_or(0.0) + x["nanos"].as_f64().unwrap_or(0.0) * 1e-9
    };
    let per = |t: f64, n: Option<f64>| n.filter(|n| *n > 0.0).map(|n| t * 1e6 / n);
    let total = f(&["time_total_s"]).unwrap_or(0.0).max(1e-12);
    let (interp, jit, sys) = (
        f(&["time_interp_s"]).unwrap_or(0.0),
        f(&["time_jit_s"]).unwrap_or(0.0),
        f(&["time_syscalls_s"]).unwrap_or(0.0),
    );
    let lookups = f(&["counters", "jit", "lookups"]);
    VmrunStats {
        baseline_us_per_insn: per(
            secs(&["counters", "jit", "baseline_compile_time"]),
            f(&["counters", "jit", "baseline_guest_insns"]),
        ),
        opt_us_per_insn: per(
            secs(&["counters", "jit", "opt_compile_time"]),
            f(&["counters", "jit", "opt_guest_insns"]),
        ),
        hit_rate: lookups
            .filter(|l| *l > 0.0)
            .map(|l| f(&["counters", "jit", "hits"]).unwrap_or(0.0) / l),
        share_interp: interp / total,
        share_jit: jit / total,
        share_runtime: sys / total,
        aot_entries: f(&["counters", "jit", "aot_entries"]).unwrap_or(0.0) as u64,
        jit_fallbacks: (f(&["counters", "jit", "jit_entries"]).unwrap_or(0.0)
            + f(&["counters", "blocks_executed"]).unwrap_or(0.0)) as u64,
    }
}

#[derive(Debug, Serialize)]
struct BenchResult {
    name: String,
    args: Vec<String>,
    modes: Vec<ModeResult>,
    /// `vmc translate` of the program (aot mode).
    translation: Option<Translation>,
    /// Training run and guided translation (pgo mode).
    pgo: Option<Pgo>,
}

/// What the profile-guided image of a program cost.
#[derive(Debug, Serialize)]
struct Pgo {
    /// Wall time of the training run under `vmrun --profile-out` (auto tiers).
    profile_run_s: f64,
    /// Training run time over the JIT's median (the recording overhead), when both ran.
    profile_overhead_vs_jit: Option<f64>,
    /// Size of the profile file.
    profile_bytes: u64,
    /// `vmc translate --profile`.
    translation: Translation,
}

/// What the AOT translation of a program cost.
#[derive(Debug, Serialize)]
struct Translation {
    /// Wall time of `vmc translate` (no cache).
    seconds: f64,
    /// Guest instructions translated.
    guest_insns: u64,
    /// Size of the image file.
    image_bytes: u64,
}

fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

fn load_kernels(root: &Path) -> Result<Vec<Bench>> {
    let path = root.join("benches/kernels.txt");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        // NAME[=BINARY] | full args | quick args (`-`: not with --quick)
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        if parts.len() != 3 {
            bail!(
                "{}: bad line (want NAME[=BINARY] | ARGS | QUICK ARGS): {line}",
                path.display()
            );
        }
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let (name, binary) = match parts[0].split_once('=') {
            Some((n, b)) => (n.trim(), Some(b.trim().to_string())),
            None => (parts[0], None),
        };
        out.push(Bench {
            name: name.to_string(),
            binary,
            args: words(parts[1]),
            quick_args: (parts[2] != "-").then(|| words(parts[2])),
        });
    }
    Ok(out)
}

/// The image of a benchmark: plain (aot mode) or profile-guided (pgo mode).
/// The image a mode runs: `aot`, `pgo` (guided by a profile) or `aot-rp` (translated with
/// return-address prediction).
fn image_path(out: &Path, name: &str, mode: &str) -> PathBuf {
    let kind = match mode {
        "pgo" => "pgo.aot",
        "aot-rp" => "rp.aot",
        _ => "aot",
    };
    out.join("images").join(format!("{name}-O2.{kind}"))
}

fn guest_path(root: &Path, b: &Bench) -> PathBuf {
    root.join("tests/guests/build").join(b.file())
}

/// Translates the benchmark's guest into the image of `mode` (see [`image_path`]), guided by
/// `profile` if given.
fn translate(
    root: &Path,
    out: &Path,
    b: &Bench,
    mode: &str,
    profile: Option<&Path>,
) -> Result<Translation> {
    let vmc = root.join("target/release/vmc");
    let guest = guest_path(root, b);
    let name = &b.name;
    let image = image_path(out, name, mode);
    std::fs::create_dir_all(image.parent().context("image dir")?)?;
    let summary = image.with_extension("json");
    let t0 = Instant::now();
    let mut cmd = Command::new(&vmc);
    cmd.args(["translate", "-q", "--summary-json"])
        .arg(&summary)
        .arg(&guest)
        .arg("-o")
        .arg(&image);
    if let Some(p) = profile {
        cmd.arg("--profile").arg(p);
    }
    if mode == "aot-rp" {
        cmd.arg("--return-prediction");
    }
    let st = cmd.status().with_context(|| format!("{}", vmc.display()))?;
    let seconds = t0.elapsed().as_secs_f64();
    if !st.success() {
        bail!("vmc translate {} failed", guest.display());
    }
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
    Ok(Translation {
        seconds,
        guest_insns: s["inputs"][0]["guest_insns"].as_u64().unwrap_or(0),
        image_bytes: std::fs::metadata(&image)?.len(),
    })
}

/// The pgo mode's preparation: one training run recording a profile (same arguments as
/// the measured runs), then the guided translation.
fn train(root: &Path, out: &Path, b: &Bench, args: &[String]) -> Result<Pgo> {
    let name = &b.name;
    let vmrun = root.join("target/release/vmrun");
    let dir = out.join("profiles");
    std::fs::create_dir_all(&dir)?;
    let profile = dir.join(format!("{name}-O2.prof"));
    let mut cmd = Command::new(&vmrun);
    cmd.arg("--profile-out")
        .arg(&profile)
        .arg(guest_path(root, b));
    let (dt, _, _) = run_once(cmd, args)?;
    if !profile.exists() {
        bail!("the training run wrote no profile");
    }
    Ok(Pgo {
        profile_run_s: dt.as_secs_f64(),
        profile_overhead_vs_jit: None,
        profile_bytes: std::fs::metadata(&profile)?.len(),
        translation: translate(root, out, b, "pgo", Some(&profile))?,
    })
}

fn command_for(
    root: &Path,
    out: &Path,
    mode: &str,
    b: &Bench,
    stats: Option<&Path>,
) -> Option<Command> {
    let (build, name) = (root.join("tests/guests/build"), &b.name);
    let guest = build.join(b.file());
    let vmrun = [
        root.join("target/release/vmrun"),
        root.join("target/debug/vmrun"),
    ]
    .into_iter()
    .find(|p| p.exists());
    match mode {
        "native" => {
            let p = build.join("native").join(b.file());
            p.exists().then(|| Command::new(p))
        }
        "qemu" => {
            let ok = guest.exists() && which("qemu-aarch64");
            ok.then(|| {
                let mut c = Command::new("qemu-aarch64");
                c.arg(&guest);
                c
            })
        }
        "interp" | "baseline" | "opt" | "jit" | "jit-rp" => {
            let v = vmrun?;
            let tier = if mode.starts_with("jit") {
                "auto"
            } else {
                mode
            };
            guest.exists().then(|| {
                let mut c = Command::new(v);
                c.arg("--tier").arg(tier);
                if mode == "jit-rp" {
                    c.arg("--return-prediction");
                }
                if let Some(path) = stats {
                    c.arg("--stats-json").arg(path);
                }
                c.arg(&guest);
                c
            })
        }
        "aot" | "pgo" | "aot-rp" => {
            let v = vmrun?;
            let image = image_path(out, name, mode);
            image.exists().then(|| {
                let mut c = Command::new(v);
                if let Some(path) = stats {
                    c.arg("--stats-json").arg(path);
                }
                c.arg(image);
                c
            })
        }
        _ => None,
    }
}

fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

fn run_once(mut cmd: Command, args: &[String]) -> Result<(Duration, Vec<u8>, i32)> {
    let t0 = Instant::now();
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    let dt = t0.elapsed();
    Ok((dt, out.stdout, out.status.code().unwrap_or(-1)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = root();
    let mut benches = load_kernels(&root)?;
    if cli.scaling.is_some() && cli.programs.is_empty() {
        benches.clear();
    } else if !cli.programs.is_empty() {
        benches.retain(|b| cli.programs.contains(&b.name));
        if benches.is_empty() {
            bail!("none of {:?} is in benches/kernels.txt", cli.programs);
        }
    }
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 3 });
    let mut results = Vec::new();
    let mut mismatches = 0;
    for b in &benches {
        let args = match (cli.quick, &b.quick_args) {
            (false, _) => &b.args,
            (true, Some(quick)) => quick,
            (true, None) => continue,
        };
        // `{input}` names the generated input file.
        let args: Vec<String> = if args.iter().any(|a| a.contains("{input}")) {
            let input = input_file(&cli.out)?;
            args.iter()
                .map(|a| a.replace("{input}", &input.display().to_string()))
                .collect()
        } else {
            args.clone()
        };
        let mut translation = None;
        let has_vmc = root.join("target/release/vmc").exists();
        if cli.modes.iter().any(|m| m == "aot") && has_vmc {
            match translate(&root, &cli.out, b, "aot", None) {
                Ok(t) => translation = Some(t),
                Err(e) => eprintln!("vmbench: {}: {e:#}", b.name),
            }
        }
        if cli.modes.iter().any(|m| m == "aot-rp") && has_vmc {
            if let Err(e) = translate(&root, &cli.out, b, "aot-rp", None) {
                eprintln!("vmbench: {}: {e:#}", b.name);
            }
        }
        let mut pgo = None;
        if cli.modes.iter().any(|m| m == "pgo") && has_vmc {
            match train(&root, &cli.out, b, &args) {
                Ok(p) => pgo = Some(p),
                Err(e) => eprintln!("vmbench: {}: {e:#}", b.name),
            }
        }
        let modes: Vec<&String> = cli
            .modes
            .iter()
            .filter(|m| command_for(&root, &cli.out, m, b, None).is_some())
            .collect();
        if modes.is_empty() {
            eprintln!(
                "vmbench: {}: not built (run tests/guests/build.sh); skipped",
                b.name
            );
            continue;
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        let mut outputs: Vec<Option<(Vec<u8>, i32)>> = vec![None; modes.len()];
        // Alternate modes run by run so machine noise hits every mode alike.
        let stats_dir = cli.out.join("stats");
        std::fs::create_dir_all(&stats_dir)?;
        for run in 0..runs {
            for (i, m) in modes.iter().enumerate() {
                // The last run of each vmrun mode also records its statistics.
                let stats_path = stats_dir.join(format!("{}-{m}.json", b.name));
                let stats = (run + 1 == runs).then_some(stats_path.as_path());
                let cmd = command_for(&root, &cli.out, m, b, stats).context("mode vanished")?;
                let (dt, out, code) = run_once(cmd, &args)?;
                times[i].push(dt.as_secs_f64());
                outputs[i] = Some((out, code));
            }
        }
        let reference = outputs.iter().flatten().next().cloned();
        let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
        let native = modes.iter().position(|m| *m == "native").map(|i| med[i]);
        let qemu = modes.iter().position(|m| *m == "qemu").map(|i| med[i]);
        let mut mode_results = Vec::new();
        for (i, m) in modes.iter().enumerate() {
            let matches = outputs[i] == reference;
            if !matches {
                mismatches += 1;
                eprintln!(
                    "vmbench: {}: output of mode {m} differs from mode {}",
                    b.name, modes[0]
                );
            }
            let stats_path = stats_dir.join(format!("{}-{m}.json", b.name));
            let vmrun_stats = std::fs::read_to_string(&stats_path)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .map(summarize_stats);
            mode_results.push(ModeResult {
                vmrun_stats,
                mode: m.to_string(),
                median_s: med[i],
                runs_s: times[i].clone(),
                ratio_vs_native: native.map(|n| med[i] / n),
                ratio_vs_qemu: qemu.map(|q| med[i] / q),
                output_matches: matches,
            });
        }
        if let (Some(p), Some(j)) = (
            pgo.as_mut(),
            modes.iter().position(|m| *m == "jit").map(|i| med[i]),
        ) {
            p.profile_overhead_vs_jit = Some(p.profile_run_s / j);
        }
        results.push(BenchResult {
            name: b.name.clone(),
            args,
            modes: mode_results,
            translation,
            pgo,
        });
    }
    print_table(&results);
    let scaled = match &cli.scaling {
        Some(input) => {
            let s = scaling(&root, &cli.out, input, runs)?;
            println!(
                "vmc translate {} ({:.1} MB, {} guest insns): -j 1 {:.2} s ({:.0} insns/s), -j 2 {:.2} s ({:.0} insns/s), speed-up {:.2}x",
                s.input,
                s.input_bytes as f64 / 1e6,
                s.guest_insns,
                s.median_j1_s,
                s.insns_per_s_j1,
                s.median_j2_s,
                s.insns_per_s_j2,
                s.speedup
            );
            Some(s)
        }
        None => None,
    };
    std::fs::create_dir_all(&cli.out).with_context(|| format!("{}", cli.out.display()))?;
    let json = serde_json::json!({
        "quick": cli.quick,
        "runs": runs,
        "results": results,
        "scaling": scaled,
    });
    std::fs::write(
        cli.out.join("results.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    if results.is_empty() {
        eprintln!("vmbench: wrote {}/results.json", cli.out.display());
    } else {
        std::fs::write(cli.out.join("chart.svg"), chart(&results))?;
        eprintln!(
            "vmbench: wrote {}/results.json and chart.svg",
            cli.out.display()
        );
    }
    if mismatches > 0 {
        bail!("{mismatches} mode(s) printed different output");
    }
    Ok(())
}

fn print_table(results: &[BenchResult]) {
    for r in results {
        if let Some(t) = &r.translation {
            println!(
                "{:<12} vmc translate: {:.2} s for {} guest insns ({:.0} insns/s), image {:.1} MB",
                r.name,
                t.seconds,
                t.guest_insns,
                t.guest_insns as f64 / t.seconds.max(1e-9),
                t.image_bytes as f64 / 1e6
            );
        }
        if let Some(p) = &r.pgo {
            println!(
                "{:<12} pgo: training run {:.2} s ({} the JIT), profile {:.1} KB; vmc translate --profile: {:.2} s, image {:.1} MB",
                r.name,
                p.profile_run_s,
                p.profile_overhead_vs_jit
                    .map(|o| format!("{o:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                p.profile_bytes as f64 / 1e3,
                p.translation.seconds,
                p.translation.image_bytes as f64 / 1e6
            );
        }
        let fallbacks: Vec<String> = r
            .modes
            .iter()
            .filter(|m| matches!(m.mode.as_str(), "aot" | "pgo" | "aot-rp"))
            .filter_map(|m| {
                let v = m.vmrun_stats.as_ref()?;
                Some(format!(
                    "{} {} entries into image code, {} JIT/interpreter fallbacks",
                    m.mode, v.aot_entries, v.jit_fallbacks
                ))
            })
            .collect();
        if !fallbacks.is_empty() {
            println!("{:<12} {}", r.name, fallbacks.join("; "));
        }
    }
    println!(
        "{:<12} {:<8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>7}  time interp/jit/runtime %",
        "program", "mode", "median s", "x native", "x qemu", "base us/i", "opt us/i", "hit %"
    );
    let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    for r in results {
        for m in &r.modes {
            let (base, opt, hit, share) = match &m.vmrun_stats {
                Some(v) => (
                    f(v.baseline_us_per_insn),
                    f(v.opt_us_per_insn),
                    v.hit_rate
                        .map(|h| format!("{:.1}", 100.0 * h))
                        .unwrap_or_else(|| "-".into()),
                    format!(
                        "{:.0}/{:.0}/{:.0}",
                        100.0 * v.share_interp,
                        100.0 * v.share_jit,
                        100.0 * v.share_runtime
                    ),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            println!(
                "{:<12} {:<8} {:>9.3} {:>9} {:>8} {:>9} {:>9} {:>7}  {}{}",
                r.name,
                m.mode,
                m.median_s,
                f(m.ratio_vs_native),
                f(m.ratio_vs_qemu),
                base,
                opt,
                hit,
                share,
                if m.output_matches {
                    ""
                } else {
                    "  OUTPUT DIFFERS"
                }
            );
        }
    }
}

/// A grouped bar chart (log scale) of time relative to native, one group per program.
fn chart(results: &[BenchResult]) -> String {
    let colors = [
        ("native", "#4c78a8"),
        ("qemu", "#f58518"),
        ("interp", "#e45756"),
        ("baseline", "#72b7b2"),
        ("opt", "#54a24b"),
        ("jit", "#b279a2"),
        ("aot", "#9d755d"),
        ("pgo", "#ff9da6"),
        ("jit-rp", "#bab0ac"),
        ("aot-rp", "#eeca3b"),
    ];
    let (w, h, left, top, bottom) = (900.0, 420.0, 60.0, 40.0, 80.0);
    let groups = results.len().max(1) as f64;
    let gw = (w - left - 20.0) / groups;
    let max_ratio = results
        .iter()
        .flat_map(|r| r.modes.iter().filter_map(|m| m.ratio_vs_native))
        .fold(1.0f64, f64::max);
    let top_log = max_ratio.log10().ceil().max(1.0);
    let y =
        |ratio: f64| top + (h - top - bottom) * (1.0 - ratio.max(1e-3).log10().max(0.0) / top_log);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"{left}\" y=\"20\" font-size=\"14\">Run time relative to native x86-64 (log scale, lower is better)</text>\n"
    );
    for k in 0..=(top_log as i32) {
        let r = 10f64.powi(k);
        let yv = y(r);
        s += &format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" stroke=\"#ddd\"/><text x=\"5\" y=\"{:.1}\">{r}x</text>\n",
            w - 20.0,
            yv + 4.0
        );
    }
    for (gi, r) in results.iter().enumerate() {
        let x0 = left + gi as f64 * gw;
        let bw = gw / (colors.len() as f64 + 1.0);
        for (ci, (mode, color)) in colors.iter().enumerate() {
            if let Some(ratio) = r
                .modes
                .iter()
                .find(|m| m.mode == *mode)
                .and_then(|m| m.ratio_vs_native)
            {
                let yy = y(ratio);
                s += &format!(
                    "<rect x=\"{:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{} {mode}: {ratio:.2}x</title></rect>\n",
                    x0 + (ci as f64 + 0.5) * bw,
                    bw * 0.9,
                    (h - bottom - yy).max(0.5),
                    r.name
                );
            }
        }
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x0 + gw / 2.0,
            h - bottom + 18.0,
            r.name
        );
    }
    for (ci, (mode, color)) in colors.iter().enumerate() {
        let x = left + ci as f64 * 110.0;
        s += &format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{mode}</text>\n",
            h - 30.0,
            x + 16.0,
            h - 20.0
        );
    }
    s + "</svg>\n"
}
