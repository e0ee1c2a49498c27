//! The local cloud: the whole application of `template.yaml` on this machine. Emulators behind one
//! edge endpoint, resources provisioned from the template, the real function binaries behind
//! Runtime API servers, Kinesis event source mappings, Firehose delivery, and the HTTP API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api_gateway::{routes, ApiGateway};
use crate::clients::{local_config, Clients, Endpoints};
use crate::core_db::CoreDatabase;
use crate::edge::{Control, EdgeRouter};
use crate::emulators::{port_is_free, EmulatorError, EmulatorPorts, Emulators};
use crate::esm::{Mapping, MappingSpec, QueueMapping, QueueMappingSpec};
use crate::faults::Faults;
use crate::firehose::spec::Processor;
use crate::firehose::{Delivery, DeliverySpec};
use crate::lambda::{function_specs, FunctionHost};
use crate::provision::{provision, ProvisionError, Provisioned};
use crate::scheduler::{Schedule, ScheduleSpec};
use tally_control::athena::LocalAthena;
use tally_control::cloudformation::Stacks;
use tally_control::iam::{role_key, role_of_function, Authorizer, Call};
use tally_stack::template::{Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("{0}")]
    Function(String),
    #[error("cannot keep the core database's secret in Secrets Manager: {0}")]
    CoreSecret(String),
    #[error("port {port} is in use ({what}): stop whatever holds it, or pick another with {flag}")]
    PortInUse {
        what: &'static str,
        port: u16,
        flag: &'static str,
    },
    #[error("the pipelines did not catch up within {0:?}; see .tally/logs")]
    NotIdle(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Consecutive checks in which the pipelines were caught up and made no invocation since the
/// check before: `needed` of them in a row mean idle.
#[derive(Debug)]
pub struct QuietChecks {
    needed: u32,
    streak: u32,
    last: Option<u64>,
}

impl QuietChecks {
    pub fn new(needed: u32) -> Self {
        QuietChecks {
            needed,
            streak: 0,
            last: None,
        }
    }

    /// One check: whether everything is caught up, and the invocations so far. True once idle.
    pub fn observe(&mut self, caught_up: bool, invocations: u64) -> bool {
        let unchanged = self.last == Some(invocations);
        self.last = Some(invocations);
        self.streak = if caught_up && unchanged {
            self.streak + 1
        } else {
            0
        };
        self.streak >= self.needed
    }
}

#[derive(Debug, Clone)]
pub struct CloudOptions {
    pub root: PathBuf,
    /// The SAM template; `CodeUri`s are relative to its folder, as in SAM.
    pub template: PathBuf,
    pub stack_name: String,
    pub params: BTreeMap<String, String>,
    /// 0: any free port.
    pub edge_port: u16,
    pub api_port: u16,
    /// Where the function binaries are (`target/release`).
    pub bin_dir: PathBuf,
    /// Logs of the emulators and functions.
    pub log_dir: PathBuf,
    /// Start event source mappings and Firehose deliveries (off for a single `tally invoke`).
    pub run_streams: bool,
    /// How long a poller waits after a failed read, and an SQS poller after an empty one
    /// (idle shards wait for a Kinesis write instead: `kinesis::wakeup`).
    pub idle_poll: Duration,
    /// Faults on demand (`--faults`), armed once the cloud is provisioned.
    pub faults: Arc<Faults>,
    /// Check every call of a function, mapping or delivery against its role's policies, as AWS
    /// does (on unless `tally up --no-iam`).
    pub enforce_iam: bool,
}

impl CloudOptions {
    pub fn new(root: PathBuf) -> Self {
        CloudOptions {
            template: root.join("template.yaml"),
            bin_dir: root.join("target/release"),
            log_dir: root.join(".tally/logs"),
            root,
            stack_name: "tally".into(),
            params: BTreeMap::new(),
            edge_port: 4566,
            api_port: 5000,
            run_streams: true,
            idle_poll: Duration::from_millis(100),
            faults: Faults::none(),
            enforce_iam: true,
        }
    }
}

/// What runs between requests: the event source mappings and the Firehose deliveries. The edge's
/// control endpoint (`POST /_tally/flush`, which `tally sql` calls) shares it with the cloud.
pub struct Activity {
    pub mappings: Vec<Arc<Mapping>>,
    pub queue_mappings: Vec<Arc<QueueMapping>>,
    pub deliveries: Vec<Arc<Delivery>>,
}

impl Activity {
    /// True when every mapping has read its shards or queue to the end and has nothing in hand.
    pub fn caught_up(&self) -> bool {
        self.mappings.iter().all(|m| m.caught_up())
            && self.queue_mappings.iter().all(|m| m.caught_up())
    }

    /// Invocations of every mapping so far.
    pub fn invocations(&self) -> u64 {
        let streams: u64 = self
            .mappings
            .iter()
            .map(|m| m.stats.lock().unwrap().invocations)
            .sum();
        let queues: u64 = self
            .queue_mappings
            .iter()
            .map(|m| m.stats.lock().unwrap().invocations)
            .sum();
        streams + queues
    }

    /// Waits until the pipelines are idle: every mapping caught up and no invocation between two
    /// checks, twice in a row (an output stream's consumer may start after its producer ended).
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), CloudError> {
        let deadline = Instant::now() + timeout;
        let mut quiet = QuietChecks::new(2);
        while !quiet.observe(self.caught_up(), self.invocations()) {
            if Instant::now() > deadline {
                return Err(CloudError::NotIdle(timeout));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    }

    /// Everything put before the call through to the lake: the stream functions idle (their
    /// outputs and dead letters written), every Firehose buffer delivered now, and every
    /// notification of those objects handled by the queue's consumers.
    pub async fn flush(&self, timeout: Duration) -> Result<(), CloudError> {
        let deadline = Instant::now() + timeout;
        self.wait_idle(timeout).await?;
        for d in &self.deliveries {
            d.flush_now().await;
        }
        // S3 sends its notifications as objects are written, so they are queued by now.
        let delivered = Instant::now();
        while !self.queue_mappings.iter().all(|q| q.empty_since(delivered)) {
            if Instant::now() > deadline {
                return Err(CloudError::NotIdle(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Control for Activity {
    fn flush(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            Activity::flush(self, Duration::from_secs(120))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

pub struct LocalCloud {
    pub template: Template,
    pub edge_url: String,
    pub api_url: String,
    pub router: Arc<EdgeRouter>,
    pub clients: Clients,
    pub provisioned: Vec<Provisioned>,
    pub functions: BTreeMap<String, Arc<FunctionHost>>,
    pub mappings: Vec<Arc<Mapping>>,
    pub queue_mappings: Vec<Arc<QueueMapping>>,
    pub deliveries: Vec<Arc<Delivery>>,
    pub activity: Arc<Activity>,
    /// Faults on demand, and what they injected so far.
    pub faults: Arc<Faults>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    delivery_tasks: Vec<JoinHandle<()>>,
    emulators: Emulators,
    /// Seed 002's core database (MariaDB): `core.url` is what `tally core url` prints.
    pub core: CoreDatabase,
    /// EventBridge Scheduler's schedules by logical id (running with the streams).
    pub schedules: BTreeMap<String, Arc<Schedule>>,
}

/// The stack's parameters, with `CoreDbEndpoint` and `CoreDbSecretArn` (when `template` declares
/// them) of the local MariaDB, whose reader's credentials go into a Secrets Manager secret as on
/// AWS, unless they name another database. Its connection is encrypted as on AWS
/// (`CoreDbSslMode` REQUIRED, the default: the local server's certificate is self-signed).
async fn core_db_params(
    opts: &CloudOptions, template: &Template, core: &CoreDatabase, edge_url: &str,
) -> Result<BTreeMap<String, String>, CloudError> {
    let mut params = opts.params.clone();
    let declared = |name: &str| template.scopes[0].parameters.contains_key(name);
    let given = params.contains_key("CoreDbEndpoint") || params.contains_key("CoreDbSecretArn");
    if given || !declared("CoreDbEndpoint") || !declared("CoreDbSecretArn") {
        return Ok(params);
    }
    let secrets = aws_sdk_secretsmanager::Client::new(&local_config(edge_url).await);
    let secret = secrets
        .create_secret()
        .name(format!("{}/core-db/reader", opts.stack_name))
        .description("The core database's reader, for CoreExtractorFunction")
        .secret_string(core.reader.to_string())
        .send()
        .await
        .map_err(|e| {
            CloudError::CoreSecret(
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            )
        })?;
    params.insert("CoreDbEndpoint".into(), core.endpoint.clone());
    params.insert(
        "CoreDbSecretArn".into(),
        secret.arn().unwrap_or_default().to_string(),
    );
    Ok(params)
}

async fn bind(
    port: u16, what: &'static str, flag: &'static str,
) -> Result<TcpListener, CloudError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => CloudError::PortInUse { what, port, flag },
            _ => CloudError::Io(e),
        })
}

impl LocalCloud {
    pub async fn start(opts: CloudOptions) -> Result<LocalCloud, CloudError> {
        let mut template = Template::load(&opts.template, &opts.stack_name, &opts.params)?;
        for (port, what, flag) in [
            (opts.edge_port, "edge endpoint", "--edge-port"),
            (opts.api_port, "API", "--api-port"),
        ] {
            if port != 0 && !port_is_free(port) {
                return Err(CloudError::PortInUse { what, port, flag });
            }
        }
        let ports = EmulatorPorts::any_free()?;
        let log_dir = opts.log_dir.clone();
        let root = opts.root.clone();
        // Blocking: the emulators and the core database are tied to this thread's lifetime (they
        // die with it). The database's server starts while the emulators do.
        let (emulators, core) = tokio::task::block_in_place(|| {
            let core = CoreDatabase::spawn(&root, &opts.stack_name, ports.core_db, &log_dir)?;
            match Emulators::start(&root, ports, &log_dir) {
                Ok(emulators) => Ok::<_, EmulatorError>((emulators, core.ready()?)),
                Err(e) => {
                    core.abandon();
                    Err(e)
                }
            }
        })?;

        let edge_listener = bind(opts.edge_port, "edge endpoint", "--edge-port").await?;
        let edge_url = format!("http://{}", edge_listener.local_addr()?);
        let router = EdgeRouter::with_faults(ports.backends(), opts.faults.clone());
        let mut servers = vec![tokio::spawn(router.clone().serve(edge_listener))];
        let endpoints = Endpoints::all(&edge_url);
        let clients = Clients::new(&endpoints).await;
        // The template again, with the core database's parameters now that it runs.
        let params = core_db_params(&opts, &template, &core, &edge_url).await?;
        if params != opts.params {
            template = Template::load(&opts.template, &opts.stack_name, &params)?;
        }
        template.queue_endpoint = edge_url.clone();
        let provisioned = provision(&template, &clients).await?;
        if opts.enforce_iam {
            router.enforce(Arc::new(Authorizer::new(&template)?));
        }
        router.query_with(LocalAthena::new(
            root.clone(),
            root.join(".tally/lake").join(&opts.stack_name),
            template.physical_name("ArchiveBucket"),
            clients.s3.clone(),
        ));
        // What mappings and deliveries call, they call with the role AWS would use.
        let role_clients = |role: String| {
            let endpoints = endpoints.clone();
            async move { Clients::signing_as(&endpoints, &role_key(&role)).await }
        };

        let mut functions = BTreeMap::new();
        for spec in function_specs(&template, &opts, &edge_url)? {
            let id = spec.logical_id.clone();
            let host = FunctionHost::start(spec)
                .await
                .map_err(|e| CloudError::Function(e.to_string()))?;
            functions.insert(id, host);
        }

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut mappings = Vec::new();
        let mut queue_mappings = Vec::new();
        let mut deliveries = Vec::new();
        let mut delivery_tasks = Vec::new();
        let mapping_specs = MappingSpec::all(&template)?;
        let queue_specs = QueueMappingSpec::all(&template)?;
        let delivery_specs: Vec<DeliverySpec> = template
            .of_kind("AWS::KinesisFirehose::DeliveryStream")
            .map(|r| DeliverySpec::from_template(&template, r))
            .collect::<Result<_, _>>()?;
        if opts.run_streams {
            for spec in mapping_specs {
                let host = functions[&spec.function].clone();
                let writes = router.kinesis_writes().watch(&spec.stream_name);
                let role = role_clients(role_of_function(&template, &spec.function)?).await;
                let m = Mapping::new(
                    spec,
                    host,
                    role.kinesis,
                    role.sqs,
                    edge_url.clone(),
                    opts.idle_poll,
                    writes,
                );
                servers.push(tokio::spawn(m.clone().run(shutdown_rx.clone())));
                mappings.push(m);
            }
            for spec in queue_specs {
                let host = functions[&spec.function].clone();
                let role = role_clients(role_of_function(&template, &spec.function)?).await;
                let q = QueueMapping::new(spec, host, role.sqs, &edge_url, opts.idle_poll);
                servers.push(tokio::spawn(q.clone().run(shutdown_rx.clone())));
                queue_mappings.push(q);
            }
            for spec in delivery_specs {
                let source = role_clients(spec.source_role.clone()).await;
                let delivery = role_clients(spec.delivery_role.clone()).await;
                // What its delivery role may do, decided once at start (without IAM, anything).
                let authorizer = router.authorizer();
                let role_may = |action: &str, resource: &str| match &authorizer {
                    None => true,
                    Some(iam) => iam.role(&spec.delivery_role).is_some_and(|role| {
                        iam.check_call(role, &Call::new(action, resource)).is_ok()
                    }),
                };
                // The transformations its role may invoke.
                let may_invoke =
                    |host: &FunctionHost| role_may("lambda:InvokeFunction", &host.spec().arn);
                let invocable: BTreeMap<String, Arc<FunctionHost>> = spec
                    .processors
                    .iter()
                    .filter_map(|p| match p {
                        Processor::Lambda(f) => functions.get_key_value(f),
                        _ => None,
                    })
                    .filter(|(_, host)| may_invoke(host))
                    .map(|(id, host)| (id.clone(), host.clone()))
                    .collect();
                // Its delivery errors' log, if its role may write there.
                let error_log = spec.error_log.as_ref().and_then(|log| {
                    let may = role_may("logs:PutLogEvents", &log.arn());
                    if !may {
                        eprintln!(
                            "{}: delivery errors not logged: its role may not logs:PutLogEvents to {}",
                            spec.logical_id, log.group
                        );
                    }
                    may.then(|| opts.log_dir.join(format!("{}.log", spec.logical_id)))
                });
                let d = Delivery::new(
                    spec,
                    source.kinesis,
                    delivery.s3,
                    invocable,
                    opts.idle_poll,
                    router.kinesis_writes().clone(),
                    opts.faults.clone(),
                    error_log,
                );
                delivery_tasks.push(tokio::spawn(d.clone().run(shutdown_rx.clone())));
                deliveries.push(d);
            }
        }

        let mut schedules = BTreeMap::new();
        for spec in ScheduleSpec::all(&template)? {
            let target = functions[&spec.function].clone();
            let schedule = Schedule::new(spec, target, router.authorizer());
            if opts.run_streams {
                if schedule.spec.every.is_none() {
                    eprintln!(
                        "{}: {} is not run locally (only rate(...) schedules are)",
                        schedule.spec.logical_id, schedule.spec.expression
                    );
                }
                servers.push(tokio::spawn(schedule.clone().run(shutdown_rx.clone())));
            }
            schedules.insert(schedule.spec.logical_id.clone(), schedule);
        }

        let activity = Arc::new(Activity {
            mappings: mappings.clone(),
            queue_mappings: queue_mappings.clone(),
            deliveries: deliveries.clone(),
        });
        router.set_control(activity.clone());
        router.invoke_with(
            functions
                .iter()
                .flat_map(|(id, host)| {
                    [
                        (id.clone(), host.clone()),
                        (template.physical_name(id), host.clone()),
                    ]
                })
                .collect(),
        );

        // Faults from here on: provisioning is not what they test.
        opts.faults.arm();

        // The API last: when it answers, everything else is running.
        let api_listener = bind(opts.api_port, "API", "--api-port").await?;
        let api_url = format!("http://{}", api_listener.local_addr()?);
        router.describe(Arc::new(Stacks::of(&template, &api_url)?));
        servers.push(tokio::spawn(
            ApiGateway::new(routes(&template)?, functions.clone(), router.authorizer())
                .serve(api_listener),
        ));

        Ok(LocalCloud {
            template,
            edge_url,
            api_url,
            router,
            clients,
            provisioned,
            functions,
            mappings,
            queue_mappings,
            deliveries,
            activity,
            faults: opts.faults.clone(),
            shutdown,
            servers,
            delivery_tasks,
            emulators,
            core,
            schedules,
        })
    }

    /// Invokes a function by logical id or physical name.
    pub async fn invoke(
        &self, function: &str, payload: Vec<u8>,
    ) -> Result<hyper::body::Bytes, CloudError> {
        let id = self
            .template
            .logical_id_of(function)
            .filter(|id| self.functions.contains_key(*id));
        let Some(id) = id else {
            if let Some(why) = self.template.why_absent(function) {
                return Err(CloudError::Function(format!(
                    "{why} (a --param chooses the deployment)"
                )));
            }
            let known: Vec<&str> = self.functions.keys().map(String::as_str).collect();
            return Err(CloudError::Function(format!(
                "no function {function} in template.yaml (functions: {})",
                known.join(", ")
            )));
        };
        self.functions[id]
            .invoke(payload)
            .await
            .map_err(|e| CloudError::Function(format!("{id}: {e}")))
    }

    /// True when every mapping has read its shards or queue to the end and has nothing in hand.
    pub fn caught_up(&self) -> bool {
        self.activity.caught_up()
    }

    /// Invocations of every mapping so far.
    pub fn invocations(&self) -> u64 {
        self.activity.invocations()
    }

    /// Waits until the pipelines are idle (see [`Activity::wait_idle`]).
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), CloudError> {
        self.activity.wait_idle(timeout).await
    }

    /// Everything put before the call through to the lake (see [`Activity::flush`]).
    pub async fn flush(&self, timeout: Duration) -> Result<(), CloudError> {
        self.activity.flush(timeout).await
    }

    /// Stops the pollers and delivers what Firehose buffered; the emulators keep running.
    pub async fn drain(&mut self) {
        let _ = self.shutdown.send(true);
        for t in self.delivery_tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }

    /// Stops everything; Firehose buffers are delivered first, so nothing is lost.
    pub async fn stop(mut self) {
        self.drain().await;
        for s in self.servers.drain(..) {
            s.abort();
        }
        for f in self.functions.values() {
            f.stop().await;
        }
        tokio::task::block_in_place(|| {
            self.emulators.stop();
            self.core.stop();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_means_caught_up_with_no_invocation_between_checks_twice() {
        let mut q = QuietChecks::new(2);
        assert!(
            !q.observe(true, 5),
            "a first check has nothing to compare with"
        );
        assert!(!q.observe(true, 6), "an invocation happened since");
        assert!(!q.observe(true, 6));
        assert!(q.observe(true, 6));
        assert!(!q.observe(false, 6), "not caught up");
        assert!(!q.observe(true, 6));
        assert!(!q.observe(true, 7), "an invocation resets the streak");
    }
}
