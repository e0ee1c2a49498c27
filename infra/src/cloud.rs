//! The local cloud: the whole application of `template.yaml` on this machine. Emulators behind one
//! edge endpoint, resources provisioned from the template, the real function binaries behind
//! Runtime API servers, Kinesis event source mappings, Firehose delivery, and the HTTP API.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api_gateway::{routes, ApiGateway};
use crate::clients::{Clients, Endpoints};
use crate::edge::{EdgeRouter, Routes};
use crate::emulators::{port_is_free, EmulatorError, EmulatorPorts, Emulators};
use crate::esm::{Mapping, MappingSpec};
use crate::firehose::{Delivery, DeliverySpec};
use crate::function_host::{FunctionHost, FunctionSpec};
use crate::provision::{provision, ProvisionError, Provisioned};
use crate::template::{scalar_string, Template, TemplateError, REGION};

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
    #[error("port {port} is in use ({what}): stop whatever holds it, or pick another with {flag}")]
    PortInUse {
        what: &'static str,
        port: u16,
        flag: &'static str,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
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
    pub idle_poll: Duration,
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
        }
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
    pub deliveries: Vec<Arc<Delivery>>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    delivery_tasks: Vec<JoinHandle<()>>,
    emulators: Emulators,
}

async fn bind(
    port: u16,
    what: &'static str,
    flag: &'static str,
) -> Result<TcpListener, CloudError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => CloudError::PortInUse { what, port, flag },
            _ => CloudError::Io(e),
        })
}

/// The binary a function runs: its crate's package name (or `BuildProperties.Binary`).
fn function_binary(
    opts: &CloudOptions,
    id: &str,
    props: &Json,
    metadata: &Json,
) -> Result<PathBuf, CloudError> {
    let method = metadata
        .get("BuildMethod")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if method != "rust-cargolambda" {
        return Err(TemplateError::Unsupported {
            what: format!("BuildMethod {method:?} (only rust-cargolambda runs locally)"),
            at: format!("Resources.{id}.Metadata"),
        }
        .into());
    }
    if let Some(bin) = metadata
        .get("BuildProperties")
        .and_then(|b| b.get("Binary"))
        .and_then(Json::as_str)
    {
        return Ok(opts.bin_dir.join(bin));
    }
    let code = props.get("CodeUri").and_then(Json::as_str).unwrap_or(".");
    let base = opts.template.parent().unwrap_or(&opts.root);
    let manifest = base.join(code).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        CloudError::Function(format!(
            "function {id}: cannot read {}: {e}",
            manifest.display()
        ))
    })?;
    let name = text
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            l.trim().strip_prefix("name").map(|r| {
                r.trim_start_matches([' ', '='])
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
        })
        .ok_or_else(|| {
            CloudError::Function(format!(
                "function {id}: no package name in {}",
                manifest.display()
            ))
        })?;
    Ok(opts.bin_dir.join(name))
}

/// How to run each function of the template: its binary, and the environment the template gives
/// it, pointed at the edge endpoint `edge_url`.
pub fn function_specs(
    template: &Template,
    opts: &CloudOptions,
    edge_url: &str,
) -> Result<Vec<FunctionSpec>, CloudError> {
    let globals = template.resolve(&template.globals, "Globals")?;
    let gf = &globals["Function"];
    let mut specs = Vec::new();
    for f in template.of_kind("AWS::Serverless::Function") {
        let props = template.resolved_properties(f)?;
        let get = |k: &str| props.get(k).or(gf.get(k));
        let runtime = get("Runtime").and_then(Json::as_str).unwrap_or_default();
        if !runtime.starts_with("provided") {
            return Err(TemplateError::Unsupported {
                what: format!("Runtime {runtime} (only provided.al2023/provided.al2)"),
                at: format!("Resources.{}", f.logical_id),
            }
            .into());
        }
        let mut env: HashMap<String, String> = HashMap::new();
        for vars in [
            &gf["Environment"]["Variables"],
            &props["Environment"]["Variables"],
        ] {
            for (k, v) in vars.as_object().into_iter().flatten() {
                env.insert(k.clone(), scalar_string(v));
            }
        }
        for (k, v) in [
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ] {
            env.insert(k.into(), v.into());
        }
        env.insert("AWS_ENDPOINT_URL".into(), edge_url.to_string());
        let num = |k: &str, d: f64| {
            get(k)
                .map(scalar_string)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(d)
        };
        specs.push(FunctionSpec {
            logical_id: f.logical_id.clone(),
            physical_name: template.physical_name(&f.logical_id),
            arn: template.arn(&f.logical_id)?,
            binary: function_binary(opts, &f.logical_id, &props, &f.metadata)?,
            env,
            timeout: Duration::from_secs_f64(num("Timeout", 3.0)),
            memory_mb: num("MemorySize", 128.0) as u32,
            log_file: opts.log_dir.join(format!("{}.log", f.logical_id)),
        });
    }
    Ok(specs)
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
        // Blocking: the emulators are tied to this thread's lifetime (they die with it).
        let emulators = tokio::task::block_in_place(|| Emulators::start(&root, ports, &log_dir))?;

        let edge_listener = bind(opts.edge_port, "edge endpoint", "--edge-port").await?;
        let edge_url = format!("http://{}", edge_listener.local_addr()?);
        let router = EdgeRouter::new(Routes {
            dynamodb: ports.dynamodb,
            kinesis: ports.kinesis,
            moto: ports.moto,
        });
        let mut servers = vec![tokio::spawn(router.clone().serve(edge_listener))];
        template.queue_endpoint = edge_url.clone();
        let clients = Clients::new(&Endpoints::all(&edge_url)).await;
        let provisioned = provision(&template, &clients).await?;

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
        let mut deliveries = Vec::new();
        let mut delivery_tasks = Vec::new();
        let mapping_specs = MappingSpec::all(&template)?;
        let delivery_specs: Vec<DeliverySpec> = template
            .of_kind("AWS::KinesisFirehose::DeliveryStream")
            .map(|r| DeliverySpec::from_template(&template, r))
            .collect::<Result<_, _>>()?;
        if opts.run_streams {
            for spec in mapping_specs {
                let host = functions[&spec.function].clone();
                let m = Mapping::new(
                    spec,
                    host,
                    clients.kinesis.clone(),
                    clients.sqs.clone(),
                    edge_url.clone(),
                    opts.idle_poll,
                );
                servers.push(tokio::spawn(m.clone().run(shutdown_rx.clone())));
                mappings.push(m);
            }
            for spec in delivery_specs {
                let d = Delivery::new(
                    spec,
                    clients.kinesis.clone(),
                    clients.s3.clone(),
                    functions.clone(),
                    opts.idle_poll,
                );
                delivery_tasks.push(tokio::spawn(d.clone().run(shutdown_rx.clone())));
                deliveries.push(d);
            }
        }

        // The API last: when it answers, everything else is running.
        let api_listener = bind(opts.api_port, "API", "--api-port").await?;
        let api_url = format!("http://{}", api_listener.local_addr()?);
        servers.push(tokio::spawn(
            ApiGateway::new(routes(&template)?, functions.clone()).serve(api_listener),
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
            deliveries,
            shutdown,
            servers,
            delivery_tasks,
            emulators,
        })
    }

    /// Invokes a function by logical id or physical name.
    pub async fn invoke(
        &self,
        function: &str,
        payload: Vec<u8>,
    ) -> Result<hyper::body::Bytes, CloudError> {
        let id = self
            .template
            .logical_id_of(function)
            .filter(|id| self.functions.contains_key(*id));
        let Some(id) = id else {
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

    /// True when every mapping has read its shards to the end and has nothing in hand.
    pub fn caught_up(&self) -> bool {
        self.mappings.iter().all(|m| m.caught_up())
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
        tokio::task::block_in_place(|| self.emulators.stop());
    }
}

/// A plain HTTP GET on loopback: (status, body).
pub async fn http_get(url: &str) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<hyper::body::Bytes>>();
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let resp = client
        .get(uri)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
