//! Seed 002's core application database on the local cloud: MariaDB with DESIGN.md's `core`
//! schema and the generated vendors, flyers and users, reached by the URL `tally core url` prints,
//! as a user would reach it (the `mariadb` client of the same package); and `tally extract`,
//! which makes the lake's type-2 dimensions of it.

use std::process::Command;

use std::collections::BTreeMap;

use crate::lake::{sql, sql_file};
use crate::support::{shared_cloud, tally};

/// `sql` through the `mariadb` client at `url` (`mysql://USER:PASSWORD@HOST:PORT/DB`).
fn mariadb(url: &str, sql: &str) -> std::process::Output {
    let rest = url.strip_prefix("mysql://").expect("a mysql:// URL");
    let (credentials, place) = rest.split_once('@').unwrap();
    let (user, password) = credentials.split_once(':').unwrap();
    let (host_port, database) = place.split_once('/').unwrap();
    let (host, port) = host_port.split_once(':').unwrap();
    Command::new("mariadb")
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
        .expect("the mariadb client (make setup installs mariadb-server)")
}

/// [`mariadb`]'s rows, tab-separated; it must succeed.
pub(crate) fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    let out = mariadb(url, sql);
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
        // The generated rows (other tests add their own with larger ids).
        "SELECT (SELECT count(*) FROM vendors WHERE vendor_id <= 20), \
         (SELECT count(*) FROM flyers WHERE flyer_id <= 200), \
         (SELECT count(*) FROM users WHERE user_id LIKE 'user-%'), \
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

/// As on AWS, the extractor reads the database's credentials from Secrets Manager, where only its
/// role may read them, and they let it read the core tables, not change them.
#[tokio::test]
async fn the_extractor_reads_the_database_as_a_reader_whose_secret_only_it_may_read() {
    let cloud = shared_cloud();
    let stack = crate::support::shared_stack();
    let as_role = |role: &str| {
        let key = tally_control::iam::role_key(role);
        async move {
            aws_sdk_secretsmanager::Client::new(
                &tally_cloud::clients::local_config_as(&cloud.edge_url, &key).await,
            )
        }
    };
    let admin = aws_sdk_secretsmanager::Client::new(
        &tally_cloud::clients::local_config(&cloud.edge_url).await,
    );
    let listed = admin.list_secrets().send().await.unwrap();
    let arn = listed
        .secret_list()
        .iter()
        .find(|s| s.name() == Some(&format!("{stack}/core-db/reader")))
        .and_then(|s| s.arn())
        .expect("the local cloud keeps the reader's secret")
        .to_string();

    let mine = as_role("CoreExtractorFunctionRole").await;
    let secret = mine
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    let reader: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    let other = as_role("GroupClustersFunctionRole").await;
    let refused = other.get_secret_value().secret_id(&arn).send().await;
    let refused = aws_sdk_secretsmanager::error::DisplayErrorContext(refused.unwrap_err());
    assert!(
        refused.to_string().contains("AccessDenied"),
        "another function may not read it: {refused}"
    );

    let admin_url = tally(&["core", "url"], &cloud.edge_url);
    let admin_url = String::from_utf8_lossy(&admin_url.stdout)
        .trim()
        .to_string();
    let place = admin_url.split_once('@').unwrap().1;
    let reader_url = format!(
        "mysql://{}:{}@{place}",
        reader["username"].as_str().unwrap(),
        reader["password"].as_str().unwrap()
    );
    let counted = query(&reader_url, "SELECT COUNT(*) FROM flyers");
    assert!(counted[0][0].parse::<u64>().unwrap() >= 200, "{counted:?}");
    let write = mariadb(
        &reader_url,
        "UPDATE vendors SET name = 'x' WHERE vendor_id = 1",
    );
    assert!(!write.status.success());
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("command denied"),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );

    // TLS as on AWS: REQUIRED (the function's default) is encrypted, VERIFY_IDENTITY refuses the
    // local server's self-signed certificate.
    use core_extractor::mysql::{Connection, MySqlSource, SslMode};
    use core_extractor::CoreSource;
    let port: u16 = place.split(['/', ':']).nth(1).unwrap().parse().unwrap();
    let connect = |ssl| {
        MySqlSource::new(&Connection {
            host: "127.0.0.1".into(),
            port,
            database: "core".into(),
            user: reader["username"].as_str().unwrap().into(),
            password: reader["password"].as_str().unwrap().into(),
            ssl,
        })
    };
    let handshakes = || -> u64 {
        query(&admin_url, "SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")[0][1]
            .parse()
            .unwrap()
    };
    let before = handshakes();
    let rows = connect(SslMode::Required)
        .rows_since(&core_extractor::SOURCES[0], None)
        .await
        .unwrap();
    assert!(rows.len() >= 20, "{}", rows.len());
    assert!(handshakes() > before, "the connection was encrypted");
    let refused = connect(SslMode::VerifyIdentity)
        .rows_since(&core_extractor::SOURCES[0], None)
        .await
        .unwrap_err();
    assert!(
        refused.starts_with("cannot reach the core database") && refused.contains("ertificate"),
        "{refused}"
    );
}

/// `tally extract`'s report, which must have succeeded.
fn extract(edge_url: &str) -> String {
    let out = tally(&["extract"], edge_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn extracting_keeps_each_version_of_a_vendor_and_the_rows_that_fail() {
    let cloud = shared_cloud();
    let out = tally(&["core", "url"], &cloud.edge_url);
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // A vendor and its flyer, a vendor without a name (it fails), as the core application would.
    query(
        &url,
        "INSERT INTO vendors VALUES (9001, ' Corner Hardware ', 'Hardware', '2026-12-01 10:00:00.000'), \
         (9002, '', 'grocery', '2026-12-01 10:00:01.000'); \
         INSERT INTO flyers VALUES (90001, 9001, 'Tools week', '2026-12-01', '2026-12-07', '2026-12-01 10:00:02.000')",
    );
    let said = extract(&cloud.edge_url);
    assert!(
        said.contains("vendors: ") && said.contains("in dim_vendor"),
        "{said}"
    );
    let versions = |id: i64| {
        sql(
            &cloud.edge_url,
            &format!(
                "SELECT name, category, CAST(row_valid_from AS VARCHAR) AS valid_from, \
                 CAST(row_valid_to AS VARCHAR) AS valid_to, is_current FROM dim_vendor \
                 WHERE vendor_id = {id} ORDER BY row_valid_from"
            ),
        )
    };
    let first = versions(9001);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        (
            &first[0]["name"],
            &first[0]["category"],
            &first[0]["is_current"]
        ),
        (
            &serde_json::json!("Corner Hardware"),
            &serde_json::json!("hardware"),
            &serde_json::json!(true)
        ),
        "cleaned: trimmed, the category in lower case"
    );
    let flyer = sql(
        &cloud.edge_url,
        "SELECT vendor_id, title FROM dim_flyer WHERE flyer_id = 90001",
    );
    assert_eq!(flyer.len(), 1, "{flyer:?}");
    let bad = sql(
        &cloud.edge_url,
        "SELECT reason FROM bad_records WHERE source = 'core:vendors' AND id LIKE 'core:vendors:9002:%'",
    );
    assert_eq!(bad, [serde_json::json!({"reason": "missing field name"})]);
    assert!(versions(9002).is_empty());

    // Renamed: a second version, the first closed at the change's updated_at.
    query(
        &url,
        "UPDATE vendors SET name = 'Corner Hardware & Garden', updated_at = '2026-12-02 08:00:00.500' \
         WHERE vendor_id = 9001",
    );
    extract(&cloud.edge_url);
    let both = versions(9001);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0]["name"], "Corner Hardware");
    assert!(
        both[0]["valid_to"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-02 08:00:00.5"),
        "closed when the rename happened: {both:?}"
    );
    assert_eq!(
        (&both[0]["is_current"], &both[1]["is_current"]),
        (&serde_json::json!(false), &serde_json::json!(true))
    );
    assert!(both[1]["valid_to"].is_null());

    // Nothing changed since: nothing new.
    let again = extract(&cloud.edge_url);
    assert!(again.contains("vendors: 0 rows changed"), "{again}");
    assert_eq!(versions(9001), both);
}

#[tokio::test]
async fn flyer_opens_per_vendor_equal_an_independent_count_of_the_generated_events() {
    let cloud = shared_cloud();
    // A day of their own in the shared cloud (the core rows begin on 2026-11-01, other fleets
    // open on 2026-11-22), so that the warehouse panel's day is theirs only.
    let day = "2026-11-15";
    let file = crate::events::generate_fleet_from(
        &cloud.edge_url,
        "flyer-readers",
        15,
        40,
        21,
        Some(&format!("{day}T10:00:00Z")),
    );
    let (app_id, key) = crate::events::register(&cloud.edge_url, "Flyer readers");
    let out = tally(
        &["collect", file.to_str().unwrap(), "--key", &key],
        &cloud.edge_url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    extract(&cloud.edge_url);

    // Independently: each valid flyer_open once, by the UTC day it happened and its flyer's
    // vendor in the core database.
    let url = String::from_utf8_lossy(&tally(&["core", "url"], &cloud.edge_url).stdout)
        .trim()
        .to_string();
    let vendor_of: BTreeMap<String, String> = query(&url, "SELECT flyer_id, vendor_id FROM flyers")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let (Some(id), Some(_device), Some(flyer)) = (
            e["event_id"].as_str(),
            e["device"]["id"].as_str(),
            e["attributes"]["flyer_id"].as_u64(),
        ) else {
            continue;
        };
        if e["event_type"] != "flyer_open" || !seen.insert(id.to_string()) {
            continue;
        }
        let day = e["client_time"].as_str().unwrap()[..10].to_string();
        *want
            .entry((day, vendor_of[&flyer.to_string()].clone()))
            .or_default() += 1;
    }
    assert!(
        want.values().sum::<u64>() > 20,
        "the fleet opens flyers: {want:?}"
    );

    let got: BTreeMap<(String, String), u64> =
        sql_file(&cloud.edge_url, "events/flyer_opens_per_vendor")
            .into_iter()
            .filter(|r| r["app_id"] == app_id.as_str())
            .map(|r| {
                let day = r["day"].as_str().unwrap()[..10].to_string();
                let vendor = r["vendor_id"].to_string().trim_matches('"').to_string();
                let opens = r["opens"]
                    .as_u64()
                    .unwrap_or_else(|| r["opens"].as_str().unwrap().parse().unwrap());
                ((day, vendor), opens)
            })
            .collect();
    assert_eq!(got, want);

    // The dashboard's warehouse panel: VendorOpensFunction, invoked for that day as its schedule
    // invokes it for today, then the live API's answer.
    let request =
        std::env::temp_dir().join(format!("tally-vendor-opens-{}.json", std::process::id()));
    std::fs::write(&request, format!("{{\"day\": \"{day}\"}}")).unwrap();
    let out = tally(
        &[
            "invoke",
            "VendorOpensFunction",
            "--event",
            request.to_str().unwrap(),
        ],
        &cloud.edge_url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) =
        tally_cloud::http::http_get(&format!("{}/api/v1/dashboard", cloud.api_url))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let dashboard: serde_json::Value = serde_json::from_str(&body).unwrap();
    let panel = &dashboard["vendor_opens"];
    assert_eq!(panel["day"], day, "{panel}");
    let on_the_day: BTreeMap<String, u64> = want
        .iter()
        .filter(|((d, _), _)| d == day)
        .map(|((_, vendor), n)| (vendor.clone(), *n))
        .collect();
    let shown: BTreeMap<String, u64> = panel["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["vendor_id"].to_string(), v["opens"].as_u64().unwrap()))
        .collect();
    let mut top: Vec<(&String, &u64)> = on_the_day.iter().collect();
    top.sort_by(|a, b| {
        b.1.cmp(a.1)
            .then(a.0.parse::<i64>().unwrap().cmp(&b.0.parse().unwrap()))
    });
    let top: BTreeMap<String, u64> = top
        .into_iter()
        .take(vendor_opens::TOP)
        .map(|(v, n)| (v.clone(), *n))
        .collect();
    assert_eq!(shown, top, "the panel's top vendors: {panel}");
    assert_eq!(panel["opens"], on_the_day.values().sum::<u64>());
    assert_eq!(
        panel["other_vendors"].as_u64().unwrap(),
        on_the_day.values().sum::<u64>() - top.values().sum::<u64>()
    );
    assert_eq!(
        panel["unknown"], 0,
        "every generated flyer is in the core database"
    );
}
