//! Generates the C header into OUT_DIR with cbindgen (and, for `make install`, sets the shared
//! library's SONAME). The committed `include/xtnet.h` must
//! equal it; `tests/header.rs` fails on drift and prints the command that refreshes it.

use std::path::PathBuf;

fn main() {
    // `make install` builds the shared library with its SONAME (libxtnet.so.0.1): set only
    // there, so in-tree builds keep linking and loading as plain libxtnet.so.
    println!("cargo:rerun-if-env-changed=XTNET_SONAME");
    if let Ok(soname) = std::env::var("XTNET_SONAME") {
        if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
        }
    }
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("xtnet.h");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could generate the header")
        .write_to_file(&out);
}
