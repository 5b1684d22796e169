//! `pip install ./python` as a new user runs it: into a fresh virtual environment, with no
//! XTNET_LIBRARY and no installed library; pip builds the Rust library (setuptools-rust, from
//! this checkout) into the package. Then the seed page's example plugin runs with
//! `python -m xtnet.plugin` from another folder and answers a real client; and `pip wheel` gives
//! a wheel tagged abi3 (the library does not depend on the Python version). Needs python3 with
//! venv and pip, and the package index (for setuptools-rust).

mod common;

use common::netns::require;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The seed page's example plugin, as python/tests/test_plugin.py runs it too.
const SEED_PLUGIN: &str = include_str!("../python/tests/seed_plugin.txt");

/// The environment of a new user: nothing pointing at this build's library or package.
fn clean(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("XTNET_LIBRARY")
        .env_remove("PYTHONPATH")
        .env_remove("LD_LIBRARY_PATH")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = clean(cmd)
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn pip_install_builds_the_library_into_the_package_and_the_seed_plugin_runs() {
    let dir = std::env::temp_dir().join(format!("xtnet-pip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let venv = dir.join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !require(
        made,
        "pip_install_builds_the_library_into_the_package_and_the_seed_plugin_runs",
        "python3 -m venv does not work (Debian: apt-get install python3-venv)",
    ) {
        return;
    }
    let python = venv.join("bin/python");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q"])
            .arg(root.join("python"))
            .current_dir(&dir),
        "pip install ./python",
    );

    // The library came with the package, from the package's own folder.
    let found = run(
        Command::new(&python)
            .args([
                "-c",
                "import xtnet; print(xtnet.library_path); print(xtnet.version())",
            ])
            .current_dir(&dir),
        "import xtnet",
    );
    let site = run(
        Command::new(&python)
            .args([
                "-c",
                "import xtnet, os; print(os.path.dirname(xtnet.__file__))",
            ])
            .current_dir(&dir),
        "where xtnet is",
    );
    let mut lines = found.lines();
    let library = lines.next().unwrap_or_default();
    assert!(
        Path::new(library).starts_with(site.trim()) && library.contains("libxtnet"),
        "the library {library:?} is not the one inside the installed package {site:?}"
    );
    assert_eq!(lines.next(), Some(env!("CARGO_PKG_VERSION")));

    // The seed's example plugin, from a folder of its own, with no environment set up.
    let plugin_dir = dir.join("plugin");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::write(plugin_dir.join("seed_plugin.py"), SEED_PLUGIN).unwrap();
    let port = free_port();
    let log = plugin_dir.join("plugin.log");
    let mut plugin = clean(
        Command::new(&python)
            .args([
                "-m",
                "xtnet.plugin",
                "seed_plugin.py",
                "--max-seconds",
                "30",
                "--log",
            ])
            .arg(&log)
            .env("PLUGIN_PORT", port.to_string())
            .current_dir(&plugin_dir)
            .stdout(Stdio::null()),
    )
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut client = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline && plugin.try_wait().unwrap().is_none() => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => {
                let _ = plugin.kill();
                panic!("the installed plugin never listened: {e}");
            }
        }
    };
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"hello\r\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&client).read_line(&mut answer).unwrap();
    let _ = plugin.kill();
    let _ = plugin.wait();
    assert_eq!(answer, "echo hello\r\n");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("A new connection was received from address: 127.0.0.1"),
        "{logged}"
    );

    // A wheel for any Python 3 on this platform.
    let wheels = dir.join("wheels");
    run(
        Command::new(&python)
            .args(["-m", "pip", "wheel", "-q", "--no-deps", "-w"])
            .arg(&wheels)
            .arg(root.join("python"))
            .current_dir(&dir),
        "pip wheel ./python",
    );
    let names: Vec<String> = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("xtnet-") && n.contains("-cp37-abi3-") && n.ends_with(".whl")),
        "no abi3 wheel in {names:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
