//! `sprig propagate --workers` / `--hosts` (feature `distributed`): the same bytes as a run in
//! one process, on worker threads and on two processes talking over loopback TCP.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{fails, ok, repo};

/// The bundled corpus's kNN graph (2,400 texts: several blocks, so workers exchange rows).
fn replies_graph(dir: &Path) {
    let corpus = repo("corpora/replies/corpus.jsonl");
    ok(
        dir,
        &[
            "graph",
            "--corpus",
            corpus.to_str().unwrap(),
            "--out",
            "r.graph",
            "-q",
        ],
    );
}

fn propagate(dir: &Path, out: &str, extra: &[&str]) -> Vec<u8> {
    let args = [
        &["propagate", "--graph", "r.graph", "--out", out, "-q"][..],
        extra,
    ]
    .concat();
    ok(dir, &args);
    std::fs::read(dir.join(out)).unwrap()
}

/// Held by every test that starts processes on loopback ports, so that no two run at once:
/// [`free_ports`] frees its ports before timely binds them, and a port one test freed and
/// another then drew would join the two tests' processes into one cluster (the library's
/// TCP tests saw it: "worker 1 has another graph").
fn tcp_serial() -> std::sync::MutexGuard<'static, ()> {
    static TCP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed holding it poisons it; the next still runs alone.
    TCP.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Two free loopback ports (a port could be taken between this and timely's bind; the test
/// would then fail loudly, not pass). Callers hold [`tcp_serial`].
fn free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    [
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    ]
}

/// A started process, killed if the test ends (or fails) before it does.
struct Started(Option<Child>);

impl Started {
    /// Waits at most a minute: a cluster that hangs fails the test instead of CI.
    fn finish(mut self) -> Output {
        let mut child = self.0.take().expect("not finished yet");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("a process of the cluster hangs");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts process `process` of the cluster in `hosts.txt`, two workers each.
fn start(dir: &Path, process: &str, out: &str, extra: &[&str]) -> Started {
    start_with_workers(dir, process, "2", out, extra)
}

/// [`start`] with `workers` workers.
fn start_with_workers(
    dir: &Path,
    process: &str,
    workers: &str,
    out: &str,
    extra: &[&str],
) -> Started {
    let child = Command::new(env!("CARGO_BIN_EXE_sprig"))
        .args(["propagate", "--graph", "r.graph", "--out", out, "-q"])
        .args([
            "--hosts",
            "hosts.txt",
            "--process",
            process,
            "--workers",
            workers,
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Started(Some(child))
}

fn write_hosts(dir: &Path) {
    let [p0, p1] = free_ports();
    std::fs::write(
        dir.join("hosts.txt"),
        format!("# process 0 writes the output\n127.0.0.1:{p0}\n127.0.0.1:{p1}\n"),
    )
    .unwrap();
}

#[test]
fn distributed_runs_write_the_bytes_of_a_single_process() {
    let _tcp = tcp_serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    replies_graph(d);
    for algorithm in ["expander", "mad"] {
        let single = propagate(d, "one.jsonl", &["--algorithm", algorithm]);
        let threads = propagate(
            d,
            "three.jsonl",
            &["--algorithm", algorithm, "--workers", "3"],
        );
        assert!(single == threads, "{algorithm}: --workers 3 differs");
    }

    // Two processes, two workers each, over TCP; process 0 writes `out`.
    let two_processes = |out: &str, extra: &[&str]| {
        write_hosts(d);
        let second = start(d, "1", "from-1.jsonl", extra);
        let first = start(d, "0", out, extra);
        for child in [first, second] {
            let out = child.finish();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::read(d.join(out)).unwrap()
    };
    let single = propagate(d, "one.jsonl", &[]);
    assert!(single == two_processes("from-0.jsonl", &[]));
    assert!(
        !d.join("from-1.jsonl").exists(),
        "only process 0 writes the output"
    );
    // --connect-timeout 0 waits for ever: for the peers, and for every iteration (a zero
    // timeout would give up on the first).
    assert!(single == two_processes("patient.jsonl", &["--connect-timeout", "0"]));
}

/// Processes started with different flags refuse to run, all of them, instead of mixing rows
/// that mean different things.
#[test]
fn distributed_processes_must_agree_on_their_inputs() {
    let _tcp = tcp_serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    replies_graph(d);
    write_hosts(d);
    let second = start(d, "1", "from-1.jsonl", &["--mu2", "0.5"]);
    let first = start(d, "0", "from-0.jsonl", &[]);
    for child in [first, second] {
        let out = child.finish();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("another graph, seed set or config"), "{err}");
    }
    assert!(!d.join("from-0.jsonl").exists() && !d.join("from-1.jsonl").exists());
}

/// Processes started with different `--workers` cannot even agree on timely's connections:
/// timely's threads panic, and each process says so in one line, not a screen of panics.
#[test]
fn processes_with_other_worker_counts_fail_in_one_line() {
    let _tcp = tcp_serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    replies_graph(d);
    write_hosts(d);
    let second = start_with_workers(d, "1", "2", "from-1.jsonl", &[]);
    let first = start_with_workers(d, "0", "1", "from-0.jsonl", &[]);
    for child in [first, second] {
        let out = child.finish();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("sprig: ")).collect();
        assert!(
            errors.len() == 1
                && errors[0].contains("the same hosts file and --workers")
                && errors[0].contains("the first of its panics: thread 'timely"),
            "{err}"
        );
        assert!(
            !err.lines().any(|l| l.starts_with("thread '")),
            "timely's panics are not printed: {err}"
        );
    }
    assert!(!d.join("from-0.jsonl").exists());
}

/// The one-line error of `sprig propagate` on the bundled graph with `--hosts FILE
/// --process I`, `--out OUT` and `extra`.
fn refused(dir: &Path, hosts: &str, process: &str, out: &str, extra: &[&str]) -> String {
    let args = [
        "propagate",
        "--graph",
        "r.graph",
        "--out",
        out,
        "--hosts",
        hosts,
        "--process",
        process,
    ];
    fails(dir, &[&args[..], extra].concat())
}

#[test]
fn distributed_flags_are_checked() {
    let _tcp = tcp_serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    replies_graph(d);
    // Hosts lines are checked before the graph is read, naming the file and line.
    for bad in [
        "localhost",
        "localhost:abc",
        "127.0.0.1:99999",
        "127.0.0.1:0",
        "127.0.0.1:22 # ssh",
        ":80",
    ] {
        let hosts = format!("# hosts\nlocalhost:2101\n{bad}\n");
        std::fs::write(d.join("bad-hosts.txt"), hosts).unwrap();
        let err = refused(d, "bad-hosts.txt", "0", "x.jsonl", &[]);
        assert!(
            err.contains("bad-hosts.txt:3") && err.contains("host:port"),
            "{bad}: {err}"
        );
    }
    std::fs::write(d.join("hosts.txt"), "localhost:1\n").unwrap();
    let err = refused(d, "hosts.txt", "1", "x.jsonl", &[]);
    assert!(err.contains("process"), "{err}");
    // timely writes its connection messages to stdout, where they would mix with the labels.
    let err = refused(d, "hosts.txt", "0", "-", &[]);
    assert!(err.contains("--out FILE"), "{err}");
    // A process holds only its rows: the seeds' check cannot run there, and is refused
    // rather than left unwritten.
    let err = refused(
        d,
        "hosts.txt",
        "0",
        "x.jsonl",
        &["--check-seeds", "c.jsonl"],
    );
    assert!(err.contains("--check-seeds needs the whole graph"), "{err}");
    let err = refused(d, "hosts.txt", "0", "x.jsonl", &["--suggest", "s.jsonl"]);
    assert!(err.contains("--suggest needs the whole graph"), "{err}");
    // A process whose peers never start gives up after --connect-timeout, with exit code 2.
    let [p0, p1] = free_ports();
    std::fs::write(
        d.join("two.txt"),
        format!("127.0.0.1:{p0}\n127.0.0.1:{p1}\n"),
    )
    .unwrap();
    // Process 1 of two, whose process 0 never starts.
    let alone = [
        "propagate",
        "--graph",
        "r.graph",
        "--out",
        "x.jsonl",
        "--hosts",
        "two.txt",
        "--process",
        "1",
    ];
    for bad in ["-1", "abc", "inf"] {
        // A usage error: clap's, with its usage lines.
        let flag = format!("--connect-timeout={bad}");
        let out = crate::util::sprig(d, &[&alone[..], &[flag.as_str()]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("expected a number of seconds"), "{bad}: {err}");
    }
    let err = fails(d, &[&alone[..], &["--connect-timeout", "1", "-q"]].concat());
    assert!(err.contains("did not all connect within 1 s"), "{err}");
    assert!(!d.join("x.jsonl").exists());
}

/// A stray connection to process 0 while it waits for its peers (a port scan, a health
/// check) makes timely panic on a thread of its own: the process stops with its one line,
/// the panic quoted in it, not printed.
#[test]
fn a_stray_connection_at_start_up_fails_in_one_line() {
    let _tcp = tcp_serial();
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    replies_graph(d);
    write_hosts(d);
    let hosts = std::fs::read_to_string(d.join("hosts.txt")).unwrap();
    let p0 = hosts.lines().nth(1).unwrap().to_owned();
    let first = start_with_workers(d, "0", "1", "x.jsonl", &["--connect-timeout", "20"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stray = loop {
        match std::net::TcpStream::connect(&p0) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("process 0 never listened on {p0}: {e}"),
        }
    };
    stray.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let out = first.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("sprig: ")).collect();
    assert!(
        errors.len() == 1 && errors[0].contains("the first of its panics: thread '"),
        "{err}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("thread '")),
        "timely's panics are not printed: {err}"
    );
    assert!(!d.join("x.jsonl").exists());
}
