//! Embeds the SQL migrations under `migrations/<database>/` into the crate: one generated
//! table per database (`$OUT_DIR/migrations.rs`, read by `src/store/migrations.rs`), so the
//! sqlx macro crates (and the second SQLite build they bring) are not compiled.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .expect("migrations/")
        .map(|e| e.expect("migrations/ entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = String::new();
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        let name = dir
            .file_name()
            .unwrap()
            .to_str()
            .expect("UTF-8 directory name");
        let mut files: Vec<_> = fs::read_dir(&dir)
            .expect("migration directory")
            .map(|e| e.expect("migration entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        writeln!(
            out,
            "pub(crate) const {}: &[(&str, &str)] = &[",
            name.to_uppercase()
        )
        .unwrap();
        for file in files {
            println!("cargo:rerun-if-changed={}", file.display());
            let file_name = file.file_name().unwrap().to_str().expect("UTF-8 file name");
            writeln!(
                out,
                "    ({file_name:?}, include_str!({:?})),",
                file.display()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs");
    fs::write(dest, out).unwrap();
}
