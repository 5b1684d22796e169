//! The committed header must be exactly what cbindgen generates from the sources.

use std::path::Path;

#[test]
fn committed_header_matches_generated() {
    let generated_path = Path::new(env!("OUT_DIR")).join("xtnet.h");
    let generated =
        std::fs::read_to_string(&generated_path).expect("build.rs generated the header");
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/xtnet.h");
    if std::env::var_os("XTNET_BLESS").is_some() {
        std::fs::write(&committed_path, &generated).expect("include/xtnet.h is writable");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "include/xtnet.h differs from the header generated from the sources (first at line {line}).\n\
             Refresh it with:\n\n    XTNET_BLESS=1 cargo test --test header\n"
        );
    }
}

/// The header matches the pinned C contract of DESIGN.md: names, exact signatures, constants and
/// field order (tests/c/contract.c fails to compile otherwise).
#[test]
fn header_matches_the_pinned_c_contract() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("contract.o");
    let status = std::process::Command::new("cc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-Wno-unused-function",
            "-c",
        ])
        .arg(root.join("tests/c/contract.c"))
        .arg(format!("-I{}", root.join("include").display()))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("cc runs");
    assert!(
        status.success(),
        "include/xtnet.h does not match the C contract (see the compiler's message)"
    );
}

/// String constants are written into the header by cbindgen.toml: they must equal the Rust ones.
#[test]
fn string_constants_match_the_rust_ones() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/xtnet.h"))
            .unwrap();
    let define = format!(
        "#define XT_BROADCAST_ADDRESS \"{}\"",
        xtnet::ffi::udp::XT_BROADCAST_ADDRESS
    );
    assert!(header.contains(&define), "include/xtnet.h lacks {define}");
}

/// Every C call of the header appears, by its full name, in the README's table of calls, so the
/// table grows with the API.
#[test]
fn the_readme_table_names_every_call() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/xtnet.h")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("| XTension (plugin API v2) |")
        .expect("the README's table of calls");
    let table = &readme[start..start + readme[start..].find("\n\n").unwrap()];
    let calls: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '*', '/', '#', '}', '\t']) && l.contains("xt_"))
        .filter_map(|l| {
            let name = &l[l.find("xt_")?..];
            Some(&name[..name.find('(')?])
        })
        .collect();
    assert!(calls.len() >= 60, "calls found in the header: {calls:?}");
    let missing: Vec<&&str> = calls
        .iter()
        .filter(|c| !table.contains(&format!("`{c}`")) && !table.contains(&format!("`{c}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "the README's table does not name: {missing:?}"
    );
}
