//! `make install`: the library installed under a prefix is usable the way any C library is —
//! found by pkg-config, linked by name, loaded by its SONAME — with nothing from this tree.
//!
//! Builds the library once more (target/install, with its SONAME), so it takes a minute.

#[path = "support/c_build.rs"]
#[allow(dead_code)]
mod c_build;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    run(Command::new("pkg-config")
        .args(args)
        .arg("xtnet")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")))
    .split_whitespace()
    .map(str::to_owned)
    .collect()
}

/// Runs a built echo_server and checks one echo through it.
fn echo_once(program: &Path, env: &[(&str, &Path)]) {
    let mut cmd = Command::new(program);
    cmd.args(["--port", "0", "--boundary", "\\n", "--max-seconds", "20"])
        .env_remove("LD_LIBRARY_PATH")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"installed\n").unwrap();
    let mut got = [0u8; 10];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"installed\n");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn installed_library_is_found_by_pkg_config_linked_and_loaded_by_soname() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    run(Command::new("make")
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg("PROFILE=debug")
        .current_dir(&root));

    // The files, and the shared library's SONAME.
    let lib = prefix.join("lib");
    for file in [
        "lib/libxtnet.so.0.1.0",
        "lib/libxtnet.so.0.1",
        "lib/libxtnet.so",
        "lib/libxtnet.a",
        "lib/pkgconfig/xtnet.pc",
        "include/xtnet.h",
        "include/xtnet/module.modulemap",
    ] {
        assert!(prefix.join(file).exists(), "{file} is installed");
    }
    let dynamic = run(Command::new("readelf")
        .arg("-d")
        .arg(lib.join("libxtnet.so.0.1.0")));
    assert!(
        dynamic.contains("Library soname: [libxtnet.so.0.1]"),
        "{dynamic}"
    );
    assert_eq!(
        std::fs::read_link(lib.join("libxtnet.so.0.1")).unwrap(),
        PathBuf::from("libxtnet.so.0.1.0")
    );
    let map = std::fs::read_to_string(prefix.join("include/xtnet/module.modulemap")).unwrap();
    assert!(
        map.contains("header \"../xtnet.h\"") && map.contains("module xtnet"),
        "{map}"
    );

    // A C program built with nothing but what pkg-config says.
    assert_eq!(
        pkg_config(&prefix, &["--modversion"]),
        [env!("CARGO_PKG_VERSION")]
    );
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-echo");
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(root.join("c-examples/echo_server.c"))
        .arg("-o")
        .arg(&out)
        .args(pkg_config(&prefix, &["--cflags", "--libs"]));
    run(&mut cc);
    let needed = run(Command::new("readelf").arg("-d").arg(&out));
    assert!(
        needed.contains("Shared library: [libxtnet.so.0.1]"),
        "linked against the SONAME: {needed}"
    );
    echo_once(&out, &[("LD_LIBRARY_PATH", &lib)]);

    // And statically: the archive plus the system libraries pkg-config lists as private.
    let out_static = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-echo-static");
    let private: Vec<String> = pkg_config(&prefix, &["--static", "--libs-only-l"])
        .into_iter()
        .filter(|l| l != "-lxtnet")
        .collect();
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(root.join("c-examples/echo_server.c"))
        .arg("-o")
        .arg(&out_static)
        .args(pkg_config(&prefix, &["--cflags"]))
        .arg(lib.join("libxtnet.a"))
        .args(private));
    let needed = run(Command::new("readelf").arg("-d").arg(&out_static));
    assert!(
        !needed.contains("libxtnet"),
        "no libxtnet.so needed: {needed}"
    );
    echo_once(&out_static, &[]);

    // As a clang module (what Swift's `import xtnet` reads): `@import xtnet;` through the
    // installed module map, linked with pkg-config's flags (clang does not link a module's
    // `link` line on Linux). `@import` is Objective-C syntax: the file is compiled as such
    // (it uses nothing of Objective-C); plain C gets the same module from `#include`.
    let has_clang = Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::netns::require(
        has_clang,
        "the installed module map works as a clang module",
        "clang is not installed (apt-get install clang)",
    ) {
        return;
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let source = tmp.join("module_host.c");
    std::fs::write(
        &source,
        r#"@import xtnet;
#include <stdio.h>
int main(void) {
    XtContext *ctx = xt_context_new(NULL, XT_DISPATCH_THREAD);
    if (!ctx) return 1;
    uint32_t listener = xt_start_tcp_listener(ctx, 0, (const uint8_t *)"\n", 1);
    printf("xtnet %s, listening: %d, code %d\n", xt_version(), xt_listener_port(ctx, listener) != 0,
           XT_ERR_INVALID_STATE);
    xt_context_free(ctx);
    return 0;
}
"#,
    )
    .unwrap();
    let program = tmp.join("module_host");
    run(Command::new("clang")
        .args([
            "-x",
            "objective-c",
            "-fmodules",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .arg(format!(
            "-fmodules-cache-path={}",
            tmp.join("module-cache").display()
        ))
        .arg(format!(
            "-fmodule-map-file={}",
            prefix.join("include/xtnet/module.modulemap").display()
        ))
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .args(pkg_config(&prefix, &["--cflags", "--libs"])));
    let printed = run(Command::new(&program)
        .env("LD_LIBRARY_PATH", &lib)
        .env_remove("XTNET_LIBRARY"));
    assert_eq!(
        printed.trim(),
        format!(
            "xtnet {}, listening: 1, code 106",
            env!("CARGO_PKG_VERSION")
        )
    );
}
