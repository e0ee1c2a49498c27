//! Runs a function's real compiled binary behind a Lambda Runtime API server, the same
//! `lambda_runtime` code path as in AWS: the process polls `/invocation/next`, answers on
//! `/response` or `/error`. Cold start on the first invocation, warm reuse after, a crashed or
//! timed-out process is replaced on the next invocation.
//!
//! Like Lambda, a function runs as a pool of execution environments ([`Instance`]s, each a
//! process behind its own Runtime API): an invocation takes an idle instance or, when every one
//! is busy, starts another (a cold start), up to the function's `ReservedConcurrentExecutions`
//! ([`DEFAULT_CONCURRENCY`] when unset). Beyond that limit an invocation waits for a free instance
//! where Lambda would throttle it (and its callers retry).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use super::spec::FunctionSpec;
use crate::faults::Fault;
use crate::http::{full, json_response, Body};

/// The first of `paths` that is a file on this machine.
fn first_file(paths: &[&'static str]) -> Option<&'static str> {
    paths
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).is_file())
}

/// util-linux's `setpriv` (essential on Debian), when this machine has it.
fn die_with_parent() -> Option<&'static str> {
    first_file(&["/usr/bin/setpriv", "/bin/setpriv"])
}

/// The machine's CA bundle, for `SSL_CERT_FILE`. Lambda's Amazon Linux keeps its roots in one
/// bundle; Debian adds a directory of about 150 per-CA files, which the SDK's TLS setup reads
/// one by one (rustls-native-certs) besides the bundle, about 4 ms of every cold start here.
/// The bundle alone holds the same roots (Debian builds it from those files).
fn ca_bundle() -> Option<&'static str> {
    first_file(&[
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The function returned an error (`/invocation/{id}/error`).
    Function { error_type: String, message: String },
    /// The process failed before it was ready (`/init/error`, or it exited).
    Init(String),
    /// The process exited while handling the invocation.
    Crashed(String),
    /// No answer within the function's timeout; the process was stopped.
    Timeout(Duration),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function {
                error_type,
                message,
            } => write!(f, "function error {error_type}: {message}"),
            InvokeError::Init(m) => write!(f, "function failed to start: {m}"),
            InvokeError::Crashed(m) => {
                write!(f, "function process exited during the invocation: {m}")
            }
            InvokeError::Timeout(d) => {
                write!(f, "task timed out after {:.2} seconds", d.as_secs_f64())
            }
        }
    }
}

impl std::error::Error for InvokeError {}

/// Instances of a function the local cloud runs at most at once when the template sets no
/// `ReservedConcurrentExecutions`: enough for every shard's poller and an API's bursts on a small
/// machine (AWS's limit is the account's unreserved concurrency, 1,000 by default).
pub const DEFAULT_CONCURRENCY: usize = 10;

/// Counters for `tally up`'s status and the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct HostStats {
    /// Execution environments created (each starts cold).
    pub instances: u64,
    /// The most invocations that ran at the same time.
    pub max_concurrent: u64,
    pub cold_starts: u64,
    pub invocations: u64,
    pub errors: u64,
    pub init_ms_max: f64,
    pub init_ms_last: f64,
    /// Time spent in invocations, from event handed over to response (the billed duration).
    pub busy_ms: f64,
}

struct Pending {
    id: String,
    payload: Bytes,
    deadline_ms: i64,
    reply: oneshot::Sender<Result<Bytes, InvokeError>>,
}

struct Shared {
    spec: FunctionSpec,
    /// Invocations for the current process. Each process gets its own queue, so a `/next` left
    /// waiting by a process that died cannot take an invocation meant for its successor.
    queue: Mutex<Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Result<Bytes, InvokeError>>>>,
    init_error: Mutex<Option<String>>,
    /// When the current process was spawned; cleared at its first `/next` (init done).
    spawned_at: Mutex<Option<Instant>>,
    /// The function's counters, shared by its instances.
    stats: Arc<Mutex<HostStats>>,
    /// The current process, for a crash on demand (`lambda:crash`).
    pid: Mutex<Option<u32>>,
    /// Invocations whose process is killed as it posts their answer (after all their writes).
    crash_at_answer: Mutex<std::collections::HashSet<String>>,
}

struct Process {
    child_pid: u32,
    exited: watch::Receiver<Option<String>>,
    queue: mpsc::Sender<Pending>,
}

/// A function: its pool of instances.
pub struct FunctionHost {
    spec: FunctionSpec,
    stats: Arc<Mutex<HostStats>>,
    /// One permit per instance the function may run at once.
    permits: tokio::sync::Semaphore,
    /// Every instance created, and those not serving an invocation now.
    all: Mutex<Vec<Arc<Instance>>>,
    idle: Mutex<Vec<Arc<Instance>>>,
    running: Mutex<u64>,
}

impl FunctionHost {
    /// Checks the function's binary and starts its first instance's Runtime API (its process
    /// starts at the first invocation).
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Arc<Self>> {
        if !spec.binary.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "function {}: binary {} not found: build the functions with `make build` \
                     (or `make release` for the deployed build)",
                    spec.logical_id,
                    spec.binary.display()
                ),
            ));
        }
        let concurrency = spec
            .reserved_concurrency
            .map_or(DEFAULT_CONCURRENCY, |n| n as usize)
            .max(1);
        let host = Arc::new(Self {
            stats: Arc::default(),
            permits: tokio::sync::Semaphore::new(concurrency),
            all: Mutex::default(),
            idle: Mutex::default(),
            running: Mutex::new(0),
            spec,
        });
        let first = host.new_instance().await?;
        host.idle.lock().unwrap().push(first);
        Ok(host)
    }

    async fn new_instance(&self) -> std::io::Result<Arc<Instance>> {
        let instance = Arc::new(Instance::start(self.spec.clone(), self.stats.clone()).await?);
        self.stats.lock().unwrap().instances += 1;
        self.all.lock().unwrap().push(instance.clone());
        Ok(instance)
    }

    /// The Runtime API addresses (`AWS_LAMBDA_RUNTIME_API`) of the instances created so far.
    pub fn runtime_apis(&self) -> Vec<String> {
        let all = self.all.lock().unwrap();
        all.iter().map(|i| i.runtime_api.clone()).collect()
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    pub fn stats(&self) -> HostStats {
        self.stats.lock().unwrap().clone()
    }

    /// Invokes the function with `payload` (a JSON event) on an idle instance, or on a new one
    /// while the function is below its concurrency; waits for a free one otherwise.
    pub async fn invoke(&self, payload: Vec<u8>) -> Result<Bytes, InvokeError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| InvokeError::Init("the function is stopped".into()))?;
        // Warm first, the most recently used (as Lambda prefers), else a new environment.
        let reused = self.idle.lock().unwrap().pop();
        let instance = match reused {
            Some(i) => i,
            None => self
                .new_instance()
                .await
                .map_err(|e| InvokeError::Init(e.to_string()))?,
        };
        let lease = Lease::new(self, instance);
        lease.instance.invoke(payload).await
    }

    /// Ends every instance's process, as Lambda recycles environments: each one's next
    /// invocation is a cold start. The host keeps serving.
    pub async fn recycle(&self) {
        let all = self.all.lock().unwrap().clone();
        for instance in all {
            instance.recycle().await;
        }
    }

    /// Stops the host: every instance's process and Runtime API; invocations waiting for an
    /// instance fail.
    pub async fn stop(&self) {
        self.permits.close();
        let all = self.all.lock().unwrap().clone();
        for instance in all {
            instance.stop().await;
        }
    }
}

/// An instance serving one invocation; back to the idle ones when done, even when the caller
/// gives up (an HTTP client that hangs up drops the invocation's future).
struct Lease<'a> {
    host: &'a FunctionHost,
    instance: Arc<Instance>,
}

impl<'a> Lease<'a> {
    fn new(host: &'a FunctionHost, instance: Arc<Instance>) -> Self {
        let mut running = host.running.lock().unwrap();
        *running += 1;
        let mut stats = host.stats.lock().unwrap();
        stats.max_concurrent = stats.max_concurrent.max(*running);
        Lease { host, instance }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        *self.host.running.lock().unwrap() -= 1;
        self.host.idle.lock().unwrap().push(self.instance.clone());
    }
}

/// One execution environment: a process (started at its first invocation, replaced after a
/// crash or a timeout) behind its own Runtime API, serving one invocation at a time.
struct Instance {
    shared: Arc<Shared>,
    runtime_api: String,
    /// The Runtime API server's task: stopped with the host.
    server: AbortHandle,
    process: tokio::sync::Mutex<Option<Process>>,
}

impl Instance {
    /// Starts the Runtime API server for `spec`; the process starts at the first invocation.
    async fn start(spec: FunctionSpec, stats: Arc<Mutex<HostStats>>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let runtime_api = listener.local_addr()?.to_string();
        let (_, queue_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            spec,
            queue: Mutex::new(Arc::new(tokio::sync::Mutex::new(queue_rx))),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            spawned_at: Mutex::new(None),
            stats,
            pid: Mutex::new(None),
            crash_at_answer: Mutex::new(Default::default()),
        });
        let api = shared.clone();
        let server = tokio::spawn(crate::http::serve(
            "runtime api",
            listener,
            move |req, _| serve_runtime_api(api.clone(), req),
        ))
        .abort_handle();
        Ok(Self {
            shared,
            runtime_api,
            server,
            process: tokio::sync::Mutex::new(None),
        })
    }

    /// Invokes the function with `payload` (a JSON event) and returns its response body.
    async fn invoke(&self, payload: Vec<u8>) -> Result<Bytes, InvokeError> {
        // The process lock is held for the whole invocation: one at a time per instance.
        let mut process = self.process.lock().await;
        let running = matches!(&*process, Some(p) if p.exited.borrow().is_none());
        if !running {
            *process = Some(self.spawn().map_err(|e| InvokeError::Init(e.to_string()))?);
        }
        let mut exited = process.as_ref().unwrap().exited.clone();
        let timeout = self.shared.spec.timeout;
        let (tx, rx) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        self.crash_on_demand(&id);
        let invocation = id.clone();
        let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
        self.shared.stats.lock().unwrap().invocations += 1;
        let queue = process.as_ref().unwrap().queue.clone();
        if queue
            .send(Pending {
                id,
                payload: Bytes::from(payload),
                deadline_ms,
                reply: tx,
            })
            .await
            .is_err()
        {
            return Err(InvokeError::Init("runtime API stopped".into()));
        }
        let handed_over = Instant::now();
        let outcome = tokio::select! {
            r = rx => r.unwrap_or_else(|_| Err(InvokeError::Crashed("the invocation was abandoned".into()))),
            status = exited.wait_for(|e| e.is_some()) => {
                let status = status.map(|s| s.clone().unwrap_or_default()).unwrap_or_default();
                let init = self.shared.init_error.lock().unwrap().take();
                let started = self.shared.spawned_at.lock().unwrap().is_none();
                Err(match init {
                    Some(m) => InvokeError::Init(m),
                    None if !started => InvokeError::Init(format!("process exited before it was ready ({status}); see {}", self.shared.spec.log_file.display())),
                    None => InvokeError::Crashed(format!("{status}; see {}", self.shared.spec.log_file.display())),
                })
            }
            _ = tokio::time::sleep(timeout) => {
                // As in AWS: the environment is stopped, the next invocation starts a new one.
                if let Some(p) = process.as_ref() { kill(p.child_pid); }
                Err(InvokeError::Timeout(timeout))
            }
        };
        self.shared.stats.lock().unwrap().busy_ms += handed_over.elapsed().as_secs_f64() * 1e3;
        self.shared
            .crash_at_answer
            .lock()
            .unwrap()
            .remove(&invocation);
        if matches!(outcome, Err(InvokeError::Timeout(_))) {
            // Wait until it is gone, so the next invocation cannot reach it.
            let _ = tokio::time::timeout(Duration::from_secs(5), exited.wait_for(|e| e.is_some()))
                .await;
        }
        if !matches!(outcome, Ok(_) | Err(InvokeError::Function { .. })) {
            *process = None; // dropping its queue releases any `/next` it left behind
        }
        if outcome.is_err() {
            self.shared.in_flight.lock().unwrap().clear();
            self.shared.stats.lock().unwrap().errors += 1;
            // As Lambda reports them in the function's logs.
            if let Err(e) = &outcome {
                if let Ok(mut log) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.shared.spec.log_file)
                {
                    use std::io::Write;
                    let _ = writeln!(log, "tally local cloud: invocation failed: {e}");
                }
            }
        }
        outcome
    }

    /// `lambda:crash`: this invocation's process dies as it posts its answer, or earlier, at a
    /// random moment while the function holds the event.
    fn crash_on_demand(&self, id: &str) {
        let faults = &self.shared.spec.faults;
        if !faults.strikes(Fault::LambdaCrash) {
            return;
        }
        self.shared
            .crash_at_answer
            .lock()
            .unwrap()
            .insert(id.to_string());
        if faults.draw() < 0.5 {
            let delay = Duration::from_secs_f64(faults.draw() * 0.05);
            let (shared, id) = (self.shared.clone(), id.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let holding = shared.in_flight.lock().unwrap().contains_key(&id);
                if let (true, Some(pid)) = (holding, *shared.pid.lock().unwrap()) {
                    kill(pid);
                }
            });
        }
    }

    fn spawn(&self) -> std::io::Result<Process> {
        let spec = &self.shared.spec;
        if let Some(dir) = spec.log_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)?;
        // The function dies with the local cloud, even a killed one. `setpriv` sets that signal
        // and then execs the binary (same pid); a `pre_exec` hook would do it in-process, but it
        // makes std fork instead of posix_spawn, and forking a cloud of a few hundred MB took
        // longer than the function's whole init (measured: 55 ms from an 800 MB process, 0.4 ms
        // spawned).
        let mut cmd = match die_with_parent() {
            Some(setpriv) => {
                let mut c = tokio::process::Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(&spec.binary);
                c
            }
            None => tokio::process::Command::new(&spec.binary),
        };
        // Only what Lambda gives a function: the template's variables and the runtime's own.
        cmd.env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", &self.runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.physical_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.physical_name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("_HANDLER", "bootstrap")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some(bundle) = ca_bundle().filter(|_| !spec.env.contains_key("SSL_CERT_FILE")) {
            cmd.env("SSL_CERT_FILE", bundle);
        }
        *self.shared.init_error.lock().unwrap() = None;
        let (queue, queue_rx) = mpsc::channel(1);
        *self.shared.queue.lock().unwrap() = Arc::new(tokio::sync::Mutex::new(queue_rx));
        *self.shared.spawned_at.lock().unwrap() = Some(Instant::now());
        let mut child = cmd.spawn()?;
        self.shared.stats.lock().unwrap().cold_starts += 1;
        let child_pid = child.id().unwrap_or_default();
        *self.shared.pid.lock().unwrap() = Some(child_pid);
        let (tx, exited) = watch::channel(None);
        tokio::spawn(async move {
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let _ = tx.send(Some(status));
        });
        Ok(Process {
            child_pid,
            exited,
            queue,
        })
    }

    /// Ends the process, as Lambda recycles an environment: its next invocation is a cold start.
    async fn recycle(&self) {
        if let Some(p) = self.process.lock().await.take() {
            kill(p.child_pid);
        }
    }

    async fn stop(&self) {
        self.server.abort();
        self.recycle().await;
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn kill(pid: u32) {
    if pid != 0 {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Body> {
    json_response(status, body)
}

/// Hands the function's answer to the waiting invocation `id`.
fn answer(shared: &Shared, id: &str, outcome: Result<Bytes, InvokeError>) -> Response<Body> {
    match shared.in_flight.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        None => reply(
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"unknown request id"}"#,
        ),
    }
}

async fn serve_runtime_api(
    shared: Arc<Shared>, req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rest = path
        .strip_prefix("/2018-06-01/runtime/")
        .unwrap_or_default();
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, ["invocation", "next"]) => {
            if let Some(t) = shared.spawned_at.lock().unwrap().take() {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                let mut stats = shared.stats.lock().unwrap();
                stats.init_ms_last = ms;
                stats.init_ms_max = stats.init_ms_max.max(ms);
            }
            let queue = shared.queue.lock().unwrap().clone();
            let next = queue.lock().await.recv().await;
            let Some(p) = next else {
                return Ok(reply(
                    StatusCode::GONE,
                    r#"{"errorMessage":"shutting down"}"#,
                ));
            };
            shared
                .in_flight
                .lock()
                .unwrap()
                .insert(p.id.clone(), p.reply);
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", &p.id)
                .header("lambda-runtime-deadline-ms", p.deadline_ms.to_string())
                .header("lambda-runtime-invoked-function-arn", &shared.spec.arn)
                .header(
                    "lambda-runtime-trace-id",
                    format!(
                        "Root=1-{:08x}-{}",
                        chrono::Utc::now().timestamp(),
                        &p.id.replace('-', "")[..24]
                    ),
                )
                .body(full(p.payload))
                .expect("valid response"))
        }
        (Method::POST, ["invocation", id, "response"]) => {
            if shared.crash_at_answer.lock().unwrap().remove(*id) {
                // Everything the invocation wrote stays; its answer is lost with its process.
                if let Some(pid) = *shared.pid.lock().unwrap() {
                    kill(pid);
                }
                return Ok(reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"errorMessage":"the process was killed (tally up --faults lambda:crash)"}"#,
                ));
            }
            Ok(answer(&shared, id, Ok(body)))
        }
        (Method::POST, ["invocation", id, "error"]) => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let error = InvokeError::Function {
                error_type: v["errorType"]
                    .as_str()
                    .map(String::from)
                    .or(error_type)
                    .unwrap_or_else(|| "Unhandled".into()),
                message: v["errorMessage"].as_str().unwrap_or_default().to_string(),
            };
            Ok(answer(&shared, id, Err(error)))
        }
        (Method::POST, ["init", "error"]) => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let message = v["errorMessage"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).to_string());
            *shared.init_error.lock().unwrap() = Some(message);
            Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
        }
        _ => Ok(reply(
            StatusCode::NOT_FOUND,
            r#"{"errorMessage":"not a Runtime API path"}"#,
        )),
    }
}
