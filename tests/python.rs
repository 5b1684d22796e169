//! The Python package (python/xtnet, ctypes over this build's library): its pytest suite, run
//! against real sockets. Needs pytest (`python3 -m pip install pytest`); without it the test
//! says loudly that it skipped, and under XTNET_REQUIRE_ALL (CI) that is a failure.

#[path = "support/c_build.rs"]
#[allow(dead_code)]
mod c_build;
mod common;

use common::netns::require;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let has_pytest = Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(
        has_pytest,
        "the_python_package_passes_its_pytest_suite",
        "pytest is not installed (python3 -m pip install pytest)",
    ) {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("timeout")
        .args([
            "300",
            "python3",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .arg(root.join("python/tests"))
        .env("XTNET_LIBRARY", c_build::library_dir().join("libxtnet.so"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&root)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest failed:\n{text}");
    assert!(text.contains(" passed"), "{text}");
    assert!(!text.contains("skipped"), "nothing may be skipped:\n{text}");
}
