//! Seed 002's core application database, locally: MariaDB (Debian's `mariadb-server`, which
//! `make setup` installs), its data under the project (`.tally/core/<stack>/`), started and
//! stopped with the local cloud, with the `core` schema of DESIGN.md filled with generated
//! vendors, flyers and users the first time. On AWS the stack takes an existing database instead.
//!
//! The URL (`mysql://tally:PASSWORD@127.0.0.1:PORT/core`) is written to `.tally/core/<stack>/url`
//! (readable by its owner only) for `tally core url`.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tally_engine::sampling::SeededRng;

use crate::emulators::{die_with_this_thread, EmulatorError};

/// The schema of DESIGN.md ("Seed 002's core database and its dimensions").
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS vendors (
  vendor_id BIGINT PRIMARY KEY,
  name VARCHAR(200),
  category VARCHAR(100),
  updated_at DATETIME(3)
);
CREATE TABLE IF NOT EXISTS flyers (
  flyer_id BIGINT PRIMARY KEY,
  vendor_id BIGINT,
  title VARCHAR(300),
  valid_from DATE,
  valid_to DATE,
  updated_at DATETIME(3)
);
CREATE TABLE IF NOT EXISTS users (
  user_id VARCHAR(64) PRIMARY KEY,
  country CHAR(2),
  signup_at DATETIME(3),
  updated_at DATETIME(3)
);
";

/// The generated core data's sizes: every flyer id from 1 to `FLYERS` exists, which the
/// generated app events (`tally gen events`) may name.
pub const VENDORS: u64 = 20;
pub const FLYERS: u64 = 200;
pub const USERS: u64 = 500;
const SEED: u64 = 2002;

const CATEGORIES: &[&str] = &[
    "grocery",
    "electronics",
    "pharmacy",
    "home",
    "fashion",
    "pets",
];
const COUNTRIES: &[&str] = &["CA", "US", "GB", "DE", "FR"];

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The generated rows, as `INSERT` statements: the same on every machine. Everything was last
/// updated on 2026-11-01, so a first extraction takes all of it.
pub fn sample_sql() -> String {
    let mut rng = SeededRng::new(SEED);
    let at = "'2026-11-01 00:00:00.000'";
    let mut sql = String::new();
    let vendors: Vec<String> = (1..=VENDORS)
        .map(|v| {
            let category = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
            format!(
                "({v}, {}, {}, {at})",
                quote(&format!("Vendor {v}")),
                quote(category)
            )
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO vendors (vendor_id, name, category, updated_at) VALUES {};\n",
        vendors.join(", ")
    ));
    let flyers: Vec<String> = (1..=FLYERS)
        .map(|f| {
            let vendor = 1 + rng.below(VENDORS);
            let start = 1 + rng.below(20);
            format!(
                "({f}, {vendor}, {}, '2026-11-{start:02}', '2026-12-{:02}', {at})",
                quote(&format!("Flyer {f} of vendor {vendor}")),
                start + 7
            )
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO flyers (flyer_id, vendor_id, title, valid_from, valid_to, updated_at) VALUES {};\n",
        flyers.join(", ")
    ));
    let users: Vec<String> = (1..=USERS)
        .map(|u| {
            let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
            let day = 1 + rng.below(28);
            format!("('user-{u}', '{country}', '2026-10-{day:02} 12:00:00.000', {at})")
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO users (user_id, country, signup_at, updated_at) VALUES {};\n",
        users.join(", ")
    ));
    sql
}

/// A small database: InnoDB's defaults take 125 MB of files and 128 MB of memory per server,
/// and every test cloud runs one.
const SMALL: [&str; 5] = [
    "--innodb-log-file-size=4M",
    "--innodb-buffer-pool-size=16M",
    "--innodb-data-file-path=ibdata1:4M:autoextend",
    "--innodb-autoextend-increment=1",
    "--innodb-temp-data-file-path=ibtmp1:1M:autoextend",
];

/// A program of the `mariadb-server` package, on `PATH` or in `/usr/sbin` (`mariadbd`).
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub struct CoreDatabase {
    /// `mysql://tally:PASSWORD@127.0.0.1:PORT/core`.
    pub url: String,
    /// `127.0.0.1:PORT`, the stack's `CoreDbEndpoint`.
    pub endpoint: String,
    /// The extractor's user, who may only read `core` (`{"username", "password"}` as RDS keeps
    /// them): the local cloud's secret for `CoreDbSecretArn`.
    pub reader: serde_json::Value,
    dir: PathBuf,
    server: Child,
}

/// A database whose server is starting: [`Starting::ready`] waits for it, so that the local
/// cloud starts its emulators meanwhile.
pub struct Starting {
    root: PathBuf,
    stack: String,
    dir: PathBuf,
    log_dir: PathBuf,
    client: PathBuf,
    socket: PathBuf,
    port: u16,
    fresh: bool,
    server: Child,
}

fn failed(log_dir: &Path, detail: String) -> EmulatorError {
    EmulatorError::Failed {
        what: "MariaDB",
        detail,
        log: log_dir.join("mariadb.log").display().to_string(),
    }
}

impl CoreDatabase {
    /// Creates the stack's database the first time and starts its server on `port` (chosen with
    /// the emulators' ports: [`crate::emulators::EmulatorPorts`]), without waiting.
    pub fn spawn(
        root: &Path, stack: &str, port: u16, log_dir: &Path,
    ) -> Result<Starting, EmulatorError> {
        let not_installed = |what| EmulatorError::NotInstalled {
            what,
            path: "Debian's mariadb-server (make setup installs it)".into(),
        };
        let server = program("mariadbd").ok_or_else(|| not_installed("MariaDB"))?;
        let client = program("mariadb").ok_or_else(|| not_installed("the mariadb client"))?;
        let failed = |detail: String| failed(log_dir, detail);
        let dir = data_dir(root, stack);
        let data = dir.join("data");
        std::fs::create_dir_all(&dir)?;
        std::fs::create_dir_all(log_dir)?;
        let root_user = unsafe { libc::geteuid() } == 0;
        let user = if root_user {
            "root".to_string()
        } else {
            whoami()
        };
        let fresh = !data.join("mysql").is_dir();
        if fresh {
            let install =
                program("mariadb-install-db").ok_or_else(|| not_installed("mariadb-install-db"))?;
            let out = Command::new(install)
                .args([
                    "--no-defaults",
                    &format!("--datadir={}", data.display()),
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    &format!("--user={user}"),
                ])
                .args(SMALL)
                .output()?;
            if !out.status.success() {
                return Err(failed(String::from_utf8_lossy(&out.stderr).into_owned()));
            }
        }
        let (cert, key) = certificate(&dir).map_err(failed)?;
        // A socket path may have 107 bytes at most: not under a clone's folder, which may be deep.
        let socket = std::env::temp_dir().join(format!("tally-core-{stack}.sock"));
        let mut cmd = Command::new(server);
        cmd.args([
            "--no-defaults",
            &format!("--datadir={}", data.display()),
            &format!("--port={port}"),
            // This machine only, as every emulator.
            "--bind-address=127.0.0.1",
            &format!("--socket={}", socket.display()),
            &format!("--log-error={}", log_dir.join("mariadb.log").display()),
            &format!("--pid-file={}", dir.join("mariadb.pid").display()),
            "--skip-name-resolve",
            &format!("--user={user}"),
            // TLS, as a managed database offers it: the extractor connects as on AWS
            // (CoreDbSslMode REQUIRED).
            &format!("--ssl-cert={}", cert.display()),
            &format!("--ssl-key={}", key.display()),
        ])
        .args(SMALL)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        die_with_this_thread(&mut cmd);
        let server = cmd.spawn().map_err(|e| failed(e.to_string()))?;
        Ok(Starting {
            root: root.to_path_buf(),
            stack: stack.to_string(),
            dir,
            log_dir: log_dir.to_path_buf(),
            client,
            socket,
            port,
            fresh,
            server,
        })
    }
}

impl Starting {
    /// Stops the server: the cloud it was for could not start.
    pub fn abandon(mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    /// Waits until the server answers, then makes sure of the schema (and the generated rows, the
    /// first time) and writes the URL.
    pub fn ready(self) -> Result<CoreDatabase, EmulatorError> {
        let Starting {
            root,
            stack,
            dir,
            log_dir,
            client,
            socket,
            port,
            fresh,
            server: mut child,
        } = self;
        let failed = |detail: String| failed(&log_dir, detail);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(failed(format!("exited with {status}")));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(failed(format!("not listening on port {port} after 60 s")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let password = password_in(&dir, "password")?;
        let reader_password = password_in(&dir, "reader-password")?;
        let run = |sql: &str| -> Result<(), EmulatorError> {
            let mut mariadb = Command::new(&client)
                .args([
                    "--no-defaults",
                    "-uroot",
                    &format!("--socket={}", socket.display()),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?;
            mariadb
                .stdin
                .take()
                .expect("piped")
                .write_all(sql.as_bytes())?;
            let out = mariadb.wait_with_output()?;
            if !out.status.success() {
                return Err(failed(String::from_utf8_lossy(&out.stderr).into_owned()));
            }
            Ok(())
        };
        run(&format!(
            "CREATE DATABASE IF NOT EXISTS core;
             CREATE USER IF NOT EXISTS 'tally'@'127.0.0.1' IDENTIFIED BY '{password}';
             GRANT ALL ON core.* TO 'tally'@'127.0.0.1';
             CREATE USER IF NOT EXISTS '{READER}'@'127.0.0.1' IDENTIFIED BY '{reader_password}';
             GRANT SELECT ON core.* TO '{READER}'@'127.0.0.1';
             USE core; {SCHEMA}"
        ))?;
        if fresh {
            run(&format!("USE core; {}", sample_sql()))?;
        }
        let url = format!("mysql://tally:{password}@127.0.0.1:{port}/core");
        write_private(&url_file(&root, &stack), &url)?;
        Ok(CoreDatabase {
            url,
            endpoint: format!("127.0.0.1:{port}"),
            reader: serde_json::json!({ "username": READER, "password": reader_password }),
            dir,
            server: child,
        })
    }
}

impl CoreDatabase {
    /// Where its data and URL are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for CoreDatabase {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a stack's core database keeps its data, password and URL.
pub fn data_dir(root: &Path, stack: &str) -> PathBuf {
    root.join(".tally/core").join(stack)
}

/// The file with the stack's URL (`tally core url` reads it).
pub fn url_file(root: &Path, stack: &str) -> PathBuf {
    data_dir(root, stack).join("url")
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "nobody".into())
}

/// The server's certificate and key: self-signed, made once with `openssl` (which Debian's
/// `ca-certificates` brings), kept beside the data.
fn certificate(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (dir.join("server-cert.pem"), dir.join("server-key.pem"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        ])
        .args(["-subj", "/CN=tally-core-db"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("cannot run openssl for the server's certificate: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl could not make the server's certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok((cert, key))
}

/// The extractor's database user.
const READER: &str = "tally_reader";

/// A database user's password: made once, kept beside the data (owner-only).
fn password_in(dir: &Path, name: &str) -> std::io::Result<String> {
    let file = dir.join(name);
    if let Ok(p) = std::fs::read_to_string(&file) {
        return Ok(p.trim().to_string());
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))?;
    let p: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&file, &p)?;
    Ok(p)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_the_same_everywhere_and_names_every_flyer() {
        let sql = sample_sql();
        assert_eq!(sql, sample_sql());
        assert!(sql.contains(&format!("({FLYERS}, ")));
        assert_eq!(sql.matches("'Vendor ").count() as u64, VENDORS);
        assert_eq!(sql.matches("('user-").count() as u64, USERS);
        assert_eq!(quote("O'Neil"), "'O''Neil'");
    }
}
