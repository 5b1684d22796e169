//! Builds the C examples against the library of the running test or bench profile.
//! Shared (through `#[path]`) by `tests/c_examples.rs` and `benches/echo.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the `libxtnet.so` that cargo built for this test or bench binary:
/// `target/<profile>/deps` (where the binary itself lives), else `target/<profile>`.
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("exe dir").to_path_buf();
    let profile = deps.parent().expect("profile dir").to_path_buf();
    [deps, profile]
        .into_iter()
        .find(|d| d.join("libxtnet.so").exists())
        .expect("cargo built libxtnet.so next to this binary")
}

/// Runs `make -C c-examples` into `out`; panics if any example fails to compile.
pub fn build_c_examples(out: &Path) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root.join("c-examples"))
        .arg(format!("XTNET_LIB={}", library_dir().display()))
        .arg(format!("OUT={}", out.display()))
        .status()
        .expect("make runs");
    assert!(
        status.success(),
        "the C examples must compile cleanly with -Werror"
    );
    out.to_path_buf()
}

/// A command for a built example that loads the library of this build: cargo puts
/// `target/<profile>` first on LD_LIBRARY_PATH (which beats the examples' rpath), and a
/// `libxtnet.so` left there by an earlier `cargo build` may be stale.
pub fn example_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LD_LIBRARY_PATH", library_dir());
    cmd
}
