//! Differential test: every guest of tests/guests/build (both -O0 and -O2) runs once under
//! `qemu-aarch64` (the reference) and under `vmrun` in every tier configuration (`--tier
//! interp`, `baseline`, `opt`, `auto`, `opt-rp` = opt with `--return-prediction`, and
//! `auto-eager` = auto with thresholds 1 and 2), with
//! the same arguments, environment and a fresh working directory each time; stdout, stderr
//! (without the emulators' own diagnostics) and the exit status (signal number when killed)
//! of every tier must equal the reference's. All failures are reported together, each
//! labelled with its tier.
//!
//! Environment: `VMC_DIFF_FILTER=SUBSTRING` runs only cases whose label contains it;
//! `VMC_DIFF_TIERS=interp,auto` (comma list of interp, baseline, opt, auto, opt-rp, auto-eager)
//! restricts the tiers; `VMC_DIFF_TIMEOUT=SECONDS` changes the per-run timeout (default 60);
//! `VMC_DIFF_JOBS=N` sets the parallelism; `VMRUN=PATH` picks the vmrun binary.

use std::time::{Duration, Instant};

use vmc_tests::*;

#[test]
fn differential_qemu_vs_vmrun() {
    let build = guest_build_dir();
    let mut cases = guest_cases(&build);
    if cases.is_empty() {
        say!(
            "differential: SKIPPED: no guest binaries in {} (run tests/guests/build.sh; tests/run.sh does it)",
            build.display()
        );
        return;
    }
    let Some(qemu) = find_in_path("qemu-aarch64") else {
        say!("differential: SKIPPED: qemu-aarch64 not found in PATH (apt-get install qemu-user)");
        return;
    };
    let Some(vmrun) = find_vmrun() else {
        say!("differential: SKIPPED: no vmrun binary (cargo build --release -p vmrun)");
        return;
    };
    retain_filtered(&mut cases);
    let tiers = tiers_from_env();
    let timeout = std::env::var("VMC_DIFF_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let jobs = std::env::var("VMC_DIFF_JOBS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
    let tier_names: Vec<&str> = tiers.iter().map(|t| t.name.as_str()).collect();
    say!(
        "differential: {} cases x {} tiers ({}), reference {}, tested {}, timeout {} s, {} jobs",
        cases.len(),
        tiers.len(),
        tier_names.join(", "),
        qemu.display(),
        vmrun.display(),
        timeout.as_secs(),
        jobs
    );

    let t0 = Instant::now();
    // The reference runs once per case; then every (case, tier) pair runs on its own, so the
    // slow tiers of one case spread over the workers.
    let references = parallel_map(&cases, jobs, |c| run_in_temp_dir(&qemu, &[], c, timeout));
    // Slowest tiers first (the optimizing compiles dominate), so that the short runs fill the
    // tail; the results are put back in case order below.
    let weight = |t: &TierRun| match t.name.as_str() {
        "opt" | "auto-eager" => 0,
        "auto" | "baseline" => 1,
        _ => 2,
    };
    let mut pairs: Vec<(usize, usize)> = (0..tiers.len())
        .flat_map(|t| (0..cases.len()).map(move |c| (c, t)))
        .collect();
    pairs.sort_by_key(|&(c, t)| (weight(&tiers[t]), t, c));
    let tested = parallel_map(&pairs, jobs, |&(c, t)| {
        run_in_temp_dir(&vmrun, &tiers[t].args, &cases[c], timeout)
    });
    let mut runs: Vec<((usize, usize), Outcome)> = pairs.into_iter().zip(tested).collect();
    runs.sort_by_key(|&((c, t), _)| (c, t));
    let results: Vec<CaseResult> = runs
        .into_iter()
        .map(|((c, t), tested)| {
            let differences = compare(&references[c], &tested);
            CaseResult {
                case: cases[c].clone(),
                tier: tiers[t].name.clone(),
                reference: references[c].clone(),
                tested,
                differences,
            }
        })
        .collect();

    let mut failures = Vec::new();
    for r in &results {
        let ok = r.differences.is_empty();
        say!(
            "  {} {:<52} qemu {:>6.2} s  vmrun {:>6.2} s  {}",
            if ok { "ok  " } else { "FAIL" },
            r.label(),
            r.reference.elapsed.as_secs_f64(),
            r.tested.elapsed.as_secs_f64(),
            r.tested.status
        );
        // A reference that cannot run at all means a broken setup, not a vmrun bug; still a failure.
        if !ok {
            failures.push(r);
        }
    }
    for t in &tiers {
        let of_tier: Vec<&CaseResult> = results.iter().filter(|r| r.tier == t.name).collect();
        let secs: f64 = of_tier.iter().map(|r| r.tested.elapsed.as_secs_f64()).sum();
        let failed = of_tier.iter().filter(|r| !r.differences.is_empty()).count();
        say!(
            "  tier {:<11} {:>3} of {:>3} passed, {:>7.1} s of vmrun time",
            t.name,
            of_tier.len() - failed,
            of_tier.len(),
            secs
        );
    }
    say!(
        "differential: {} of {} runs passed in {:.1} s",
        results.len() - failures.len(),
        results.len(),
        t0.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        let mut msg = format!(
            "{} of {} differential runs failed:\n",
            failures.len(),
            results.len()
        );
        for f in &failures {
            msg.push_str(&f.report());
        }
        panic!("{msg}");
    }
}

/// A code cache far smaller than the guests' hot code (`--code-cache-size 128K`, eager
/// tiers): translations are swept out a segment at a time, the recently entered ones moved
/// and kept, and every program still gives qemu's output; the statistics show both cold
/// translations evicted and hot ones kept.
#[test]
fn small_code_cache_matches_qemu() {
    let build = guest_build_dir();
    let mut cases: Vec<GuestCase> = guest_cases(&build)
        .into_iter()
        .filter(|c| {
            [
                "crc32-O2",
                "bytecode-O2",
                "sort_search-O2",
                "string_mem-O2",
                "smc-O2",
            ]
            .iter()
            .any(|p| c.label.starts_with(p))
        })
        .collect();
    let (Some(qemu), Some(vmrun)) = (find_in_path("qemu-aarch64"), find_vmrun()) else {
        say!("small code cache: SKIPPED: needs qemu-aarch64 and vmrun (tests/run.sh sets both up)");
        return;
    };
    if cases.is_empty() {
        say!(
            "small code cache: SKIPPED: no guest binaries in {}",
            build.display()
        );
        return;
    }
    retain_filtered(&mut cases);
    let eager = all_tiers()
        .into_iter()
        .find(|t| t.name == "auto-eager")
        .expect("the auto-eager tier")
        .args;
    let (mut evicted, mut kept) = (0, 0);
    let mut failures = String::new();
    for (i, c) in cases.iter().enumerate() {
        let json =
            std::env::temp_dir().join(format!("vmc-small-cache-{}-{i}.json", std::process::id()));
        let mut args = eager.clone();
        args.extend(["--code-cache-size", "128K", "--stats-json"].map(String::from));
        args.push(json.display().to_string());
        let reference = run_in_temp_dir(&qemu, &[], c, DEFAULT_TIMEOUT);
        let tested = run_in_temp_dir(&vmrun, &args, c, DEFAULT_TIMEOUT);
        let diff = compare(&reference, &tested);
        let stats: serde_json::Value = std::fs::read_to_string(&json)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&json);
        let jit = &stats["counters"]["jit"];
        let (e, k) = (
            jit["evictions"].as_u64().unwrap_or(0),
            jit["evictions_survived"].as_u64().unwrap_or(0),
        );
        say!(
            "  {} {:<40} evicted {e:>6} kept {k:>6}",
            if diff.is_empty() { "ok  " } else { "FAIL" },
            c.label
        );
        (evicted, kept) = (evicted + e, kept + k);
        if !diff.is_empty() {
            for d in &diff {
                failures.push_str(&format!("{}: {d}\n", c.label));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "small code cache runs differ from qemu:\n{failures}"
    );
    assert!(
        evicted > 0 && kept > 0,
        "a 128K code cache should both evict and keep translations (evicted {evicted}, kept {kept})"
    );
}
