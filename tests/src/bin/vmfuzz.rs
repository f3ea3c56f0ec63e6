//! `vmfuzz`: the fuzzing harness (see [`vmc_tests::fuzz`]).
//!
//! `vmfuzz --target elf|image|profile|insn|all --cases N --seed S [--out DIR] [--jobs J]
//! [--json FILE] [--case I] [--budget SECS]`: prints per target the counts of cases, clean
//! refusals, guest runs, host panics, host crashes and hangs (and insn mismatches); exits 1
//! on any panic, crash, hang or mismatch, with each reproducer saved under `--out`
//! (default `target/vmfuzz`). `--case I` runs only case I of the seed; `--input FILE` runs
//! a saved reproducer's bytes as that case's input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use vmc_tests::fuzz::{self, Config, Target};

const USAGE: &str = "usage: vmfuzz --target elf|image|profile|insn|all [--cases N] [--seed S] [--case I] [--out DIR] [--jobs J] [--json FILE] [--budget SECS] [--input FILE] [--quiet]";

fn main() -> ExitCode {
    match run() {
        Ok(ok) => ExitCode::from(if ok { 0 } else { 1 }),
        Err(e) => {
            eprintln!("vmfuzz: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut targets = Vec::new();
    let (mut cases, mut seed, mut first, mut jobs) = (1000u64, 1u64, None, 0usize);
    let mut out = fuzz::root().join("target/vmfuzz");
    let (mut json, mut budget, mut progress) = (None::<PathBuf>, None, true);
    let mut input = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let num = |s: String| -> Result<u64, String> {
            s.parse().map_err(|_| format!("{a}: not a number: {s}"))
        };
        match a.as_str() {
            "--target" => {
                let v = val()?;
                if v == "all" {
                    targets.extend(fuzz::ALL);
                } else {
                    targets.push(Target::parse(&v).ok_or_else(|| format!("unknown target {v}"))?);
                }
            }
            "--cases" => cases = num(val()?)?,
            "--seed" => seed = num(val()?)?,
            "--case" => first = Some(num(val()?)?),
            "--jobs" => jobs = num(val()?)? as usize,
            "--out" => out = PathBuf::from(val()?),
            "--json" => json = Some(PathBuf::from(val()?)),
            "--budget" => budget = Some(Duration::from_secs(num(val()?)?)),
            "--input" => {
                let path = val()?;
                input = Some(std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?);
            }
            "--quiet" => progress = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if targets.is_empty() {
        return Err("no --target".into());
    }
    if jobs == 0 {
        jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    }
    let mut all = Vec::new();
    for target in targets {
        let cfg = Config {
            target,
            cases: if first.is_some() { 1 } else { cases },
            first: first.unwrap_or(0),
            seed,
            jobs,
            out: out.clone(),
            budget: budget.unwrap_or(target.default_budget()),
            progress,
            input: input.clone(),
        };
        let c = fuzz::campaign(&cfg)?;
        eprint!("{}", fuzz::table(std::slice::from_ref(&c)));
        all.push(c);
    }
    println!("vmfuzz: seed {seed}, {jobs} workers\n{}", fuzz::table(&all));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(!all.iter().any(fuzz::Counts::failed))
}
