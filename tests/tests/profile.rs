//! Profiles and profile-guided translation end to end:
//!
//! - guests recorded with `vmrun --profile-out` behave exactly as under qemu-aarch64, and the
//!   counts are the same whichever tier ran the code (interpreter, baseline, optimizing JIT:
//!   the instrumentation of translated code counts what the interpreter counts);
//! - `vmc translate --profile` (profiles matched to their guests by hash, several per guest
//!   merged) gives images whose output equals qemu's, with no more JIT fallbacks than plain
//!   images;
//! - `vmc profile merge/show` work, and bad profiles are refused with one line naming the file.
//!
//! Environment: `VMC_DIFF_FILTER=SUBSTRING` restricts the differential cases.

use std::path::{Path, PathBuf};

use vmc_profiles::Profile;
use vmc_tests::*;

/// Programs (built at -O2) of the PGO differential: calls, function pointers, switch tables,
/// signals, setjmp, fork/exec, self-modifying code, threads of the C library.
const PGO_PROGRAMS: &[&str] = &[
    "bytecode",
    "sort_search",
    "hash",
    "signals",
    "setjmp_test",
    "fork_exec",
    "smc",
    "malloc_stress",
    "string_mem",
    "fp_format",
    "sigsegv_handler",
    "simd_neon",
    "exit_code",
    "segv",
];

/// Runs a tool (vmc signing with the tests' key, vmrun trusting it); returns (exit code,
/// stdout, stderr).
fn run(prog: &Path, args: &[String]) -> (i32, String, String) {
    let out = vmc_command(prog).args(args).output().expect("tool runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Dispatcher entries into JIT code plus blocks interpreted (code an image lacked).
fn fallbacks(stats: &Path) -> u64 {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stats).expect("stats written")).expect("json");
    v["counters"]["jit"]["jit_entries"].as_u64().unwrap_or(0)
        + v["counters"]["blocks_executed"].as_u64().unwrap_or(0)
}

#[test]
fn profiled_runs_and_pgo_images_match_qemu() {
    let Some(t) = tools("pgo differential") else {
        return;
    };
    let mut cases: Vec<GuestCase> = guest_cases(&guest_build_dir())
        .into_iter()
        .filter(|c| {
            let file = c.binary.file_name().unwrap().to_string_lossy().to_string();
            PGO_PROGRAMS.iter().any(|p| file == format!("{p}-O2"))
        })
        .collect();
    retain_filtered(&mut cases);
    if cases.is_empty() {
        say!("pgo differential: SKIPPED: no guest binaries (run tests/guests/build.sh)");
        return;
    }
    let dir = TempDir::new("vmc-pgo").expect("temp dir");
    // Guests run under one path (they may re-exec themselves): run/NAME holds the guest,
    // then its image.
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut binaries: Vec<PathBuf> = cases.iter().map(|c| c.binary.clone()).collect();
    binaries.dedup();
    for b in &binaries {
        std::fs::copy(b, run_dir.join(b.file_name().unwrap())).unwrap();
    }
    let at = |c: &GuestCase| GuestCase {
        label: c.label.clone(),
        binary: run_dir.join(c.binary.file_name().unwrap()),
        args: c.args.clone(),
    };
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let profile_of = |i: usize| dir.path().join(format!("case{i}.prof"));
    let indexed: Vec<(usize, &GuestCase)> = cases.iter().enumerate().collect();
    let references = parallel_map(&indexed, jobs, |(_, c)| {
        run_in_temp_dir(&t.qemu, &[], &at(c), DEFAULT_TIMEOUT)
    });
    // 1. Profiled runs (auto tiers, instrumented) behave like qemu.
    let profiled = parallel_map(&indexed, jobs, |(i, c)| {
        let args = vec!["--profile-out".into(), profile_of(*i).display().to_string()];
        run_in_temp_dir(&t.vmrun, &args, &at(c), DEFAULT_TIMEOUT)
    });
    let results: Vec<CaseResult> = cases
        .iter()
        .zip(references.iter().zip(profiled))
        .map(|(c, (reference, tested))| CaseResult::new(c, "profile", reference, tested))
        .collect();
    report_results(&results, "profiled");

    // 2. One batch translation, each guest with the profiles of all its runs; plain images
    // of the same guests for comparison.
    let mut args = strings(&["translate", "-q", "--out-dir"]);
    args.push(dir.path().join("pgo").display().to_string());
    for i in 0..cases.len() {
        if profile_of(i).exists() {
            args.push("--profile".into());
            args.push(profile_of(i).display().to_string());
        }
    }
    args.extend(binaries.iter().map(|b| b.display().to_string()));
    let (code, _, err) = run(&t.vmc, &args);
    assert_eq!(code, 0, "vmc translate --profile failed:\n{err}");
    let mut args = strings(&["translate", "-q", "--out-dir"]);
    args.push(dir.path().join("plain").display().to_string());
    args.extend(binaries.iter().map(|b| b.display().to_string()));
    let (code, _, err) = run(&t.vmc, &args);
    assert_eq!(code, 0, "vmc translate failed:\n{err}");

    // 3. Guided images behave like qemu, with no more JIT fallbacks than plain ones.
    let mut results = Vec::new();
    let mut fallback_report = Vec::new();
    for kind in ["plain", "pgo"] {
        for b in &binaries {
            let name = b.file_name().unwrap().to_string_lossy().to_string();
            let image = dir.path().join(kind).join(format!("{name}.aot"));
            std::fs::copy(&image, run_dir.join(&name)).unwrap();
        }
        let tested = parallel_map(&indexed, jobs, |(i, c)| {
            let stats = dir.path().join(format!("{kind}{i}.json"));
            let mut args = vec!["--stats-json".into(), stats.display().to_string()];
            args.extend(trust_test_key());
            run_in_temp_dir(&t.vmrun, &args, &at(c), DEFAULT_TIMEOUT)
        });
        if kind == "pgo" {
            results = cases
                .iter()
                .zip(references.iter().zip(tested))
                .map(|(c, (reference, tested))| CaseResult::new(c, "aot+pgo", reference, tested))
                .collect();
        }
    }
    report_results(&results, "AOT+PGO");
    for (i, c) in cases.iter().enumerate() {
        let (plain, pgo) = (
            dir.path().join(format!("plain{i}.json")),
            dir.path().join(format!("pgo{i}.json")),
        );
        // A guest killed by a signal or replaced by exec writes no statistics.
        if !plain.exists() || !pgo.exists() {
            continue;
        }
        let (a, b) = (fallbacks(&plain), fallbacks(&pgo));
        fallback_report.push(format!("{}: {a} -> {b}", c.label));
        // Self-modifying code reaches the JIT whatever the image holds.
        if !c.label.starts_with("smc") {
            assert!(
                b <= a,
                "{}: the guided image fell back to the JIT {b} times, the plain one {a}",
                c.label
            );
        }
    }
    say!(
        "pgo: JIT fallbacks plain -> guided: {}",
        fallback_report.join(", ")
    );
}

/// Records `binary args` under `tier` into `out`.
fn record(t: &Tools, tier: &str, out: &Path, binary: &Path, args: &[&str]) {
    let mut a = strings(&["--tier", tier, "--profile-out"]);
    a.push(out.display().to_string());
    a.push(binary.display().to_string());
    a.extend(strings(args));
    let (code, _, err) = run(&t.vmrun, &a);
    assert_eq!(code, 0, "vmrun {a:?} failed:\n{err}");
}

#[test]
fn counts_are_the_same_in_every_tier() {
    let Some(t) = tools("profile tiers") else {
        return;
    };
    let dir = TempDir::new("vmc-prof-tiers").expect("temp dir");
    for (name, args) in [
        ("bytecode-O2", &["200"][..]),
        ("sort_search-O2", &[][..]),
        ("signals-O2", &[][..]),
        ("hash-O0", &["4096"][..]),
    ] {
        let bin = guest_build_dir().join(name);
        if !bin.is_file() {
            say!("profile tiers: SKIPPED: {} missing", bin.display());
            return;
        }
        let mut profiles = Vec::new();
        for tier in ["interp", "baseline", "opt"] {
            let out = dir.path().join(format!("{name}-{tier}.prof"));
            record(&t, tier, &out, &bin, args);
            profiles.push((tier, Profile::read(&out).expect("profile readable")));
        }
        let (_, reference) = &profiles[0];
        assert!(!reference.blocks.is_empty() && !reference.calls.is_empty());
        assert!(!reference.indirect.is_empty(), "{name}: no indirect sites");
        assert_eq!(
            reference.guest_sha256,
            vmc_profiles::sha256(&std::fs::read(&bin).unwrap())
        );
        for (tier, p) in &profiles[1..] {
            for (what, same) in [
                ("block counts", p.blocks == reference.blocks),
                ("edges", p.edges == reference.edges),
                ("indirect targets", p.indirect == reference.indirect),
                ("call counts", p.calls == reference.calls),
            ] {
                if !same {
                    let diff: Vec<String> = reference
                        .blocks
                        .iter()
                        .filter(|(k, v)| p.blocks.get(k) != Some(v))
                        .take(5)
                        .map(|(k, v)| {
                            format!(
                                "{:#x}+{}: interp {v:?}, {tier} {:?}",
                                k.pc,
                                k.insns,
                                p.blocks.get(k)
                            )
                        })
                        .collect();
                    panic!("{name}: {what} under {tier} differ from the interpreter's: {diff:#?}");
                }
            }
        }
        say!(
            "profile tiers: {name}: {} blocks, {} edges, {} indirect sites identical in interp, baseline and opt",
            reference.blocks.len(),
            reference.edges.len(),
            reference.indirect.len()
        );
    }
}

#[test]
fn profile_tools_and_bad_profiles() {
    let Some(t) = tools("profile tools") else {
        return;
    };
    let bin = guest_build_dir().join("sort_search-O2");
    let other = guest_build_dir().join("hash-O2");
    if !bin.is_file() || !other.is_file() {
        say!("profile tools: SKIPPED: guests missing (run tests/guests/build.sh)");
        return;
    }
    let dir = TempDir::new("vmc-prof-tools").expect("temp dir");
    let p = |n: &str| dir.path().join(n).display().to_string();
    record(&t, "auto", Path::new(&p("a.prof")), &bin, &[]);
    record(&t, "interp", Path::new(&p("b.prof")), &bin, &[]);
    record(&t, "auto", Path::new(&p("other.prof")), &other, &["4096"]);

    // Merge adds the counts up.
    let (code, _, err) = run(
        &t.vmc,
        &strings(&[
            "profile",
            "merge",
            &p("a.prof"),
            &p("b.prof"),
            "-o",
            &p("m.prof"),
        ]),
    );
    assert_eq!(code, 0, "{err}");
    let (a, m) = (
        Profile::read(Path::new(&p("a.prof"))).unwrap(),
        Profile::read(Path::new(&p("m.prof"))).unwrap(),
    );
    assert_eq!(m.runs, 2);
    let (k, c) = a.blocks.iter().next().unwrap();
    assert_eq!(
        m.blocks[k].count,
        2 * c.count,
        "merged count of {:#x}",
        k.pc
    );

    // Show: text and JSON.
    let (code, out, err) = run(&t.vmc, &strings(&["profile", "show", &p("m.prof")]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("hot blocks") && out.contains("hot functions"),
        "{out}"
    );
    let (code, out, _) = run(
        &t.vmc,
        &strings(&["profile", "show", "--json", &p("m.prof")]),
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("show --json is JSON");
    assert_eq!(v["runs"], 2);

    // A profile of an image is the profile of its guest.
    let image = p("sort.aot");
    let (code, _, err) = run(
        &t.vmc,
        &strings(&["translate", "-q", &bin.display().to_string(), "-o", &image]),
    );
    assert_eq!(code, 0, "{err}");
    record(
        &t,
        "auto",
        Path::new(&p("img.prof")),
        Path::new(&image),
        &[],
    );
    let img = Profile::read(Path::new(&p("img.prof"))).unwrap();
    assert_eq!(img.guest_sha256, a.guest_sha256);
    // (Counts differ a little: the guest sees another path in argv[0].)
    assert!(img.blocks.len() * 10 >= a.blocks.len() * 9);

    // Bad profiles: one line naming the file, exit status 1, no image written.
    let good = std::fs::read(p("a.prof")).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let mut version = good.clone();
    version[8] = 99;
    for (name, bytes, why) in [
        (
            "truncated.prof",
            good[..good.len() - 7].to_vec(),
            "checksum",
        ),
        ("flipped.prof", flipped, "checksum"),
        ("version.prof", version, "version"),
        (
            "text.prof",
            b"hello, this is not a profile but a text file long enough to have a header\n".to_vec(),
            "not a vmc profile",
        ),
        ("empty.prof", Vec::new(), "truncated"),
    ] {
        std::fs::write(p(name), bytes).unwrap();
        for args in [
            vec!["profile", "show", &p(name)],
            vec![
                "translate",
                "-q",
                "--profile",
                &p(name),
                &bin.to_str().unwrap(),
                "-o",
                &p("bad.aot"),
            ],
        ] {
            let args: Vec<String> = strings(&args);
            let (code, _, err) = run(&t.vmc, &args);
            assert_eq!(code, 1, "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.contains(&p(name)) && err.to_lowercase().contains(why),
                "{name}: {err}"
            );
        }
        assert!(
            !Path::new(&p("bad.aot")).exists(),
            "{name}: an image was written"
        );
    }
    // Another program's profile.
    let (code, _, err) = run(
        &t.vmc,
        &strings(&[
            "translate",
            "-q",
            "--profile",
            &p("other.prof"),
            bin.to_str().unwrap(),
            "-o",
            &p("bad.aot"),
        ]),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("other.prof") && err.contains("sha256"),
        "{err}"
    );
    assert!(!Path::new(&p("bad.aot")).exists());
    let (code, _, err) = run(
        &t.vmc,
        &strings(&[
            "profile",
            "merge",
            &p("a.prof"),
            &p("other.prof"),
            "-o",
            &p("x.prof"),
        ]),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("other.prof"), "{err}");
    say!("profile tools: merge, show, image profiles and 6 kinds of bad profile ok");
}
