//! `tally put RsvpStream --from ws://...` as a person runs it: it reads an endless websocket into
//! Kinesis until Ctrl-C, then puts what it holds and exits 0; every RSVP it received is in the
//! stream, in the source's order.

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

    let mut got: Vec<String> = stack
        .read_stream("RsvpStream")
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect();
    let mut want: Vec<String> = generator().take(put as usize).collect();
    got.sort();
    want.sort();
    assert!(
        got == want,
        "the stream holds the first {put} RSVPs once each"
    );
}
