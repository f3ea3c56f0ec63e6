//! Ahead-of-time translation end to end: every guest of tests/guests/build translated by
//! `vmc translate` (one batch call) and run as an image by `vmrun` gives the output and exit
//! status of `qemu-aarch64`; translation is deterministic whatever `-j`; the cache hits on
//! re-translation; every kind of bad image (unsigned, resealed, tampered, untrusted, truncated)
//! is refused with a one-line reason and no code run; a guest's execve never runs an image
//! (but the one it runs from) nor lets the guest's environment reach the host process.
//!
//! Images are signed with a key of the tests' own (`test_key_dir`), never the user's.
//!
//! Environment: `VMC_DIFF_FILTER=SUBSTRING` restricts the differential cases;
//! `VMC_AOT_CACHE=DIR` keeps translated images between runs (default: a fresh directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vmc_compiler::aot::image;
use vmc_compiler::aot::sign::SigningKey;
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
    let out = vmc_command(&t.vmc).args(args).output().expect("vmc runs");
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
        run_in_temp_dir(&t.vmrun, &trust_test_key(), &at(c), timeout)
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

/// Re-signs a modified image with the tests' key (to reach the checks after the signature).
fn reseal(img: &[u8]) -> Vec<u8> {
    let key = SigningKey::load(&test_key_dir()).expect("the tests' key (made by vmc translate)");
    image::seal(img[..img.len() - image::TRAILER].to_vec(), &key)
}

/// Re-seals a modified image as the previous format did, with the XXH3-128 digest anyone can
/// recompute: what an attacker who patched the code would do.
fn reseal_old_format(img: &[u8]) -> Vec<u8> {
    let mut out = img[..img.len() - image::TRAILER].to_vec();
    let digest = xxhash_rust::xxh3::xxh3_128(&out).to_le_bytes();
    out.extend_from_slice(&digest);
    out.extend_from_slice(b"VMCAOT02");
    out
}

/// Translates `bin` into `out` with the tests' key.
fn translate_to(t: &Tools, bin: &Path, out: &Path) {
    let (code, err) = vmc(
        t,
        &[
            "translate",
            "-q",
            bin.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// Runs `vmrun [opts] image args` with a clean environment (no key directory of the user's:
/// only what `opts` trusts).
fn vmrun_clean(t: &Tools, opts: &[String], image: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(&t.vmrun);
    cmd.env_clear().args(opts).arg(image).args(args);
    run_with_timeout(&mut cmd, Duration::from_secs(30))
}

/// Asserts that `o` is a refusal of `file`: exit 126, one line on stderr naming the file and
/// containing `reason`, no guest output.
fn assert_refused(o: &Outcome, file: &str, reason: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(o.status, Status::Exited(126), "{file}: {o:?}");
    assert_eq!(lines.len(), 1, "{file}: expected one line, got {err}");
    assert!(lines[0].contains(file), "{file}: {err}");
    assert!(
        lines[0].contains(reason),
        "{file}: expected {reason:?} in {err}"
    );
    assert!(o.stdout.is_empty(), "{file}: guest code ran");
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
    translate_to(&t, &bin, &good);
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
        vmrun_clean(&t, &trust_test_key(), &p, &["7"])
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
    // Patched code (the first bytes of the code section: an int3), resealed.
    let parsed = image::Image::parse(&img).unwrap();
    let mut patched = img.clone();
    patched[parsed.code_offset] = 0xcc;
    let other_key = SigningKey::from_seed([0x42; 32]);
    let resigned = image::seal(patched[..img.len() - image::TRAILER].to_vec(), &other_key);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "not an ELF"),
        (
            "truncated-trailer",
            img[..img.len() - 3].to_vec(),
            "truncated",
        ),
        ("truncated-half", img[..img.len() / 2].to_vec(), "truncated"),
        ("magic-only", image::MAGIC.to_vec(), "truncated"),
        ("bit-flip", flipped, "bad signature"),
        (
            "resealed-old-digest",
            reseal_old_format(&patched),
            "unsigned image",
        ),
        ("resigned-other-key", resigned, "untrusted key"),
        (
            "signature-only-flip",
            {
                let mut b = img.clone();
                let n = b.len();
                b[n - 20] ^= 0x10;
                b
            },
            "bad signature",
        ),
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
        assert_refused(&o, &format!("{name}.aot"), reason);
        // vmc inspect refuses a broken image (exit 1, one line); an intact one is shown,
        // marked as not runnable here (another compiler) or by this user (signature).
        let p = dir.path().join(format!("{name}.aot"));
        let out = vmc_command(&t.vmc).arg("inspect").arg(&p).output().unwrap();
        let (code, err) = (out.status.code(), String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        if name == "other-compiler" {
            assert_eq!(code, Some(0), "vmc inspect {name}: {err}");
            assert!(
                text.contains("runnable here   no: image built by"),
                "{text}"
            );
        } else if code == Some(0) {
            assert!(
                text.contains("NOT runnable by you: ") && text.contains(reason),
                "vmc inspect {name}: {text}"
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

/// An image runs only when signed by a key vmrun trusts: the user's own (key directory),
/// one listed in the key directory's trusted_keys file, or one given by `--trust-key` (hex
/// or file). An authentic image renamed runs as well: an image is a program, and its
/// signer vouches for all of it, the guest it embeds included.
#[test]
fn images_run_only_when_signed_by_a_trusted_key() {
    let Some(t) = tools("aot image trust") else {
        return;
    };
    let Some(bin) = guest("exit_code-O2") else {
        return;
    };
    let dir = TempDir::new("vmc-aot-trust").expect("temp dir");
    let good = dir.path().join("good.aot");
    translate_to(&t, &bin, &good);
    let ours = SigningKey::load(&test_key_dir()).unwrap().public();
    let exit7 = |o: &Outcome, what: &str| assert_eq!(o.status, Status::Exited(7), "{what}: {o:?}");
    // Nobody trusts the key: refused, naming its fingerprint.
    let o = vmrun_clean(&t, &[], &good, &["7"]);
    assert_refused(
        &o,
        "good.aot",
        &format!("untrusted key {}", ours.fingerprint()),
    );
    exit7(
        &vmrun_clean(&t, &trust_test_key(), &good, &["7"]),
        "--trust-key FILE",
    );
    let hex = vec!["--trust-key".to_string(), ours.hex()];
    exit7(&vmrun_clean(&t, &hex, &good, &["7"]), "--trust-key HEX");
    // The user's own key (VMC_KEY_DIR), and a trusted_keys file elsewhere.
    let mut cmd = Command::new(&t.vmrun);
    cmd.env_clear()
        .env("VMC_KEY_DIR", test_key_dir())
        .arg(&good)
        .arg("7");
    exit7(&run_with_timeout(&mut cmd, DEFAULT_TIMEOUT), "own key");
    let other_dir = dir.path().join("keys");
    std::fs::create_dir(&other_dir).unwrap();
    std::fs::write(
        other_dir.join("trusted_keys"),
        format!("# the tests' key\n{}\n", ours.hex()),
    )
    .unwrap();
    let mut cmd = Command::new(&t.vmrun);
    cmd.env_clear()
        .env("VMC_KEY_DIR", &other_dir)
        .arg(&good)
        .arg("7");
    exit7(&run_with_timeout(&mut cmd, DEFAULT_TIMEOUT), "trusted_keys");
    // A bad --trust-key is a usage error.
    let bad = vec!["--trust-key".to_string(), "/nonexistent/key".to_string()];
    let o = vmrun_clean(&t, &bad, &good, &["7"]);
    assert_eq!(o.status, Status::Exited(2), "{o:?}");
    // Signed by another key: refused until that key is trusted.
    let img = std::fs::read(&good).unwrap();
    let other = SigningKey::from_seed([0x24; 32]);
    let resigned = dir.path().join("resigned.aot");
    std::fs::write(
        &resigned,
        image::seal(img[..img.len() - image::TRAILER].to_vec(), &other),
    )
    .unwrap();
    let o = vmrun_clean(&t, &trust_test_key(), &resigned, &["7"]);
    assert_refused(&o, "resigned.aot", "untrusted key");
    let theirs = vec!["--trust-key".to_string(), other.public().hex()];
    exit7(
        &vmrun_clean(&t, &theirs, &resigned, &["7"]),
        "other key trusted",
    );
    // Renamed, an authentic image still runs its own embedded guest.
    let renamed = dir.path().join("some-other-program");
    std::fs::copy(&good, &renamed).unwrap();
    exit7(
        &vmrun_clean(&t, &trust_test_key(), &renamed, &["7"]),
        "renamed",
    );
}

/// A test guest: `exec PATH` execs PATH and prints the errno it gets; `reexec` re-executes
/// itself with a hostile environment; `show` prints its environment.
const EXEC_PROBE: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
        char *av[] = {argv[2], "7", NULL};
        char *ev[] = {"A=1", NULL};
        execve(argv[2], av, ev);
        printf("execve: errno %d (%s)\n", errno, strerror(errno));
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "reexec") == 0) {
        char preload[512];
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[2]);
        char *av[] = {argv[0], "show", NULL};
        char *ev[] = {preload, "RUST_LOG=trace", "VMC_KEY_DIR=/nonexistent", "NOEQUALS", "",
                      "X=a=b", NULL};
        execve("/proc/self/exe", av, ev);
        printf("execve failed: errno %d\n", errno);
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        for (char **e = environ; *e; e++) printf("env [%s]\n", *e);
        return 0;
    }
    return 2;
}
"#;

/// An x86-64 shared object whose constructor creates the file MARKER: it must never run.
const EVIL_SO: &str = r#"
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
}
"#;

/// Compiles `src` with `cc` and `flags` into `out`; false (and a notice) when it cannot.
fn compile(cc: &str, src: &str, flags: &[&str], out: &Path) -> bool {
    let Some(cc) = find_in_path(cc) else {
        say!("aot guest exec: SKIPPED: {cc} not found");
        return false;
    };
    let c = out.with_extension("c");
    std::fs::write(&c, src).unwrap();
    let o = run_with_timeout(
        Command::new(&cc).args(flags).arg("-o").arg(out).arg(&c),
        Duration::from_secs(120),
    );
    assert_eq!(o.status, Status::Exited(0), "{}: {o:?}", cc.display());
    true
}

/// A guest's execve runs guest programs only: an image file gets ENOEXEC (as under
/// qemu-aarch64, whose execve goes to the host kernel, which refuses a relocatable object),
/// and the environment the guest passes is the new guest's, exactly, while the new vmrun
/// process keeps the user's: the guest's LD_PRELOAD, RUST_LOG and VMC_* never act on it.
#[test]
fn guest_execve_runs_guest_programs_only() {
    let Some(t) = tools("aot guest exec") else {
        return;
    };
    let Some(bin) = guest("exit_code-O2") else {
        return;
    };
    let dir = TempDir::new("vmc-aot-exec").expect("temp dir");
    let probe = dir.path().join("exec_probe");
    if !compile(
        "aarch64-linux-gnu-gcc",
        EXEC_PROBE,
        &["-static", "-O1"],
        &probe,
    ) {
        return;
    }
    let image = dir.path().join("exit_code.aot");
    translate_to(&t, &bin, &image);
    // The image is executable and trusted: only the guest's execve stands in the way.
    let run = |emulator: &Path, opts: &[String], args: &[&str]| {
        let mut cmd = Command::new(emulator);
        cmd.env_clear()
            .args(opts)
            .arg(&probe)
            .args(args)
            .current_dir(dir.path());
        run_with_timeout(&mut cmd, DEFAULT_TIMEOUT)
    };
    let img = image.to_str().unwrap();
    let enoexec = format!("execve: errno {} (Exec format error)\n", libc::ENOEXEC);
    for opts in [vec![], trust_test_key()] {
        let o = run(&t.vmrun, &opts, &["exec", img]);
        assert_eq!(o.status, Status::Exited(0), "{o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), enoexec, "{o:?}");
    }
    let q = run(&t.qemu, &[], &["exec", img]);
    assert_eq!(String::from_utf8_lossy(&q.stdout), enoexec, "qemu: {q:?}");

    // The guest's environment for itself, not for the host.
    let marker = dir.path().join("evil-ran");
    let evil = dir.path().join("evil.so");
    let define = format!("-DMARKER=\"{}\"", marker.display());
    if !compile("gcc", EVIL_SO, &["-shared", "-fPIC", &define], &evil) {
        return;
    }
    let o = run(&t.vmrun, &[], &["reexec", evil.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status, Status::Exited(0), "{o:?}");
    assert_eq!(
        out,
        format!(
            "env [LD_PRELOAD={}]\nenv [RUST_LOG=trace]\nenv [VMC_KEY_DIR=/nonexistent]\n\
             env [NOEQUALS]\nenv []\nenv [X=a=b]\n",
            evil.display()
        ),
        "the guest's environment, exactly"
    );
    assert!(err.is_empty(), "the host vmrun logged: {err}");
    assert!(
        !marker.exists(),
        "the guest's LD_PRELOAD ran in the host vmrun"
    );
}
