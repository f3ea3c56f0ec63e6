//! Real static programs from elsewhere: Debian's busybox-static for arm64 runs applets under
//! vmrun exactly as under qemu-aarch64 (stdout, stderr, exit status). tests/run.sh fetches the
//! package into tests/guests/build/busybox; without it the test prints why and passes.
//! Every applet runs once under qemu and under vmrun `--tier auto` and `--tier opt`.

use std::path::Path;

use vmc_tests::*;

/// Applet invocations: (label, argv after the busybox path). `{DATA}` is tests/guests/data.
const CASES: &[(&str, &[&str])] = &[
    ("echo", &["echo", "hello", "world", "-n", "x"]),
    ("seq", &["seq", "1", "10"]),
    ("seq-down", &["seq", "5", "-1", "1"]),
    ("seq-width", &["seq", "-w", "1", "7", "100"]),
    ("sort", &["sort", "{DATA}/words.txt"]),
    ("sort-rn", &["sort", "-rn", "{DATA}/numbers.txt"]),
    ("sort-key", &["sort", "-t", ":", "-k", "2", "-g", "{DATA}/words.txt"]),
    ("uniq", &["sh", "-c", "sort {DATA}/words.txt > s; cut -d' ' -f1 s > c; uniq -c c"]),
    ("wc", &["wc", "{DATA}/words.txt", "{DATA}/numbers.txt"]),
    ("md5sum", &["md5sum", "{DATA}/words.txt", "{DATA}/numbers.txt"]),
    ("sha256sum", &["sha256sum", "{DATA}/words.txt"]),
    ("sha1sum", &["sha1sum", "{DATA}/numbers.txt"]),
    ("expr", &["expr", "3", "+", "4", "*", "5"]),
    ("expr-len", &["expr", "length", "hello world"]),
    ("expr-false", &["expr", "0", "&", "1"]),
    ("printf", &["printf", "%05d|%-6s|%x|%o|%c|%.3f|%e\\n", "42", "abc", "255", "8", "Z", "3.14159", "12345.678"]),
    ("awk-math", &["awk", "BEGIN { for (i = 1; i <= 10; i++) s += i * i; printf \"%d %.6f %g %d\\n\", s, s / 3, s * 1e10, int(s / 7) }"]),
    ("awk-no-math", &["awk", "BEGIN { print sqrt(2) }"]),
    ("awk-fields", &["awk", "{ n += $2; w[$1]++ } END { print NR, n; for (k in w) c++; print c }", "{DATA}/words.txt"]),
    ("awk-printf", &["awk", "-F:", "{ s += $2 } END { printf \"%.3f %s\\n\", s, substr(\"abcdef\", 2, 3) }", "{DATA}/words.txt"]),
    ("sh-arith", &["sh", "-c", "x=5; y=$((x * 7 + 3)); echo $y; for i in 1 2 3; do echo i=$i; done; test 3 -gt 2 && echo yes"]),
    ("sh-exit", &["sh", "-c", "echo before; exit 7"]),
    ("sh-files", &["sh", "-c", "echo one > f; echo two >> f; cat f; [ -f f ] && echo exists; rm f; [ -f f ] || echo gone"]),
    ("false", &["false"]),
    ("basename", &["basename", "/usr/lib/x/file.tar.gz", ".gz"]),
    ("tr-cut", &["sh", "-c", "cut -d' ' -f3 {DATA}/words.txt > t; tr 'a-z:' 'A-Z ' < t > u; head -n 5 u; tail -n 2 u"]),
    ("unknown-applet", &["no-such-applet"]),
];

/// The applet runs of [`CASES`] with `busybox` as the program.
fn cases(busybox: &Path) -> Vec<GuestCase> {
    let data = workspace_root().join("tests/guests/data");
    CASES
        .iter()
        .map(|(label, args)| GuestCase {
            label: format!("busybox {label}"),
            binary: busybox.to_path_buf(),
            args: args
                .iter()
                .map(|a| a.replace("{DATA}", &data.to_string_lossy()))
                .collect(),
        })
        .collect()
}

#[test]
fn busybox_applets_match_qemu() {
    let busybox = guest_build_dir().join("busybox");
    if !busybox.exists() {
        say!(
            "busybox: SKIPPED: {} not present (tests/run.sh fetches busybox-static:arm64)",
            busybox.display()
        );
        return;
    }
    let Some(qemu) = find_in_path("qemu-aarch64") else {
        say!("busybox: SKIPPED: qemu-aarch64 not found");
        return;
    };
    let Some(vmrun) = find_vmrun() else {
        say!("busybox: SKIPPED: no vmrun binary");
        return;
    };
    let cases = cases(&busybox);
    let tiers: Vec<TierRun> = all_tiers()
        .into_iter()
        .filter(|t| t.name == "auto" || t.name == "opt")
        .collect();
    let results: Vec<CaseResult> = parallel_map(&cases, 2, |c| {
        run_case_tiers(c, &qemu, &vmrun, &tiers, DEFAULT_TIMEOUT)
    })
    .into_iter()
    .flatten()
    .collect();
    report_results(&results, "busybox");
}

/// The same applets run from an AOT image of busybox (translated by `vmc translate`; busybox
/// dispatches on argv[0], and its shell re-executes itself, so the image takes the binary's
/// place: references first on a copy of busybox, then the image under the same path).
#[test]
fn busybox_image_matches_qemu() {
    let busybox = guest_build_dir().join("busybox");
    let (Some(qemu), Some(vmrun), Some(vmc), true) = (
        find_in_path("qemu-aarch64"),
        find_vmrun(),
        find_vmc(),
        busybox.exists(),
    ) else {
        say!(
            "busybox image: SKIPPED: needs qemu-aarch64, vmrun, vmc and tests/guests/build/busybox"
        );
        return;
    };
    let dir = TempDir::new("vmc-bb-aot").expect("temp dir");
    let run = dir.path().join("busybox");
    std::fs::copy(&busybox, &run).expect("copy busybox");
    let cases = cases(&run);
    let references = parallel_map(&cases, 2, |c| {
        run_in_temp_dir(&qemu, &[], c, DEFAULT_TIMEOUT)
    });
    let image = dir.path().join("busybox.aot");
    let t0 = std::time::Instant::now();
    let out = vmc_command(&vmc)
        .args(["translate", "-q"])
        .arg(&busybox)
        .arg("-o")
        .arg(&image)
        .output()
        .expect("vmc runs");
    assert!(
        out.status.success(),
        "vmc translate busybox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    say!(
        "busybox image: translated in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    // Under a name of its own the image still runs as `busybox` (argv[0] names the guest
    // it was translated from), so applets are found.
    let own = std::process::Command::new(&vmrun)
        .args(trust_test_key())
        .arg(&image)
        .args(["echo", "applet", "found"])
        .output()
        .expect("vmrun runs");
    assert_eq!(
        String::from_utf8_lossy(&own.stdout),
        "applet found\n",
        "busybox.aot echo: {}",
        String::from_utf8_lossy(&own.stderr)
    );
    std::fs::rename(&image, &run).expect("image in place");
    let tested = parallel_map(&cases, 2, |c| {
        run_in_temp_dir(&vmrun, &trust_test_key(), c, DEFAULT_TIMEOUT)
    });
    let results: Vec<CaseResult> = cases
        .iter()
        .zip(references.iter().zip(tested))
        .map(|(c, (reference, tested))| CaseResult::new(c, "aot", reference, tested))
        .collect();
    report_results(&results, "busybox image");
}
