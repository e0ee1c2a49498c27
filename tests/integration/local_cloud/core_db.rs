//! Seed 002's core application database on the local cloud: MariaDB with DESIGN.md's `core`
//! schema and the generated vendors, flyers and users, reached by the URL `tally core url` prints,
//! as a user would reach it (the `mariadb` client of the same package).

use std::process::Command;

use crate::support::{shared_cloud, tally};

/// `sql` through the `mariadb` client at `url` (`mysql://USER:PASSWORD@HOST:PORT/DB`): its rows,
/// tab-separated.
fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    let rest = url.strip_prefix("mysql://").expect("a mysql:// URL");
    let (credentials, place) = rest.split_once('@').unwrap();
    let (user, password) = credentials.split_once(':').unwrap();
    let (host_port, database) = place.split_once('/').unwrap();
    let (host, port) = host_port.split_once(':').unwrap();
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--batch",
            "--skip-column-names",
            &format!("--user={user}"),
            &format!("--password={password}"),
            &format!("--host={host}"),
            &format!("--port={port}"),
            database,
            "-e",
            sql,
        ])
        .output()
        .expect("the mariadb client (make setup installs mariadb-server)");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn the_core_database_has_the_schema_and_the_generated_rows() {
    let cloud = shared_cloud();
    let out = tally(&["core", "url"], &cloud.edge_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        url.starts_with("mysql://tally:") && url.ends_with("/core"),
        "{url}"
    );

    let columns = query(
        &url,
        "SELECT table_name, column_name, column_type FROM information_schema.columns \
         WHERE table_schema = 'core' ORDER BY table_name, ordinal_position",
    );
    let described: Vec<String> = columns.iter().map(|c| c.join(" ")).collect();
    assert_eq!(
        described,
        [
            "flyers flyer_id bigint(20)",
            "flyers vendor_id bigint(20)",
            "flyers title varchar(300)",
            "flyers valid_from date",
            "flyers valid_to date",
            "flyers updated_at datetime(3)",
            "users user_id varchar(64)",
            "users country char(2)",
            "users signup_at datetime(3)",
            "users updated_at datetime(3)",
            "vendors vendor_id bigint(20)",
            "vendors name varchar(200)",
            "vendors category varchar(100)",
            "vendors updated_at datetime(3)",
        ]
    );
    let counts = query(
        &url,
        "SELECT (SELECT count(*) FROM vendors), (SELECT count(*) FROM flyers), \
         (SELECT count(*) FROM users), \
         (SELECT count(*) FROM flyers f LEFT JOIN vendors v USING (vendor_id) WHERE v.name IS NULL)",
    );
    assert_eq!(
        counts,
        [["20", "200", "500", "0"]],
        "every flyer's vendor exists"
    );

    let refused = tally(&["--aws", "core", "url"], &cloud.edge_url);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("local cloud only"));
}
