//! Reports which yaxpeax-arm opcodes the A64 frontend implements.
//!
//! `cargo run -p vmc-compiler --bin a64-coverage [--json] [--samples N] [--seed S]`
//! decodes N random words (default 4,000,000, plus hand-picked ones), buckets them by opcode
//! and prints each opcode's class, status (implemented / partial / missing) and sample count,
//! then the totals and the must-have opcodes that are missing.

use vmc_compiler::a64::coverage::{coverage, render_json, render_table};

fn main() {
    let mut json = false;
    let mut samples = 4_000_000usize;
    let mut seed = 0xC0FFEEu64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--samples" => {
                samples = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--samples N")
            }
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed S"),
            "-h" | "--help" => {
                println!("usage: a64-coverage [--json] [--samples N] [--seed S]");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    let buckets = coverage(samples, seed);
    if json {
        print!("{}", render_json(&buckets));
    } else {
        print!("{}", render_table(&buckets));
    }
}
