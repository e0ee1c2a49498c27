//! `tally put RsvpStream --from ws://...` (or wss://) as a person runs it: it reads an endless
//! websocket into Kinesis until Ctrl-C, then puts what it holds and exits 0; every RSVP it
//! received is in the stream, in the source's order.

use std::process::{Command, Stdio};
use std::time::Duration;

use tally_gen::meetup::server::{serve, ServeOptions, Source};
use tally_gen::meetup::{default_start, Clock, RsvpGenerator, Shape};
use tokio::sync::watch;

use crate::support::{bin_dir, local_aws, local_root, wait_for, Stack};

fn generator() -> RsvpGenerator {
    let clock = Clock::Simulated {
        start: default_start(),
        rate: 50.0,
    };
    RsvpGenerator::new(21, clock, Shape::default())
}

/// Every record of the stack's RsvpStream, sorted.
async fn rsvps_in_the_stream(stack: &Stack) -> Vec<String> {
    let mut got: Vec<String> = stack
        .read_stream("RsvpStream")
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect();
    got.sort();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_producer_after_it_put_everything_it_received() {
    let stack = Stack::new(&[]).await;
    let (_stop_server, stop) = watch::channel(false);
    let options = ServeOptions {
        rate: 400.0,
        drop_after: None,
    };
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        Source::Generator(Box::new(generator()), None),
        options,
        stop,
    )
    .await
    .unwrap();
    let child = Command::new(bin_dir().join("tally"))
        .args([
            "--stack",
            &stack.template.stack_name,
            "put",
            "RsvpStream",
            "--from",
            &format!("ws://{}/2/rsvps", server.addr),
        ])
        .current_dir(local_root())
        .env("AWS_ENDPOINT_URL", &local_aws().endpoint)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let progress = server.progress.clone();
    // The server counts what it wrote to the socket; the producer may not have read the last
    // few when Ctrl-C comes (it read 299 of 300 once), so the test waits for some more.
    wait_for(
        "the producer to read 300 RSVPs",
        Duration::from_secs(60),
        || {
            let p = *progress.borrow();
            async move { (p.clients == 1 && p.sent >= 340).then_some(()) }
        },
    )
    .await;
    // Ctrl-C, as a terminal sends it.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}: {stderr}", out.status);
    assert!(
        stderr.contains("stopping: putting what is held"),
        "{stderr}"
    );
    // "put N records to RsvpStream (...) from ws://...: N received over 1 connections, ..."
    let summary = stderr.lines().last().unwrap();
    let numbers: Vec<u64> = summary
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (put, received) = (numbers[0], numbers[1]);
    assert_eq!(put, received, "{summary}");
    assert!(put >= 300, "{summary}");

    let got = rsvps_in_the_stream(&stack).await;
    let mut want: Vec<String> = generator().take(put as usize).collect();
    want.sort();
    assert!(
        got == want,
        "the stream holds the first {put} RSVPs once each"
    );
}

/// A websocket server over TLS (Python's ssl, a hand-made handshake): prints its port, sends each
/// line of its standard input as a text frame, then waits for the client to close.
const WSS_SERVER: &str = r#"
import base64, hashlib, socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
lines = sys.stdin.read().splitlines()
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn = ctx.wrap_socket(srv.accept()[0], server_side=True)
request = b""
while b"\r\n\r\n" not in request:
    request += conn.recv(4096)
key = [l.split(b":", 1)[1].strip() for l in request.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key")][0]
accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
for line in lines:
    data = line.encode()
    head = bytes([0x81, len(data)]) if len(data) < 126 else bytes([0x81, 126]) + len(data).to_bytes(2, "big")
    conn.sendall(head + data)
try:
    while conn.recv(4096):
        pass
except OSError:
    pass
"#;

/// `tally put --from wss://...`: the producer speaks TLS, checked against the machine's roots
/// (here a certificate of its own, given by SSL_CERT_FILE, as a private CA would be).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_reads_a_wss_source() {
    let stack = Stack::new(&[]).await;
    let dir = bin_dir().join(format!("test-logs/wss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let want: Vec<String> = generator().take(25).collect();
    let mut server = Command::new(local_root().join(".venv/bin/python"))
        .arg("-c")
        .arg(WSS_SERVER)
        .arg(&cert)
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{BufRead, Write};
    server
        .stdin
        .take()
        .unwrap()
        .write_all(want.join("\n").as_bytes())
        .unwrap();
    let mut port = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let out = Command::new(bin_dir().join("tally"))
        .args(["--stack", &stack.template.stack_name, "put", "RsvpStream"])
        .args([
            "--from",
            &format!("wss://127.0.0.1:{}/2/rsvps", port.trim()),
        ])
        .args(["--max-records", "25"])
        .current_dir(local_root())
        .env("AWS_ENDPOINT_URL", &local_aws().endpoint)
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rsvps_in_the_stream(&stack).await;
    let mut want = want;
    want.sort();
    assert_eq!(got, want, "the 25 RSVPs the wss:// source sent, once each");
}
