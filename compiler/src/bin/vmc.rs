//! `vmc`: the ahead-of-time compiler. Translates whole AArch64 Linux binaries into host
//! x86-64 images that `vmrun IMAGE` runs, and inspects them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use object::{Object, ObjectSection, ObjectSymbol};
use vmc_compiler::aot::cache::{self, Cache};
use vmc_compiler::aot::discover::discover;
use vmc_compiler::aot::image::{self, Image};
use vmc_compiler::aot::sign::{self, SigningKey, TrustedKeys};
use vmc_compiler::aot::translate::{self, Options};
use vmc_compiler::ir::Op;
use vmc_profiles::Profile;

/// Exit status when some input could not be translated (or an image is refused).
const EXIT_FAILED: u8 = 1;
/// Exit status for usage errors.
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "vmc",
    version,
    about = "Ahead-of-time translation of AArch64 Linux binaries into x86-64 images for vmrun",
    after_help = "Exit status: 0 on success; 1 when any input failed (each failure is named on \
                  stderr); 2 for usage errors.\nLogging: RUST_LOG=info (or debug) on stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Translate programs into AOT images (run them with `vmrun IMAGE`).
    Translate(TranslateArgs),
    /// Print an image's metadata and coverage.
    Inspect {
        /// The image.
        image: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Merge and summarize execution profiles (from `vmrun --profile-out`).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Show the public key that signs your images (created on first use), export it, or
    /// show where the keys are.
    Key {
        /// Write the public key to FILE (give it to `vmrun --trust-key FILE` elsewhere, or
        /// add its line to a trusted_keys file).
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// Print the key directory and exit.
        #[arg(long)]
        path: bool,
    },
    /// Show the guest instructions of a region beside its host code.
    Disasm {
        /// The image.
        image: PathBuf,
        /// A guest address inside the region to show (hex with 0x, or decimal).
        #[arg(long, value_parser = parse_addr)]
        pc: u64,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileCommand {
    /// Merge profiles of the same program (counts add up) into one.
    Merge {
        /// The profiles.
        #[arg(required = true, value_name = "PROFILE")]
        inputs: Vec<PathBuf>,
        /// The merged profile.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Summarize a profile: hottest blocks and functions, coverage.
    Show {
        /// The profile.
        profile: PathBuf,
        /// Rows in each table.
        #[arg(long, value_name = "N", default_value_t = 15)]
        top: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
struct TranslateArgs {
    /// AArch64 static Linux executables to translate.
    #[arg(required = true, value_name = "PROGRAM")]
    inputs: Vec<PathBuf>,
    /// Output image (one input only; default PROGRAM.aot).
    #[arg(short, long, value_name = "IMAGE")]
    output: Option<PathBuf>,
    /// Directory for the images of many inputs (each named after its input, plus .aot).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(short, long, value_name = "N", default_value_t = 0)]
    jobs: usize,
    /// Content-addressed cache: an unchanged input translated again is copied from here.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Write a JSON summary (per input: hash, time, instructions, coverage, result).
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No progress bar and no per-input report.
    #[arg(short, long)]
    quiet: bool,
    /// Guide translation with a profile from `vmrun --profile-out` (repeatable: each input
    /// uses the profiles recorded from it, merged; a profile that matches no input is an
    /// error).
    #[arg(long, value_name = "FILE")]
    profile: Vec<PathBuf>,
    /// Return-address prediction: guest calls become host calls of the callee's code and
    /// their returns host returns (predicted by the CPU's return stack). Off by default:
    /// measured no faster here (README).
    #[arg(long)]
    return_prediction: bool,
}

fn parse_addr(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not an address: {s}"))
}

fn main() -> ExitCode {
    // Like any filter-friendly CLI tool: end quietly when the reader of stdout goes away
    // (`vmc disasm ... | head`) instead of failing to print.
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Translate(a) => return translate_all(&a),
        Command::Inspect { image, json } => inspect(&image, json),
        Command::Disasm { image, pc } => disasm(&image, pc),
        Command::Key { export, path } => key(export.as_deref(), path),
        Command::Profile(ProfileCommand::Merge { inputs, output }) => merge(&inputs, &output),
        Command::Profile(ProfileCommand::Show { profile, top, json }) => show(&profile, top, json),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmc: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The summary of one input.
#[derive(serde::Serialize)]
struct Summary {
    input: String,
    output: Option<String>,
    sha256: Option<String>,
    result: String,
    cache: &'static str,
    time_s: f64,
    guest_insns: u64,
    exec_bytes: u64,
    coverage: f64,
    regions: u64,
    host_code_bytes: u64,
    image_bytes: u64,
}

fn translate_all(a: &TranslateArgs) -> ExitCode {
    if a.output.is_some() && (a.inputs.len() > 1 || a.out_dir.is_some()) {
        eprintln!("vmc: -o takes one input and no --out-dir (use --out-dir for many inputs)");
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(dir) = &a.out_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("vmc: {}: cannot create: {e}", dir.display());
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let cache = match a.cache_dir.as_deref().map(Cache::open).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vmc: cache directory: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut profiles = Vec::new();
    for path in &a.profile {
        match Profile::read(path) {
            Ok(p) => profiles.push((path, p)),
            Err(e) => {
                eprintln!("vmc: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    // Every profile must belong to an input: check before translating anything.
    if !profiles.is_empty() {
        let digests: Vec<(String, [u8; 32])> = a
            .inputs
            .iter()
            .filter_map(|i| {
                Some((
                    i.display().to_string(),
                    vmc_profiles::sha256(&std::fs::read(i).ok()?),
                ))
            })
            .collect();
        for (path, p) in &profiles {
            if digests.iter().any(|(_, d)| *d == p.guest_sha256) {
                continue;
            }
            let theirs = vmc_profiles::hex(&p.guest_sha256);
            match digests.as_slice() {
                [(name, d)] => eprintln!(
                    "vmc: {}: profile is for guest binary sha256 {theirs}, not {name} (sha256 {})",
                    path.display(),
                    vmc_profiles::hex(d)
                ),
                _ => eprintln!(
                    "vmc: {}: profile of guest binary sha256 {theirs} matches no input",
                    path.display()
                ),
            }
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let signing_key = match SigningKey::for_user() {
        Ok(k) => std::sync::Arc::new(k),
        Err(e) => {
            eprintln!("vmc: signing key: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let opts = Options {
        jobs: a.jobs,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        profile: None,
        return_prediction: a.return_prediction,
        key: Some(signing_key),
    };
    let mut summaries = Vec::new();
    let mut failed = 0;
    for input in &a.inputs {
        let output = match (&a.output, &a.out_dir) {
            (Some(o), _) => o.clone(),
            (None, Some(dir)) => dir.join(format!(
                "{}.aot",
                input.file_name().unwrap_or_default().to_string_lossy()
            )),
            (None, None) => PathBuf::from(format!("{}.aot", input.display())),
        };
        let s = translate_one(input, &output, &opts, &profiles, cache.as_ref(), a.quiet);
        if s.result != "ok" {
            eprintln!("vmc: {}: {}", input.display(), s.result);
            failed += 1;
        }
        summaries.push(s);
    }
    if let Some(path) = &a.summary_json {
        let v = serde_json::json!({
            "compiler": image::compiler_version(),
            "inputs": summaries,
            "failed": failed,
        });
        let text = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("vmc: {}: cannot write summary: {e}", path.display());
            return ExitCode::from(EXIT_FAILED);
        }
    }
    if failed > 0 {
        if a.inputs.len() > 1 {
            eprintln!("vmc: {failed} of {} inputs failed", a.inputs.len());
        }
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

fn translate_one(
    input: &Path,
    output: &Path,
    opts: &Options,
    profiles: &[(&PathBuf, Profile)],
    cache: Option<&Cache>,
    quiet: bool,
) -> Summary {
    let t0 = Instant::now();
    let mut s = Summary {
        input: input.display().to_string(),
        output: None,
        sha256: None,
        result: "ok".into(),
        cache: if cache.is_some() { "miss" } else { "off" },
        time_s: 0.0,
        guest_insns: 0,
        exec_bytes: 0,
        coverage: 0.0,
        regions: 0,
        host_code_bytes: 0,
        image_bytes: 0,
    };
    let guest = match std::fs::read(input) {
        Ok(g) => g,
        Err(e) => {
            s.result = format!("cannot read: {e}");
            return s;
        }
    };
    let digest = vmc_profiles::sha256(&guest);
    s.sha256 = Some(vmc_profiles::hex(&digest));
    // The profiles recorded from this input, merged.
    let mut guide: Option<Profile> = None;
    for (_, p) in profiles.iter().filter(|(_, p)| p.guest_sha256 == digest) {
        match &mut guide {
            Some(g) => {
                if let Err(e) = g.merge(p) {
                    s.result = format!("profile: {e}");
                    return s;
                }
            }
            None => guide = Some(p.clone()),
        }
    }
    let mut options_key = guide.as_ref().map_or(String::new(), |p| {
        format!("profile:{}", vmc_profiles::hex(&p.digest()))
    });
    if opts.return_prediction {
        options_key.push_str(" return-prediction");
    }
    let opts = &Options {
        profile: guide.map(std::sync::Arc::new),
        ..opts.clone()
    };
    let key = cache::key(&guest, &options_key);
    let signer = opts.key.as_ref().map(|k| k.public());
    let cached = cache
        .zip(signer)
        .and_then(|(c, signer)| c.get(&key, &signer));
    let (bytes, meta) = match cached {
        Some(hit) => {
            s.cache = "hit";
            hit
        }
        None => {
            let name = input.file_name().unwrap_or_default().to_string_lossy();
            match translate::translate(&guest, &name, opts) {
                Ok(out) => {
                    if !out.failed_regions.is_empty() {
                        log::warn!(
                            "{}: {} regions left to the JIT (Cranelift refused them)",
                            input.display(),
                            out.failed_regions.len()
                        );
                    }
                    if let Some(c) = cache {
                        if let Err(e) = c.put(&key, &out.image) {
                            log::warn!("cache: cannot store {key}: {e}");
                        }
                    }
                    (out.image, out.meta)
                }
                Err(e) => {
                    s.result = e.to_string();
                    return s;
                }
            }
        }
    };
    let written = write_image(output, &bytes);
    if let Err(e) = written {
        s.result = format!("cannot write {}: {e}", output.display());
        return s;
    }
    // Fill the summary from the image's own metadata (same for hits and misses).
    let st = &meta.stats;
    s.guest_insns = st.guest_insns;
    s.exec_bytes = st.exec_bytes;
    s.coverage = st.coverage;
    s.regions = st.regions;
    s.host_code_bytes = st.host_code_bytes;
    s.output = Some(output.display().to_string());
    s.image_bytes = bytes.len() as u64;
    s.time_s = t0.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "vmc: {} -> {}: {} guest insns ({:.1}% of {} code bytes) in {} regions, {} host code bytes, {:.2} s{}",
            input.display(),
            output.display(),
            s.guest_insns,
            100.0 * s.coverage,
            s.exec_bytes,
            s.regions,
            s.host_code_bytes,
            s.time_s,
            if s.cache == "hit" { " (cache hit)" } else { "" }
        );
    }
    s
}

fn merge(inputs: &[PathBuf], output: &Path) -> Result<()> {
    let mut merged: Option<Profile> = None;
    for path in inputs {
        let p = Profile::read(path).map_err(|e| anyhow!("{e}"))?;
        match &mut merged {
            Some(m) => m
                .merge(&p)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?,
            None => merged = Some(p),
        }
    }
    let Some(m) = merged else {
        bail!("no profiles given");
    };
    m.write(output).map_err(|e| anyhow!("{e}"))?;
    eprintln!(
        "vmc: merged {} profiles ({} runs, {} blocks) into {}",
        inputs.len(),
        m.runs,
        m.blocks.len(),
        output.display()
    );
    Ok(())
}

fn show(path: &Path, top: usize, json: bool) -> Result<()> {
    let p = Profile::read(path).map_err(|e| anyhow!("{e}"))?;
    let summary = p.summary(top);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}

fn read_image(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// Parses an image once (structure, not the signature: nothing of it runs here); errors name
/// the file.
fn parse_image<'a>(path: &Path, bytes: &'a [u8]) -> Result<Image<'a>> {
    Image::parse(bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn inspect(path: &Path, json: bool) -> Result<()> {
    let bytes = read_image(path)?;
    let img = parse_image(path, &bytes)?;
    let compatible = img.check_compatible();
    let signer = img.id.signer.fingerprint();
    // Whether this user's vmrun would run it (its own key, trusted_keys; not --trust-key).
    let trust = TrustedKeys::for_user()
        .map_err(|e| e.to_string())
        .and_then(|t| Image::verify(&bytes, &t).map_err(|e| e.to_string()));
    if json {
        let v = serde_json::json!({
            "meta": img.meta,
            "regions": img.map.regions.iter().filter(|r| r.guest_insns > 0).count(),
            "entries": img.map.regions.len(),
            "slots": img.map.slots.len(),
            "image_bytes": bytes.len(),
            "runnable_here": compatible.is_ok(),
            "refused_because": compatible.as_ref().err().map(|e| e.to_string()),
            "signer": img.id.signer.hex(),
            "signer_fingerprint": signer,
            "trusted": trust.is_ok(),
            "untrusted_because": trust.as_ref().err(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let m = &img.meta;
    let st = &m.stats;
    println!("image           {} ({} bytes)", path.display(), bytes.len());
    println!("format          version {}", m.format_version);
    println!("compiler        {}", m.compiler_version);
    match &trust {
        Ok(_) => println!("signed by       {signer} (trusted by you)"),
        Err(e) => println!("signed by       {signer} (NOT runnable by you: {e})"),
    }
    println!(
        "guest           {} ({} bytes, embedded)",
        m.guest_name, m.guest_size
    );
    println!("guest sha256    {}", m.guest_sha256);
    println!("guest ISA       {}", m.guest_isa);
    println!(
        "host            {} [{}]",
        m.host_isa,
        m.host_features.join(" ")
    );
    println!(
        "CpuState ABI    {} (context {} bytes)",
        m.cpu_state_abi, m.jit_context_size
    );
    println!("entry / bias    {:#x} / {:#x}", m.entry, m.bias);
    println!(
        "coverage        {} guest insns of {} executable bytes ({:.1}%)",
        st.guest_insns,
        st.exec_bytes,
        100.0 * st.coverage
    );
    println!(
        "code            {} regions ({} more entries), {} blocks, {} functions ({} never return), {} jump tables, {} chain slots",
        st.regions, st.entries, st.blocks, st.functions, st.noreturn, st.jump_tables, st.slots
    );
    println!(
        "host code       {} bytes at file offset {:#x}, no relocations; {} imports ({} runtime entry points, {} helpers)",
        st.host_code_bytes,
        img.code_offset,
        img.map.imports.len(),
        image::CALLEES.len(),
        img.map.imports.len().saturating_sub(image::CALLEES.len())
    );
    if m.return_prediction {
        println!("calls           host calls (return-address prediction)");
    }
    if let Some(p) = &m.profile_sha256 {
        println!("profile sha256  {p}");
        println!(
            "profile-guided  {} entries added from the profile, {} blocks duplicated into hot regions",
            st.profile_entries, st.duplicated_blocks
        );
    }
    match compatible {
        Ok(()) => println!("runnable here   yes"),
        Err(e) => println!("runnable here   no: {e}"),
    }
    Ok(())
}

/// `vmc key`: the user's public key (creating the key pair on first use), exported to a
/// file, or the key directory.
fn key(export: Option<&Path>, path: bool) -> Result<()> {
    let dir = sign::key_dir()?;
    if path {
        println!("{}", dir.display());
        return Ok(());
    }
    let public = SigningKey::load_or_create(&dir)?.public();
    if let Some(file) = export {
        sign::write_public(&public, file)?;
        eprintln!(
            "vmc: public key {} written to {}",
            public.fingerprint(),
            file.display()
        );
        return Ok(());
    }
    println!("{}", public.hex());
    println!("fingerprint {}", public.fingerprint());
    println!("key directory {}", dir.display());
    Ok(())
}

/// Writes an image as a linker writes its output: to a new file renamed over `output`, so a
/// `vmrun` still running the old image (its code is mapped from the file) keeps it intact,
/// and nobody sees a half-written image. Images are programs: executable (vmrun runs them,
/// and guests that re-exec themselves need the permission).
fn write_image(output: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    let tmp = output.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, output));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn disasm(path: &Path, pc: u64) -> Result<()> {
    let bytes = read_image(path)?;
    let img = parse_image(path, &bytes)?;
    let region = img
        .map
        .regions
        .iter()
        // A secondary entry has no instructions or ranges of its own: show its region.
        .find(|r| r.guest_insns > 0 && r.ranges.iter().any(|&(s, e)| (s..e).contains(&pc)))
        .ok_or_else(|| anyhow!("{}: no translated region contains {pc:#x}", path.display()))?;
    // Guest side: the region's blocks, rediscovered from the embedded guest.
    let disc = discover(img.guest).map_err(|e| anyhow!("embedded guest: {e}"))?;
    println!(
        "region {:#x}: {} guest insns in {} ranges",
        region.pc,
        region.guest_insns,
        region.ranges.len()
    );
    println!("--- guest (AArch64) ---");
    // The region's ranges cover whole runs of blocks (a function is one range).
    let mut blocks: Vec<_> = disc
        .blocks
        .iter()
        .filter(|b| {
            let g = b.guest_range();
            region
                .ranges
                .iter()
                .any(|&(s, e)| s <= g.start && g.end <= e)
        })
        .collect();
    blocks.sort_by_key(|b| b.pc);
    blocks.dedup_by_key(|b| b.pc);
    for b in blocks {
        println!("{:#x}:", b.pc);
        for op in &b.ops {
            if let Op::Insn { pc, insn } = op {
                println!(
                    "  {pc:#012x}: {insn:08x}  {}",
                    vmc_compiler::a64::disasm(*insn, *pc)
                );
            }
        }
    }
    // Host side: the region's symbol in the object.
    let file = object::File::parse(img.object)?;
    let name = image::region_symbol(region.pc);
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(name.as_str()))
        .ok_or_else(|| anyhow!("image has no symbol {name}"))?;
    let section = file.section_by_index(
        sym.section_index()
            .ok_or_else(|| anyhow!("symbol {name} is undefined"))?,
    )?;
    let data = section.data()?;
    let (start, end) = (
        sym.address() as usize,
        (sym.address() + sym.size()) as usize,
    );
    let code = data
        .get(start..end)
        .ok_or_else(|| anyhow!("symbol {name} lies outside its section"))?;
    println!("--- host (x86-64) {name}, {} bytes ---", code.len());
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, OpKind, Register};
    // Calls out go through the import table: name the entry each load from it takes.
    let imports_at = vmc_compiler::lower::IMPORTS_OFFSET as u64;
    let mut table_in: Vec<Register> = Vec::new();
    let mut dec = Decoder::with_ip(64, code, start as u64, DecoderOptions::NONE);
    let mut fmt = IntelFormatter::new();
    let mut text = String::new();
    while dec.can_decode() {
        let insn = dec.decode();
        text.clear();
        fmt.format(&insn, &mut text);
        let load = insn.op_count() == 2
            && insn.op0_kind() == OpKind::Register
            && insn.op1_kind() == OpKind::Memory
            && insn.memory_index() == Register::None;
        let base = insn.memory_base();
        let disp = insn.memory_displacement64();
        let note = match img.map.imports.get((disp / 8) as usize) {
            Some(name) if load && disp.is_multiple_of(8) && table_in.contains(&base) => {
                format!("  ; import {name}")
            }
            _ => String::new(),
        };
        if insn.op_count() > 0 && insn.op0_kind() == OpKind::Register {
            let dst = insn.op0_register();
            if (Register::RAX..=Register::R15).contains(&dst) {
                table_in.retain(|r| *r != dst);
                if load && disp == imports_at {
                    table_in.push(dst);
                }
            } else {
                // A narrower register written: stop tracking rather than guess its parent.
                table_in.clear();
            }
        }
        println!("  {:8x}: {text}{note}", insn.ip());
    }
    if code.is_empty() {
        bail!("symbol {name} is empty");
    }
    Ok(())
}
