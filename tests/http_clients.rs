//! The C example `http_server` with real clients: curl, Python's http.client and a real
//! browser (headless Chromium submitting the page's form).

#[path = "support/c_build.rs"]
mod c_build;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

fn examples() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        c_build::build_c_examples(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-examples-http"),
        )
    })
}

struct Server {
    child: Child,
    out: BufReader<ChildStdout>,
    port: u16,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = c_build::example_command(&examples().join("http_server"))
            .args(["--port", "0", "--max-seconds", "120"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("first line names the port");
        Server { child, out, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops the server and returns the request lines it logged.
    fn stop(mut self) -> String {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        self.child.wait().unwrap();
        rest
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("XTNET_REQUIRE_ALL").is_none(),
            "{name} is required (XTNET_REQUIRE_ALL is set)"
        );
        eprintln!("\n*** SKIPPED: {name} is not installed; CI installs it. ***\n");
    }
    ok
}

/// Runs curl with `args`; returns (stdout, stderr).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_get_post_multipart_head_keepalive_chunked_and_limits() {
    if !tool("curl") {
        return;
    }
    let server = Server::start(&[]);
    let (page, _) = curl(&[&server.url("/?note=hi%20there&device=Porch+Light")]);
    assert!(
        page.contains("<li>note = hi there</li>") && page.contains("<li>device = Porch Light</li>"),
        "{page}"
    );
    assert!(
        page.contains("<p id=\"requester\">127.0.0.1 port "),
        "{page}"
    );
    let (page, _) = curl(&[
        "-d",
        "note=posted+note&device=Garage+Door",
        &server.url("/"),
    ]);
    assert!(page.contains("<li>note = posted note</li>"), "{page}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("scene.txt");
    std::fs::write(&file, "x".repeat(1234)).unwrap();
    let (page, _) = curl(&[
        "-F",
        "note=with a file",
        "-F",
        &format!("attachment=@{}", file.display()),
        &server.url("/"),
    ]);
    assert!(
        page.contains("<li>note = with a file</li>")
            && page.contains("<li>file scene.txt (1234 bytes)</li>"),
        "{page}"
    );
    // HEAD: the headers of the GET, no body.
    let (get, _) = curl(&["-i", &server.url("/")]);
    let (head, _) = curl(&["-I", &server.url("/")]);
    let get_length = get
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-length:"))
        .unwrap()
        .to_owned();
    assert!(
        head.contains(&get_length),
        "HEAD {head:?} vs GET {get_length:?}"
    );
    assert!(head.to_ascii_lowercase().contains("date:"), "{head}");
    // Two URLs in one curl: the second reuses the connection.
    let (_, log) = curl(&[
        "-v",
        "-o",
        "/dev/null",
        &server.url("/?a"),
        "-o",
        "/dev/null",
        &server.url("/?b"),
    ]);
    assert!(
        log.contains("Re-using existing connection") || log.contains("Reusing existing connection"),
        "{log}"
    );
    // A chunked upload.
    let body = dir.join("note.txt");
    std::fs::write(&body, "note=sent+in+chunks").unwrap();
    let (page, _) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", body.display()),
        &server.url("/"),
    ]);
    assert!(page.contains("<li>note = sent in chunks</li>"), "{page}");
    // Limits.
    let big = format!("X-Big: {}", "a".repeat(20000));
    let (code, _) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &big,
        &server.url("/"),
    ]);
    assert_eq!(code, "431");
    let huge = dir.join("huge.bin");
    std::fs::write(&huge, vec![0u8; 9 << 20]).unwrap();
    let (code, _) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &format!("@{}", huge.display()),
        &server.url("/"),
    ]);
    assert_eq!(code, "413", "a body past 8 MiB");
    let log = server.stop();
    assert!(
        log.contains("request GET / from 127.0.0.1: note=hi there device=Porch Light"),
        "{log}"
    );
    assert!(
        !log.contains("X-Big"),
        "the host never saw the refused requests"
    );
}

#[test]
fn python_http_client() {
    let server = Server::start(&["--dispatch", "poll"]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/http_client_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}

#[test]
fn a_browser_submits_the_form_and_renders_the_answer() {
    let have = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !have {
        assert!(
            std::env::var_os("XTNET_REQUIRE_ALL").is_none(),
            "chromium is required (XTNET_REQUIRE_ALL is set)"
        );
        eprintln!("\n*** SKIPPED: chromium is not installed; CI installs it. ***\n");
        return;
    }
    let server = Server::start(&[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.url("/"))
        .arg("typed in <Chromium> & sent")
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{dom}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the browser rendered from the host's answer (escaped by the host, parsed back).
    assert!(
        dom.contains("<li>note = typed in &lt;Chromium&gt; &amp; sent</li>"),
        "{dom}"
    );
    assert!(dom.contains("<li>device = Garage Door</li>"), "{dom}");
    assert!(
        dom.contains("<ol id=\"notes\"><li>typed in &lt;Chromium&gt; &amp; sent</li></ol>"),
        "{dom}"
    );
    assert!(
        dom.to_ascii_lowercase()
            .contains("user-agent</td><td>mozilla/5.0"),
        "{dom}"
    );
    // What the host's callback received.
    let log = server.stop();
    assert!(
        log.contains(
            "request POST / from 127.0.0.1: note=typed in <Chromium> & sent device=Garage Door"
        ),
        "{log}"
    );
}
