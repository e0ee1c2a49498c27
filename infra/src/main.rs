//! `tally`: the local cloud CLI. `up` runs the whole application of template.yaml on this machine;
//! `put`, `tail` and `invoke` talk to it; `demo` shows the pipeline end to end.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use clap::{Parser, Subcommand};
use tally_infra::clients::{put_records, Clients, Endpoints};
use tally_infra::cloud::{http_get, CloudOptions, LocalCloud};
use tally_infra::emulators::project_root;
use tally_infra::template::Template;

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Run tally's template.yaml on this machine, without Docker or an AWS account"
)]
struct Cli {
    /// Stack name of the local cloud (physical names are STACK-LogicalId).
    #[arg(long, global = true, env = "TALLY_STACK", default_value = "tally")]
    stack: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct UpArgs {
    /// Template parameter override, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Port of the edge endpoint every AWS SDK and CLI can use.
    #[arg(long, default_value_t = 4566)]
    edge_port: u16,
    /// Port of the HTTP API.
    #[arg(long, default_value_t = 5000)]
    api_port: u16,
    /// Folder of the function binaries (default: the folder of this tally executable).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the local cloud and keep it running until Ctrl-C.
    Up(UpArgs),
    /// Put lines to a stream, each line one record, as is.
    Put {
        /// Stream logical ID (VisitsStream) or physical name.
        stream: String,
        /// File of records, one a line; `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// Record field to use as partition key (default: the contract's key of the stream).
        #[arg(long)]
        partition_key: Option<String>,
    },
    /// Print each record's data as one JSON line.
    Tail {
        stream: String,
        /// Start at the oldest record instead of new ones.
        #[arg(long)]
        from_beginning: bool,
        /// Keep waiting for new records.
        #[arg(long)]
        follow: bool,
    },
    /// Invoke a function once through the Runtime API and print its response.
    Invoke {
        /// Function logical ID (Model2Function) or physical name.
        function: String,
        /// Event file (see events/).
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// Start the local cloud, put the bundled sample visits, print lookups from the API, stop.
    Demo(UpArgs),
    /// Measure every figure of BENCHMARKS.md on the local cloud (`make bench` builds and runs it).
    Bench {
        /// Short runs, to try the bench itself (figures are not comparable).
        #[arg(long)]
        quick: bool,
        /// The JSON report.
        #[arg(long, default_value = "bench/report.json")]
        out: PathBuf,
        /// The table.
        #[arg(long, default_value = "BENCHMARKS.md")]
        markdown: PathBuf,
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stack = cli.stack.as_str();
    let outcome = match cli.command {
        Command::Up(args) => up(args, stack).await,
        Command::Put {
            stream,
            file,
            partition_key,
        } => put(stack, &stream, file.as_deref(), partition_key.as_deref()).await,
        Command::Tail {
            stream,
            from_beginning,
            follow,
        } => tail(stack, &stream, from_beginning, follow).await,
        Command::Invoke {
            function,
            event,
            bin_dir,
        } => invoke(stack, &function, &event, bin_dir).await,
        Command::Demo(args) => demo(args, stack).await,
        Command::Bench {
            quick,
            out,
            markdown,
            bin_dir,
        } => bench(quick, &out, &markdown, bin_dir).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tally: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn root() -> Result<PathBuf> {
    project_root(&std::env::current_dir().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

/// The function binaries built with this `tally`: target/debug for target/debug/tally, and so on.
fn own_bin_dir() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    dir.join("gender-model").is_file().then_some(dir)
}

fn options(args: &UpArgs, stack: &str) -> Result<CloudOptions> {
    let root = root()?;
    let mut opts = CloudOptions::new(root);
    if let Some(dir) = own_bin_dir() {
        opts.bin_dir = dir;
    }
    opts.stack_name = stack.to_string();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--param {p}: expected NAME=VALUE"))?;
        opts.params.insert(k.to_string(), v.to_string());
    }
    opts.edge_port = args.edge_port;
    opts.api_port = args.api_port;
    if let Some(dir) = &args.bin_dir {
        opts.bin_dir = dir.clone();
    }
    Ok(opts)
}

fn print_cloud(cloud: &LocalCloud) {
    println!("tally local cloud is running");
    println!(
        "  edge endpoint  {}   (export AWS_ENDPOINT_URL={})",
        cloud.edge_url, cloud.edge_url
    );
    println!(
        "  HTTP API       {}   (curl {}/api/v1/getGender/C124?model=MODEL2)",
        cloud.api_url, cloud.api_url
    );
    println!("  resources:");
    for p in &cloud.provisioned {
        println!("    {:<28} {:<28} {}", p.logical_id, p.kind, p.physical);
    }
    println!("  functions (real binaries behind the Lambda Runtime API):");
    for (id, f) in &cloud.functions {
        println!(
            "    {:<28} {}   log {}",
            id,
            f.spec().binary.display(),
            f.spec().log_file.display()
        );
    }
    println!("  event source mappings:");
    for m in &cloud.mappings {
        let s = &m.spec;
        println!(
            "    {:<28} {} -> {} (batch {}, window {:?})",
            s.logical_id, s.stream_name, s.function, s.batch_size, s.batching_window
        );
    }
    for d in &cloud.deliveries {
        println!(
            "  firehose {} -> s3://{}/{}",
            d.spec.stream_name, d.spec.bucket, d.spec.prefix
        );
    }
}

async fn up(args: UpArgs, stack: &str) -> Result<()> {
    let cloud = LocalCloud::start(options(&args, stack)?)
        .await
        .map_err(|e| e.to_string())?;
    print_cloud(&cloud);
    println!("press Ctrl-C to stop");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping (delivering Firehose buffers first)");
    cloud.stop().await;
    Ok(())
}

async fn bench(quick: bool, out: &Path, markdown: &Path, bin_dir: Option<PathBuf>) -> Result<()> {
    let root = root()?;
    let bin_dir = bin_dir
        .or_else(own_bin_dir)
        .unwrap_or_else(|| root.join("target/release"));
    let report = tally_infra::bench::run(tally_infra::bench::BenchOptions {
        root: root.clone(),
        bin_dir,
        quick,
    })
    .await?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    for (path, text) in [
        (root.join(out), json + "\n"),
        (
            root.join(markdown),
            tally_infra::bench::report::markdown(&report),
        ),
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The edge endpoint of a running local cloud (AWS_ENDPOINT_URL, else the default).
fn edge_url() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

struct Target {
    clients: Clients,
    logical_id: String,
    name: String,
}

async fn stream_target(stack: &str, stream: &str) -> Result<Target> {
    let root = root()?;
    let template = Template::load(&root.join("template.yaml"), stack, &BTreeMap::new())
        .map_err(|e| e.to_string())?;
    let logical_id = template
        .logical_id_of(stream)
        .filter(|id| template.resources[*id].kind == "AWS::Kinesis::Stream")
        .ok_or_else(|| {
            let known: Vec<&str> = template
                .of_kind("AWS::Kinesis::Stream")
                .map(|r| r.logical_id.as_str())
                .collect();
            format!(
                "no stream {stream} in template.yaml (streams: {})",
                known.join(", ")
            )
        })?
        .to_string();
    let url = edge_url();
    let clients = Clients::new(&Endpoints::all(&url)).await;
    let name = template.physical_name(&logical_id);
    if let Err(e) = clients
        .kinesis
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
    {
        use aws_sdk_kinesis::error::ProvideErrorMetadata;
        return Err(match e {
            aws_sdk_kinesis::error::SdkError::DispatchFailure(_)
            | aws_sdk_kinesis::error::SdkError::TimeoutError(_) => {
                format!("cannot reach the local cloud at {url}: start it with `make up`")
            }
            other if other.code() == Some("ResourceNotFoundException") => {
                format!("stream {name} does not exist at {url}: is `make up` running, with stack {stack} (--stack)?")
            }
            other => format!(
                "stream {name} is not available: {}",
                other.message().unwrap_or("unknown error")
            ),
        });
    }
    Ok(Target {
        clients,
        logical_id,
        name,
    })
}

/// The partition-key field of each stream of the contract (shared/DESIGN.md).
fn contract_key(logical_id: &str) -> Option<&'static str> {
    Some(match logical_id {
        "VisitsStream" | "GenderResultsStream" => "cid",
        "InteractionsStream" | "PossibleBrokerStream" => "user_id",
        "PaidUserStream" => "user",
        "PropertyStatusStream" => "property",
        _ => return None,
    })
}

fn partition_key(line: &str, field: Option<&str>) -> String {
    let from_field = field.and_then(|f| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        match v.get(f)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(256).collect()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    });
    // No such field: a hash of the line spreads records over the shards.
    from_field.unwrap_or_else(|| {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in line.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    })
}

async fn put(stack: &str, stream: &str, file: Option<&Path>, field: Option<&str>) -> Result<()> {
    let target = stream_target(stack, stream).await?;
    let field = field
        .map(String::from)
        .or_else(|| contract_key(&target.logical_id).map(String::from));
    let lines: Vec<String> = match file {
        Some(p) if p != Path::new("-") => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))?
            .lines()
            .map(String::from)
            .collect(),
        _ => std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<_>>()
            .map_err(|e| format!("cannot read standard input: {e}"))?,
    };
    let records: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    let skipped = lines.len() - records.len();
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(records.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec}")
                .unwrap(),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let (mut accepted, mut retried, mut failed) = (0usize, 0usize, 0usize);
    let mut batch: Vec<&str> = Vec::new();
    let mut batch_bytes = 0;
    for line in records.iter().copied() {
        let size = line.len() + 64;
        if batch.len() == 500 || batch_bytes + size > 5 * 1024 * 1024 {
            let (ok, again, lost) =
                put_batch(&target, field.as_deref(), std::mem::take(&mut batch)).await;
            (accepted, retried, failed) = (accepted + ok, retried + again, failed + lost);
            bar.set_position(accepted as u64);
            batch_bytes = 0;
        }
        batch.push(line);
        batch_bytes += size;
    }
    if !batch.is_empty() {
        let (ok, again, lost) = put_batch(&target, field.as_deref(), batch).await;
        (accepted, retried, failed) = (accepted + ok, retried + again, failed + lost);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "put {} records to {} ({}): {accepted} accepted, {failed} failed, {retried} retried, {skipped} empty lines skipped, in {secs:.2}s ({:.0} records/s)",
        records.len(),
        target.logical_id,
        target.name,
        accepted as f64 / secs.max(1e-6)
    );
    if failed > 0 {
        return Err(format!("{failed} records were not accepted"));
    }
    Ok(())
}

/// Puts one PutRecords batch, re-sending the entries Kinesis refused: (accepted, retried, failed).
async fn put_batch(
    target: &Target,
    field: Option<&str>,
    batch: Vec<&str>,
) -> (usize, usize, usize) {
    let entries: Vec<(String, &[u8])> = batch
        .iter()
        .map(|l| (partition_key(l, field), l.as_bytes()))
        .collect();
    let o = put_records(&target.clients.kinesis, &target.name, &entries).await;
    (o.accepted, o.retried, o.refused)
}

async fn tail(stack: &str, stream: &str, from_beginning: bool, follow: bool) -> Result<()> {
    let target = stream_target(stack, stream).await?;
    let k = &target.clients.kinesis;
    let shards = k
        .list_shards()
        .stream_name(&target.name)
        .send()
        .await
        .map_err(|e| aws_sdk_kinesis::error::DisplayErrorContext(e).to_string())?;
    let kind = if from_beginning {
        ShardIteratorType::TrimHorizon
    } else {
        ShardIteratorType::Latest
    };
    let mut iterators = Vec::new();
    for s in shards.shards() {
        let it = k
            .get_shard_iterator()
            .stream_name(&target.name)
            .shard_id(s.shard_id())
            .shard_iterator_type(kind.clone())
            .send()
            .await
            .map_err(|e| aws_sdk_kinesis::error::DisplayErrorContext(e).to_string())?;
        iterators.push(it.shard_iterator);
    }
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut all_at_end = true;
        for it in iterators.iter_mut() {
            let Some(current) = it.clone() else { continue };
            let out = k
                .get_records()
                .shard_iterator(&current)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| aws_sdk_kinesis::error::DisplayErrorContext(e).to_string())?;
            for r in out.records() {
                let data = r.data().as_ref();
                let line = match serde_json::from_slice::<serde_json::Value>(data) {
                    Ok(v) => v.to_string(),
                    Err(_) => serde_json::Value::String(String::from_utf8_lossy(data).into_owned())
                        .to_string(),
                };
                use std::io::Write;
                writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
            }
            let at_end = out.records().is_empty() && out.millis_behind_latest().unwrap_or(0) == 0;
            all_at_end &= at_end || out.next_shard_iterator().is_none();
            *it = out.next_shard_iterator().map(String::from);
        }
        if all_at_end {
            if !follow {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn invoke(stack: &str, function: &str, event: &Path, bin_dir: Option<PathBuf>) -> Result<()> {
    let payload =
        std::fs::read(event).map_err(|e| format!("cannot read {}: {e}", event.display()))?;
    serde_json::from_slice::<serde_json::Value>(&payload)
        .map_err(|e| format!("{} is not JSON: {e}", event.display()))?;
    let mut opts = CloudOptions::new(root()?);
    opts.stack_name = stack.to_string();
    if let Some(dir) = own_bin_dir() {
        opts.bin_dir = dir;
    }
    if let Some(dir) = bin_dir {
        opts.bin_dir = dir;
    }
    // Like `sam local invoke`, which uses the account's real resources: a running local cloud's
    // resources when there is one, else a private local cloud, without stream pollers, just for this.
    let url = edge_url();
    let running = Clients::new(&Endpoints::all(&url))
        .await
        .dynamodb
        .list_tables()
        .send()
        .await
        .is_ok();
    let body = if running {
        let template =
            Template::load(&opts.template, stack, &BTreeMap::new()).map_err(|e| e.to_string())?;
        let id = template.logical_id_of(function).map(String::from);
        let specs = tally_infra::cloud::function_specs(&template, &opts, &url)
            .map_err(|e| e.to_string())?;
        let spec = specs
            .into_iter()
            .find(|s| Some(&s.logical_id) == id.as_ref())
            .ok_or_else(|| format!("no function {function} in template.yaml"))?;
        let host = tally_infra::function_host::FunctionHost::start(spec)
            .await
            .map_err(|e| e.to_string())?;
        let outcome = host.invoke(payload).await;
        host.stop().await;
        outcome.map_err(|e| format!("{function}: {e}"))?
    } else {
        opts.run_streams = false;
        opts.edge_port = 0;
        opts.api_port = 0;
        let cloud = LocalCloud::start(opts).await.map_err(|e| e.to_string())?;
        let outcome = cloud.invoke(function, payload).await;
        cloud.stop().await;
        outcome.map_err(|e| e.to_string())?
    };
    let text = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    println!("{text}");
    Ok(())
}

async fn demo(args: UpArgs, stack: &str) -> Result<()> {
    let mut opts = options(&args, stack)?;
    // The demo runs beside a `make up` too: any free ports.
    if !tally_infra::emulators::port_is_free(opts.edge_port) {
        opts.edge_port = 0;
    }
    if !tally_infra::emulators::port_is_free(opts.api_port) {
        opts.api_port = 0;
    }
    let visits_file = opts.root.join("infra/demo/visits.jsonl");
    println!("starting the local cloud from template.yaml ...");
    let started = Instant::now();
    let mut cloud = LocalCloud::start(opts).await.map_err(|e| e.to_string())?;
    println!(
        "  up in {:.1}s: edge {}, API {}",
        started.elapsed().as_secs_f64(),
        cloud.edge_url,
        cloud.api_url
    );
    let outcome = demo_steps(&mut cloud, &visits_file).await;
    cloud.stop().await;
    outcome
}

/// Puts a file's lines to a stream of the running demo cloud, keyed by `field`.
async fn demo_put(
    cloud: &LocalCloud,
    logical_id: &str,
    file: &Path,
    field: &str,
) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let target = Target {
        clients: cloud.clients.clone(),
        logical_id: logical_id.to_string(),
        name: cloud.template.physical_name(logical_id),
    };
    for chunk in lines.chunks(500) {
        let (_, _, failed) = put_batch(
            &target,
            Some(field),
            chunk.iter().map(String::as_str).collect(),
        )
        .await;
        if failed > 0 {
            return Err(format!("{logical_id} refused {failed} records"));
        }
    }
    println!(
        "put {} records ({}) to {logical_id}",
        lines.len(),
        file.display()
    );
    Ok(lines)
}

async fn demo_steps(cloud: &mut LocalCloud, visits_file: &Path) -> Result<()> {
    let lines = demo_put(cloud, "VisitsStream", visits_file, "cid").await?;
    demo_put(
        cloud,
        "InteractionsStream",
        &visits_file.with_file_name("interactions.jsonl"),
        "user_id",
    )
    .await?;

    // Wait until every mapping has read its shards to the end and is idle twice in a row.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut idle_checks = 0;
    while idle_checks < 2 {
        if Instant::now() > deadline {
            return Err("the pipeline did not catch up within 120s; see .tally/logs".into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before: u64 = cloud
            .mappings
            .iter()
            .map(|m| m.stats.lock().unwrap().invocations)
            .sum();
        idle_checks = if cloud.caught_up()
            && cloud
                .mappings
                .iter()
                .map(|m| m.stats.lock().unwrap().invocations)
                .sum::<u64>()
                == before
        {
            idle_checks + 1
        } else {
            0
        };
    }
    println!("pipeline caught up:");
    for m in &cloud.mappings {
        let s = m.stats.lock().unwrap().clone();
        let host = cloud.functions[&m.spec.function].stats();
        println!(
            "  {:<22} {:>4} invocations, {:>5} records, cold start init {:.1} ms",
            m.spec.function, s.invocations, s.records, host.init_ms_max
        );
    }

    let mut cids: Vec<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["cid"].as_str().map(String::from))
        .collect();
    cids.sort();
    cids.dedup();
    println!(
        "\nlookups from the API ({}/api/v1/getGender/CID?model=...):",
        cloud.api_url
    );
    println!(
        "  {:<8} {:<16} {:<16} {:<16}",
        "cid", "MODEL1 (last)", "MODEL2 (all)", "MODEL3 (7 days)"
    );
    for cid in &cids {
        let mut row = Vec::new();
        for model in ["MODEL1", "MODEL2", "MODEL3"] {
            let (status, body) = http_get(&format!(
                "{}/api/v1/getGender/{cid}?model={model}",
                cloud.api_url
            ))
            .await?;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            row.push(match (status, v["gndr"].as_str()) {
                (200, Some(g)) if v["male"].is_u64() => {
                    format!("{g} ({}m/{}f)", v["male"], v["female"])
                }
                (200, Some(g)) => g.to_string(),
                (s, _) => format!("{s}"),
            });
        }
        println!("  {:<8} {:<16} {:<16} {:<16}", cid, row[0], row[1], row[2]);
    }
    println!("\nalerts, each once, with the count at which its rule first held:");
    for stream in [
        "PaidUserStream",
        "PropertyStatusStream",
        "PossibleBrokerStream",
    ] {
        let records = tally_infra::esm::read_stream(
            &cloud.clients.kinesis,
            &cloud.template.physical_name(stream),
        )
        .await?;
        for r in records {
            println!("  {stream:<22} {}", String::from_utf8_lossy(&r.data));
        }
    }
    let (status, body) = http_get(&format!(
        "{}/api/v1/getGender/C100?model=MODEL9",
        cloud.api_url
    ))
    .await?;
    println!("\nbad input is a 4xx with a JSON error: GET ...?model=MODEL9 -> {status} {body}");

    let bucket = cloud.template.physical_name("ArchiveBucket");
    cloud.drain().await;
    let listed = cloud
        .clients
        .s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
    let (mut raw, mut dead) = (0, 0);
    for o in listed.contents() {
        let key = o.key().unwrap_or_default();
        if key.starts_with("raw/") {
            raw += 1;
            println!("archived: s3://{bucket}/{key}");
        } else if key.starts_with("dead-letter/") {
            dead += 1;
        }
    }
    println!(
        "dead letters (one per rejected record and model): {dead} under s3://{bucket}/dead-letter/"
    );
    if raw == 0 {
        return Err("Firehose archived nothing".into());
    }
    println!("\ndemo done: stopping the local cloud");
    Ok(())
}
