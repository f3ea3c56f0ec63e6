//! Differential test: every guest of tests/guests/build (both -O0 and -O2) runs under
//! `qemu-aarch64` and under `vmrun` with the same arguments, environment and a fresh working
//! directory; stdout, stderr (without the emulators' own diagnostics) and the exit status
//! (signal number when killed) must be equal. All failures are reported together.
//!
//! Environment: `VMC_DIFF_FILTER=SUBSTRING` runs only cases whose label contains it;
//! `VMC_DIFF_TIMEOUT=SECONDS` changes the per-run timeout (default 60);
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
    if let Ok(filter) = std::env::var("VMC_DIFF_FILTER") {
        cases.retain(|c| c.label.contains(&filter));
    }
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
    say!(
        "differential: {} cases, reference {}, tested {}, timeout {} s, {} jobs",
        cases.len(),
        qemu.display(),
        vmrun.display(),
        timeout.as_secs(),
        jobs
    );

    let t0 = Instant::now();
    let results = parallel_map(&cases, jobs, |c| run_case(c, &qemu, &vmrun, timeout));
    let mut failures = Vec::new();
    for r in &results {
        let ok = r.differences.is_empty();
        say!(
            "  {} {:<40} qemu {:>7.2} s  vmrun {:>7.2} s  {}",
            if ok { "ok  " } else { "FAIL" },
            r.case.label,
            r.reference.elapsed.as_secs_f64(),
            r.tested.elapsed.as_secs_f64(),
            r.tested.status
        );
        // A reference that cannot run at all means a broken setup, not a vmrun bug; still a failure.
        if !ok {
            failures.push(r);
        }
    }
    say!(
        "differential: {} of {} cases passed in {:.1} s",
        results.len() - failures.len(),
        results.len(),
        t0.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        let mut msg = format!(
            "{} of {} differential cases failed:\n",
            failures.len(),
            results.len()
        );
        for f in &failures {
            msg.push_str(&f.report());
        }
        panic!("{msg}");
    }
}
