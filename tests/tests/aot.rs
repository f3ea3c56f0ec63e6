//! Ahead-of-time translation end to end: every guest of tests/guests/build translated by
//! `vmc translate` (one batch call) and run as an image by `vmrun` gives the output and exit
//! status of `qemu-aarch64`; translation is deterministic whatever `-j`; the cache hits on
//! re-translation; every kind of bad image is refused with a one-line reason and no code run.
//!
//! Environment: `VMC_DIFF_FILTER=SUBSTRING` restricts the differential cases;
//! `VMC_AOT_CACHE=DIR` keeps translated images between runs (default: a fresh directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vmc_compiler::aot::image;
use vmc_tests::*;

fn guest(name: &str) -> Option<PathBuf> {
    let p = guest_build_dir().join(name);
    if p.is_file() {
        Some(p)
    } else {
        say!(
            "aot: SKIPPED: {} missing (run tests/guests/build.sh)",
            p.display()
        );
        None
    }
}

/// Runs vmc with `args`; returns (exit code, stderr).
fn vmc(t: &Tools, args: &[&str]) -> (i32, String) {
    let out = Command::new(&t.vmc).args(args).output().expect("vmc runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn aot_images_match_qemu() {
    let Some(t) = tools("aot differential") else {
        return;
    };
    let mut cases = guest_cases(&guest_build_dir());
    retain_filtered(&mut cases);
    aot_differential(&t, &cases, &[], "AOT");
}

/// Images translated with return-address prediction (guest calls as host calls) on the
/// guests whose calls and returns do not pair up (longjmp, signal handlers, returns
/// elsewhere, recursion past the host stack budget, self-modifying code, fork) and a few
/// call-heavy ones.
#[test]
fn aot_images_with_return_prediction_match_qemu() {
    let Some(t) = tools("aot return prediction") else {
        return;
    };
    const GUESTS: [&str; 9] = [
        "calls",
        "setjmp_test",
        "signals",
        "sigsegv_handler",
        "smc",
        "fork_exec",
        "sort_bench",
        "bytecode",
        "string_mem",
    ];
    let mut cases = guest_cases(&guest_build_dir());
    cases.retain(|c| {
        let name = c.binary.file_name().unwrap().to_string_lossy();
        GUESTS.iter().any(|g| name.starts_with(&format!("{g}-")))
    });
    retain_filtered(&mut cases);
    aot_differential(
        &t,
        &cases,
        &["--return-prediction"],
        "AOT return-prediction",
    );
}

/// Translates the binaries of `cases` in one batch call (with `extra` options) and runs
/// each case as an image against `qemu-aarch64`.
fn aot_differential(t: &Tools, cases: &[GuestCase], extra: &[&str], label: &str) {
    if cases.is_empty() {
        say!("{label} differential: SKIPPED: no guest binaries (run tests/guests/build.sh)");
        return;
    }
    let out = TempDir::new("vmc-aot").expect("temp dir");
    let cache = std::env::var_os("VMC_AOT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.path().join("cache"));
    let mut binaries: Vec<&Path> = cases.iter().map(|c| c.binary.as_path()).collect();
    binaries.dedup();
    // One batch call for every binary, with a JSON summary.
    let summary = out.path().join("summary.json");
    let t0 = Instant::now();
    let mut args: Vec<String> = vec![
        "translate".into(),
        "-q".into(),
        "--out-dir".into(),
        out.path().display().to_string(),
        "--cache-dir".into(),
        cache.display().to_string(),
        "--summary-json".into(),
        summary.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(binaries.iter().map(|b| b.display().to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = vmc(t, &argv);
    assert_eq!(code, 0, "vmc translate of the guest corpus failed:\n{err}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary written")).unwrap();
    let inputs = s["inputs"].as_array().expect("inputs array");
    assert_eq!(inputs.len(), binaries.len());
    let insns: u64 = inputs
        .iter()
        .map(|i| i["guest_insns"].as_u64().unwrap())
        .sum();
    for i in inputs {
        assert_eq!(i["result"], "ok", "{i}");
        assert!(i["coverage"].as_f64().unwrap() > 0.5, "low coverage: {i}");
    }
    say!(
        "{label} differential: translated {} binaries ({} guest insns) in {:.1} s",
        binaries.len(),
        insns,
        t0.elapsed().as_secs_f64()
    );

    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let timeout = DEFAULT_TIMEOUT;
    // Guest and image run under the same path (argv[0], AT_EXECFN, /proc/self/exe and
    // re-exec all see it): the references run on a copy of the guest at run/NAME, then the
    // image replaces it there.
    let run_dir = out.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let at = |c: &GuestCase| GuestCase {
        label: c.label.clone(),
        binary: run_dir.join(c.binary.file_name().unwrap()),
        args: c.args.clone(),
    };
    for b in &binaries {
        std::fs::copy(b, run_dir.join(b.file_name().unwrap())).unwrap();
    }
    let references = parallel_map(cases, jobs, |c| {
        run_in_temp_dir(&t.qemu, &[], &at(c), timeout)
    });
    for b in &binaries {
        let name = b.file_name().unwrap();
        let image = out.path().join(format!("{}.aot", name.to_string_lossy()));
        std::fs::rename(&image, run_dir.join(name)).unwrap();
    }
    let tested = parallel_map(cases, jobs, |c| {
        run_in_temp_dir(&t.vmrun, &[], &at(c), timeout)
    });
    let results: Vec<CaseResult> = cases
        .iter()
        .zip(references.iter().zip(tested))
        .map(|(c, (reference, tested))| CaseResult::new(c, "aot", reference, tested))
        .collect();
    report_results(&results, label);
}

#[test]
fn aot_translation_is_deterministic_and_cached() {
    let Some(t) = tools("aot determinism") else {
        return;
    };
    // bytecode has switch jump tables and function pointers.
    let Some(bin) = guest("bytecode-O2") else {
        return;
    };
    let dir = TempDir::new("vmc-aot-det").expect("temp dir");
    let bin_s = bin.display().to_string();
    let mut images = Vec::new();
    for j in ["1", "2", "8"] {
        let out = dir.path().join(format!("j{j}.aot"));
        let (code, err) = vmc(
            &t,
            &[
                "translate",
                "-q",
                "-j",
                j,
                &bin_s,
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "vmc -j {j}: {err}");
        images.push((j, std::fs::read(&out).unwrap()));
    }
    for (j, img) in &images[1..] {
        assert!(img == &images[0].1, "image with -j {j} differs from -j 1");
    }
    // Cache: a miss, then a hit giving the same bytes.
    let cache = dir.path().join("cache");
    let mut times = Vec::new();
    for (n, expect) in [(1, "miss"), (2, "hit")] {
        let out = dir.path().join(format!("c{n}.aot"));
        let summary = dir.path().join(format!("c{n}.json"));
        let t0 = Instant::now();
        let (code, err) = vmc(
            &t,
            &[
                "translate",
                "-q",
                "--cache-dir",
                cache.to_str().unwrap(),
                "--summary-json",
                summary.to_str().unwrap(),
                &bin_s,
                "-o",
                out.to_str().unwrap(),
            ],
        );
        times.push(t0.elapsed());
        assert_eq!(code, 0, "{err}");
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        assert_eq!(s["inputs"][0]["cache"], expect, "translation {n}: {s}");
        assert!(
            std::fs::read(&out).unwrap() == images[0].1,
            "cached image differs"
        );
    }
    say!(
        "aot cache: first translation {:.2} s, cache hit {:.3} s",
        times[0].as_secs_f64(),
        times[1].as_secs_f64()
    );
}

/// Re-seals a modified image so that its digest is valid again (to reach the later checks).
fn reseal(img: &[u8]) -> Vec<u8> {
    image::seal(img[..img.len() - image::TRAILER].to_vec())
}

fn replace_once(hay: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = hay
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not in image", String::from_utf8_lossy(from)));
    hay[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn bad_images_are_refused() {
    let Some(t) = tools("aot bad images") else {
        return;
    };
    let Some(bin) = guest("exit_code-O2") else {
        return;
    };
    let dir = TempDir::new("vmc-aot-bad").expect("temp dir");
    let good = dir.path().join("good.aot");
    let (code, err) = vmc(
        &t,
        &[
            "translate",
            "-q",
            bin.to_str().unwrap(),
            "-o",
            good.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let img = std::fs::read(&good).unwrap();
    // vmc disasm shows a region's guest instructions beside its host code and names the
    // runtime entry points and helpers its code calls through the import table.
    let parsed = image::Image::parse(&img).expect("the good image parses");
    let biggest = parsed.map.regions.iter().max_by_key(|r| r.guest_insns);
    let pc = format!("{:#x}", biggest.expect("regions").pc);
    let out = Command::new(&t.vmc)
        .args(["disasm", good.to_str().unwrap(), "--pc", &pc])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("--- guest (AArch64) ---") && text.contains("--- host (x86-64)"),
        "{text}"
    );
    assert!(text.contains("; import vmc_rt_"), "{text}");
    // Every guest instruction of the region is listed (its ranges span many blocks).
    let listed = text
        .lines()
        .skip_while(|l| !l.starts_with("--- guest"))
        .take_while(|l| !l.starts_with("--- host"))
        .filter(|l| l.starts_with("  0x"))
        .count();
    assert_eq!(
        listed as u32,
        biggest.expect("regions").guest_insns,
        "{text}"
    );
    let run = |bytes: &[u8], name: &str| -> Outcome {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let mut cmd = Command::new(&t.vmrun);
        cmd.arg(&p).arg("7");
        run_with_timeout(&mut cmd, Duration::from_secs(30))
    };
    // The good image runs (exit_code exits with its argument).
    let ok = run(&img, "copy.aot");
    assert_eq!(ok.status, Status::Exited(7), "good image: {ok:?}");

    let guest_bytes = std::fs::read(&bin).unwrap();
    let mut other_guest = img.clone();
    // Change one byte of the embedded guest (its ELF identification padding), re-seal.
    replace_once(&mut other_guest, &guest_bytes[..16], &{
        let mut h = guest_bytes[..16].to_vec();
        h[15] ^= 0x5a;
        h
    });
    let mut other_compiler = img.clone();
    let version = image::compiler_version();
    let fake = "v".repeat(version.len());
    replace_once(&mut other_compiler, version.as_bytes(), fake.as_bytes());
    let mut other_format = img.clone();
    replace_once(
        &mut other_format,
        format!("\"format_version\": {}", image::FORMAT_VERSION).as_bytes(),
        format!("\"format_version\": {}", image::FORMAT_VERSION + 1).as_bytes(),
    );
    let mut flipped = img.clone();
    let mid = flipped.len() / 3;
    flipped[mid] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "not an ELF"),
        (
            "truncated-trailer",
            img[..img.len() - 3].to_vec(),
            "truncated",
        ),
        ("truncated-half", img[..img.len() / 2].to_vec(), "truncated"),
        ("magic-only", image::MAGIC.to_vec(), "truncated"),
        ("bit-flip", flipped, "tampered"),
        (
            "other-guest",
            reseal(&other_guest),
            "guest binary does not match",
        ),
        ("other-compiler", reseal(&other_compiler), "translate again"),
        ("other-format", reseal(&other_format), "format version"),
    ];
    for (name, bytes, reason) in cases {
        let o = run(&bytes, &format!("{name}.aot"));
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(o.status, Status::Exited(126), "{name}: {o:?}");
        assert_eq!(lines.len(), 1, "{name}: expected one line, got {err}");
        assert!(lines[0].contains(&format!("{name}.aot")), "{name}: {err}");
        assert!(
            lines[0].contains(reason),
            "{name}: expected {reason:?} in {err}"
        );
        assert!(o.stdout.is_empty(), "{name}: guest code ran");
        // vmc inspect refuses a broken image (exit 1, one line); an intact image of another
        // compiler is shown, marked as not runnable here.
        let p = dir.path().join(format!("{name}.aot"));
        let out = Command::new(&t.vmc)
            .arg("inspect")
            .arg(&p)
            .output()
            .unwrap();
        let (code, err) = (out.status.code(), String::from_utf8_lossy(&out.stderr));
        if name == "other-compiler" {
            assert_eq!(code, Some(0), "vmc inspect {name}: {err}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("runnable here   no: image built by"),
                "{text}"
            );
        } else {
            assert_eq!(code, Some(1), "vmc inspect {name}: {err}");
            assert_eq!(err.lines().count(), 1, "vmc inspect {name}: {err}");
        }
    }
    // A batch with a bad input translates the others and fails naming it.
    let (code, err) = vmc(
        &t,
        &[
            "translate",
            "-q",
            "--out-dir",
            dir.path().join("batch").to_str().unwrap(),
            bin.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("good.aot") && err.contains("1 of 2 inputs failed"),
        "{err}"
    );
    assert!(dir.path().join("batch/exit_code-O2.aot").is_file());
}
