//! What the integration tests share: the emulators (started once per test process, behind the
//! local cloud's edge router), a freshly provisioned stack per test, one local cloud of
//! template.yaml for the end-to-end tests, the `tally` binary, and helpers to read what the
//! functions wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use tally_aws::kinesis_event::KinesisEvent;
use tally_aws::Env;
use tally_cloud::clients::{local_config, Clients, Endpoints};
use tally_cloud::cloud::{CloudOptions, LocalCloud};
use tally_cloud::edge::EdgeRouter;
use tally_cloud::emulators::{project_root, EmulatorPorts, Emulators};
pub use tally_cloud::kinesis::ShardRecord;
use tally_cloud::provision::provision;
use tally_stack::template::Template;

pub struct LocalAws {
    pub endpoint: String,
    pub root: PathBuf,
    /// The edge in front of the emulators (it describes each test's stack).
    pub router: std::sync::Arc<EdgeRouter>,
}

static LOCAL: OnceLock<Result<LocalAws, String>> = OnceLock::new();

/// A runtime for what runs beside the tests on a thread of its own, as long as the test process.
fn background_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The emulators and the edge router, started on first use. They run on a thread that lives as
/// long as the test process, and die with it.
pub fn local_aws() -> &'static LocalAws {
    let started = LOCAL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("local-aws".into())
            .spawn(move || {
                let root = match project_root(Path::new(env!("CARGO_MANIFEST_DIR"))) {
                    Ok(r) => r,
                    Err(e) => return tx.send(Err(e.to_string())).unwrap(),
                };
                let emulators = EmulatorPorts::any_free()
                    .map_err(|e| e.to_string())
                    .and_then(|ports| {
                        Emulators::start(&root, ports, &root.join("target/test-logs"))
                            .map_err(|e| e.to_string())
                    });
                let emulators = match emulators {
                    Ok(e) => e,
                    Err(e) => return tx.send(Err(e)).unwrap(),
                };
                background_runtime().block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let endpoint = format!("http://{}", listener.local_addr().unwrap());
                    let router = EdgeRouter::new(emulators.ports.backends());
                    tx.send(Ok(LocalAws {
                        endpoint,
                        root,
                        router: router.clone(),
                    }))
                    .unwrap();
                    let _keep = emulators;
                    router.serve(listener).await;
                });
            })
            .unwrap();
        rx.recv().unwrap_or_else(|e| Err(e.to_string()))
    });
    match started {
        Ok(l) => l,
        Err(e) => panic!("local AWS emulators unavailable: {e}"),
    }
}

/// One test's own copy of the application's resources.
pub struct Stack {
    pub template: Template,
    pub clients: Clients,
    pub sdk: SdkConfig,
}

static STACKS: AtomicUsize = AtomicUsize::new(0);

impl Stack {
    /// Provisions `template.yaml` under a fresh stack name, with parameter overrides.
    pub async fn new(params: &[(&str, &str)]) -> Stack {
        let local = local_aws();
        let n = STACKS.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}-{n}", std::process::id());
        let overrides: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut template = Template::load(&local.root.join("template.yaml"), &name, &overrides)
            .expect("template.yaml loads");
        template.queue_endpoint = local.endpoint.clone();
        let clients = Clients::new(&Endpoints::all(&local.endpoint)).await;
        provision(&template, &clients)
            .await
            .expect("template.yaml provisions");
        // CloudFormation at the edge knows the stack, as a deployed one is known: `tally` finds
        // its resources that way.
        let described = tally_control::cloudformation::Stacks::of(&template, "http://127.0.0.1:9")
            .expect("the stack described");
        local.router.describe(std::sync::Arc::new(described));
        let sdk = local_config(&local.endpoint).await;
        Stack {
            template,
            clients,
            sdk,
        }
    }

    pub fn name(&self, logical_id: &str) -> String {
        self.template.physical_name(logical_id)
    }

    /// The environment the template gives a function, as the local cloud gives it.
    pub fn function_env(&self, logical_id: &str) -> Env {
        Env::from_map(
            tally_cloud::lambda::function_environment(&self.template, logical_id).unwrap(),
        )
    }

    /// Every record of a stream, in shard order, from the beginning.
    pub async fn read_stream(&self, logical_id: &str) -> Vec<ShardRecord> {
        tally_cloud::kinesis::read_stream(&self.clients.kinesis, &self.name(logical_id))
            .await
            .unwrap()
    }

    /// Puts records to a stream, each with its partition key; returns once all are accepted.
    pub async fn put_records(&self, logical_id: &str, records: &[(String, Vec<u8>)]) {
        let outcome = tally_cloud::kinesis::put_all(
            &self.clients.kinesis,
            &self.name(logical_id),
            records,
            |_| {},
        )
        .await;
        assert_eq!(outcome.accepted, records.len(), "{outcome:?}");
    }

    /// Objects under a prefix of a bucket of this stack, with their bodies.
    pub async fn objects(
        &self, bucket_logical_id: &str, prefix: &str,
    ) -> BTreeMap<String, Vec<u8>> {
        read_objects(&self.clients.s3, &self.name(bucket_logical_id), prefix).await
    }
}

/// Objects under a prefix of a bucket, with their bodies.
pub async fn read_objects(
    s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str,
) -> BTreeMap<String, Vec<u8>> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        out.insert(key, body.to_vec());
    }
    out
}

/// The Lambda event that delivers `records` (as the event source mapping would).
pub fn kinesis_event(stream_arn: &str, records: &[ShardRecord]) -> KinesisEvent {
    serde_json::from_value(tally_cloud::esm::kinesis_event(stream_arn, records))
        .expect("the mapping builds valid Kinesis events")
}

/// A file of `events/`.
/// Delivers a Kinesis event to a function as Lambda does, then again (Lambda's redelivery of the
/// same batch); neither delivery may ask for a retry.
pub async fn deliver_twice<H: tally_engine::BatchHandler>(
    f: &tally_aws::KinesisFunction<H>, event: &KinesisEvent,
) {
    for _ in 0..2 {
        let response = f
            .handle(lambda_runtime::LambdaEvent::new(
                event.clone(),
                lambda_runtime::Context::default(),
            ))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

pub fn event_file(name: &str) -> serde_json::Value {
    let path = local_root().join("events").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

pub fn local_root() -> PathBuf {
    project_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The function binaries of this build (`make test` builds them before the tests): the test
/// executable lives in `<target>/debug/deps`, they in `<target>/debug`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    for bin in [
        "gender-model",
        "results-writer",
        "gender-api",
        "rule-engine",
        "lake-writer",
        "tally",
        "flaky-consumer",
    ] {
        assert!(
            dir.join(bin).is_file(),
            "{}/{bin} is missing: run `cargo build --workspace --bins` first (make test does)",
            dir.display()
        );
    }
    dir
}

/// Test stacks are named after their process (`e2e12345`): the core databases and lake copies
/// that earlier test processes left under `.tally/` are removed, once per process (22 MB each).
fn sweep_earlier_test_stacks() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        for dir in [".tally/core", ".tally/lake"] {
            let Ok(entries) = std::fs::read_dir(local_root().join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
                let pid = &name[prefix.len()..];
                let of_a_test = !prefix.is_empty() && !pid.is_empty();
                let gone = pid.parse::<u32>().is_ok_and(|p| {
                    p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
                });
                if of_a_test && gone {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    });
}

/// Options for a local cloud of this test process: any free ports, this build's binaries.
pub fn cloud_options(stack: &str) -> CloudOptions {
    sweep_earlier_test_stacks();
    let mut opts = CloudOptions::new(local_root());
    opts.bin_dir = bin_dir();
    opts.edge_port = 0;
    opts.api_port = 0;
    opts.log_dir = bin_dir().join("test-logs/cloud");
    opts.stack_name = stack.to_string();
    opts
}

/// The stack name of the shared local cloud (the `tally` CLI gets it as `TALLY_STACK`).
pub fn shared_stack() -> String {
    format!("e2e{}", std::process::id())
}

/// The template's parameters for the seed's deployment, one function per gender model.
pub const PER_MODEL: &[(&str, &str)] = &[("GenderDeployment", "per-model")];

/// template.yaml with parameter overrides, as the local cloud reads it (stack `tally`).
pub fn template_with(params: &[(&str, &str)]) -> Template {
    let overrides: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Template::load(&local_root().join("template.yaml"), "tally", &overrides)
        .expect("template.yaml loads")
}

pub struct SharedCloud {
    pub edge_url: String,
    pub api_url: String,
    /// A listener for web pages whose origin (`http://127.0.0.2:PORT`) the stack's API lets
    /// through (`CollectAllowedOrigins`): the browser tests take it.
    pub web_pages: std::sync::Mutex<Option<std::net::TcpListener>>,
    pub web_origin: String,
}

/// One local cloud of template.yaml for the end-to-end tests of every pipeline, on a thread of
/// its own, started on first use.
pub fn shared_cloud() -> &'static SharedCloud {
    static CLOUD: OnceLock<SharedCloud> = OnceLock::new();
    CLOUD.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        // Another loopback address than the API's: a page of another origin, as on the web.
        let pages = std::net::TcpListener::bind("127.0.0.2:0").expect("a port on 127.0.0.2");
        let web_origin = format!("http://{}", pages.local_addr().unwrap());
        std::thread::spawn(move || {
            background_runtime().block_on(async move {
                let mut options = cloud_options(&shared_stack());
                options
                    .params
                    .insert("CollectAllowedOrigins".into(), web_origin.clone());
                let cloud = LocalCloud::start(options)
                    .await
                    .unwrap_or_else(|e| panic!("local cloud: {e}"));
                tx.send(SharedCloud {
                    edge_url: cloud.edge_url.clone(),
                    api_url: cloud.api_url.clone(),
                    web_pages: std::sync::Mutex::new(Some(pages)),
                    web_origin,
                })
                .unwrap();
                std::future::pending::<()>().await;
                drop(cloud);
            });
        });
        rx.recv().expect("local cloud started")
    })
}

/// Runs this build's `tally` against the cloud at `edge_url`, with the shared cloud's stack.
pub fn tally(args: &[&str], edge_url: &str) -> std::process::Output {
    tally_for(&shared_stack(), args, edge_url)
}

/// Runs `cmd` to its end; panics with `what` and its stderr unless it succeeded.
pub fn run_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the Python `script` with boto3 (the project's .venv) and `args`; its standard output as
/// JSON.
pub fn boto3_json(script: &str, args: &[&str]) -> serde_json::Value {
    let mut python = Command::new(local_root().join(".venv/bin/python"));
    let out = run_ok(python.arg("-c").arg(script).args(args), "boto3");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `tally` as [`tally_for`] does; panics unless it succeeded; its standard output.
pub fn tally_stdout(stack: &str, args: &[&str], edge_url: &str) -> String {
    let out = tally_for(stack, args, edge_url);
    assert!(
        out.status.success(),
        "tally {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs this build's `tally` against the cloud of `stack` at `edge_url`.
pub fn tally_for(stack: &str, args: &[&str], edge_url: &str) -> std::process::Output {
    Command::new(bin_dir().join("tally"))
        .args(args)
        .current_dir(local_root())
        .env("AWS_ENDPOINT_URL", edge_url)
        .env("TALLY_STACK", stack)
        .output()
        .unwrap()
}

/// Waits until `check` returns `Some`, polling; panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Chromium, from Debian's `chromium` package (`make setup` installs it).
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("Chromium is not installed: `make setup` installs Debian's chromium package");
}

/// The page at `url` as a headless Chromium renders it (scripts run, fetches answered), as HTML.
pub fn chromium_dom(url: &str) -> String {
    let profile = bin_dir().join(format!("test-logs/chromium-{}", std::process::id()));
    let out = run_ok(
        Command::new(chromium()).args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // The machine has no network: no background connections, updates or sync.
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1300",
            "--virtual-time-budget=8000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ]),
        "chromium",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Registers an app with the CLI on the cloud of `stack`; returns (app_id, key).
pub fn register_app(stack: &str, edge_url: &str, name: &str) -> (String, String) {
    let out = tally_for(stack, &["apps", "add", name], edge_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        key.starts_with("tk_") && key.len() > 60,
        "a key alone on the last line: {key}"
    );
    let list = tally_for(stack, &["apps", "list"], edge_url);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    let app_id = listed
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&name) && fields.get(3) == Some(&"active"))
        .map(|fields| fields[0].to_string())
        .unwrap_or_else(|| panic!("{name} listed: {listed}"));
    assert!(
        !listed.contains(&key),
        "keys are never stored or shown again"
    );
    (app_id, key)
}
