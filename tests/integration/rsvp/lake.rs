//! The RSVP tables of the lake against an independent computation over the RSVP lines: each
//! entity once by its id with its latest version's values, each rsvp_id once with its latest
//! version, whatever duplicates the producer sent; the EDA queries' answers; the clusters.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::counted;
use crate::lake::{sql, sql_file};
use crate::support::tally;

/// For each id, the values of the line with the latest `mtime` naming it.
#[derive(Default)]
struct Latest(BTreeMap<String, (i64, Value)>);

impl Latest {
    fn see(&mut self, id: String, mtime: i64, value: Value) {
        let e = self.0.entry(id).or_insert((mtime, value.clone()));
        if mtime > e.0 {
            *e = (mtime, value);
        }
    }

    fn rows(&self) -> Vec<Value> {
        self.0.values().map(|(_, v)| v.clone()).collect()
    }
}

/// The tables (a few columns of each, as `tally sql --format json` prints them), from the lines.
fn expected_tables(lines: &[String]) -> BTreeMap<&'static str, Vec<Value>> {
    let (mut members, mut groups, mut venues, mut events) = (
        Latest::default(),
        Latest::default(),
        Latest::default(),
        Latest::default(),
    );
    let (mut topics, mut group_topics, mut rsvps) =
        (Latest::default(), Latest::default(), Latest::default());
    for l in lines {
        let Some(v) = counted(l) else {
            continue;
        };
        let m = v["mtime"].as_i64().unwrap();
        let (member, group, event) = (&v["member"], &v["group"], &v["event"]);
        members.see(
            member["member_id"].to_string(),
            m,
            json!({"member_id": member["member_id"], "member_name": member["member_name"]}),
        );
        groups.see(
            group["group_id"].to_string(),
            m,
            json!({"group_id": group["group_id"], "group_name": group["group_name"], "group_city": group["group_city"]}),
        );
        let venue_id = v["venue"]["venue_id"].clone();
        if !venue_id.is_null() {
            venues.see(
                venue_id.to_string(),
                m,
                json!({"venue_id": venue_id, "venue_name": v["venue"]["venue_name"]}),
            );
        }
        events.see(
            event["event_id"].to_string(),
            m,
            json!({"event_id": event["event_id"], "group_id": group["group_id"], "venue_id": venue_id}),
        );
        let keys: Vec<Value> = group["group_topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                topics.see(
                    t["urlkey"].to_string(),
                    m,
                    json!({"urlkey": t["urlkey"], "topic_name": t["topic_name"]}),
                );
                t["urlkey"].clone()
            })
            .collect();
        group_topics.see(group["group_id"].to_string(), m, json!(keys));
        rsvps.see(
            v["rsvp_id"].to_string(),
            m,
            json!({"rsvp_id": v["rsvp_id"], "response": v["response"], "member_id": member["member_id"], "event_id": event["event_id"]}),
        );
    }
    let mut pairs: Vec<Value> = group_topics
        .0
        .iter()
        .flat_map(|(g, (_, keys))| {
            let g: i64 = g.parse().unwrap();
            let keys: BTreeSet<String> = keys
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            keys.into_iter()
                .map(move |k| json!({"group_id": g, "urlkey": k}))
        })
        .collect();
    pairs.sort_by_key(|p| (p["group_id"].as_i64(), p["urlkey"].to_string()));
    BTreeMap::from([
        ("members", members.rows()),
        ("groups", groups.rows()),
        ("venues", venues.rows()),
        ("meetup_events", events.rows()),
        ("topics", topics.rows()),
        ("group_topics", pairs),
        ("rsvps", rsvps.rows()),
    ])
}

/// The query that reads what `expected_tables` computes, in the same order.
fn query(table: &str) -> String {
    let (columns, order) = match table {
        "members" => ("member_id, member_name", "CAST(member_id AS VARCHAR)"),
        "groups" => (
            "group_id, group_name, group_city",
            "CAST(group_id AS VARCHAR)",
        ),
        "venues" => ("venue_id, venue_name", "CAST(venue_id AS VARCHAR)"),
        "meetup_events" => ("event_id, group_id, venue_id", "'\"' || event_id || '\"'"),
        "topics" => ("urlkey, topic_name", "'\"' || urlkey || '\"'"),
        "group_topics" => ("group_id, urlkey", "group_id, '\"' || urlkey || '\"'"),
        "rsvps" => (
            "rsvp_id, response, member_id, event_id",
            "CAST(rsvp_id AS VARCHAR)",
        ),
        other => panic!("no table {other}"),
    };
    // Ordered as the computation's keys are: the ids' JSON text.
    format!("SELECT {columns} FROM {table} ORDER BY {order}")
}

/// The tables, the EDA answers and the clusters, from the lines that went through `RsvpStream`.
pub fn check_lake(edge_url: &str, lines: &[String], bots: &[u64]) {
    let want = expected_tables(lines);
    for (table, rows) in &want {
        let got = sql(edge_url, &query(table));
        assert_eq!(got.len(), rows.len(), "rows of {table}");
        assert!(got == *rows, "{table} differs from the lines");
    }

    // The EDA answers, computed from the latest versions.
    let rsvps = &want["rsvps"];
    let mut per_member: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rsvps {
        *per_member
            .entry(r["member_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    let (member, count) = most(per_member);
    let answer = sql_file(edge_url, "rsvp/most_active_member");
    assert_eq!(answer.len(), 1);
    assert_eq!(
        (answer[0]["member_id"].as_i64(), answer[0]["rsvps"].as_i64()),
        (Some(member), Some(count))
    );
    let group_of: BTreeMap<String, i64> = want["meetup_events"]
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_string(),
                e["group_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut yes_per_group: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rsvps.iter().filter(|r| r["response"] == "yes") {
        *yes_per_group
            .entry(group_of[r["event_id"].as_str().unwrap()])
            .or_default() += 1;
    }
    let (group, yes) = most(yes_per_group);
    let answer = sql_file(edge_url, "rsvp/most_popular_group");
    assert_eq!(
        (
            answer[0]["group_id"].as_i64(),
            answer[0]["yes_rsvps"].as_i64()
        ),
        (Some(group), Some(yes))
    );
    assert!(answer[0]["group_name"].is_string());
    // The generator's automated members, and nobody else.
    let found: BTreeSet<u64> = sql_file(edge_url, "rsvp/suspected_bots")
        .iter()
        .map(|r| r["member_id"].as_u64().unwrap())
        .collect();
    assert_eq!(found, bots.iter().copied().collect(), "suspected bots");

    // Clusters: every group in one of the asked number, named by topics.
    let out = tally(&["clusters", "--clusters", "6"], edge_url);
    assert!(
        out.status.success(),
        "tally clusters: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clusters = sql(
        edge_url,
        "SELECT cluster, count(*) AS n FROM group_clusters GROUP BY cluster ORDER BY cluster",
    );
    let sizes: Vec<i64> = clusters.iter().map(|c| c["n"].as_i64().unwrap()).collect();
    assert_eq!(sizes.len(), 6, "{clusters:?}");
    assert_eq!(
        sizes.iter().sum::<i64>() as usize,
        want["groups"].len(),
        "every group once"
    );
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "numbered by size");
    let names = sql_file(edge_url, "rsvp/cluster_names");
    assert_eq!(names.len(), 6);
    assert!(names.iter().all(|n| n["topic_1"].is_string()), "{names:?}");

    // The model of the clusters: a prediction for every group, and the evaluation is what the
    // held-out groups' predictions give.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("accuracy"), "{said}");
    let predicted = sql(
        edge_url,
        "SELECT p.split, count(*) AS n, sum(CASE WHEN p.predicted = p.cluster THEN 1 ELSE 0 END) \
         AS right, sum(CASE WHEN p.cluster = c.cluster THEN 1 ELSE 0 END) AS same_cluster \
         FROM group_cluster_predictions p JOIN group_clusters c USING (group_id) \
         GROUP BY p.split ORDER BY p.split",
    );
    let by_split: BTreeMap<String, (i64, i64, i64)> = predicted
        .iter()
        .map(|r| {
            let n = |k: &str| {
                r[k].as_i64()
                    .unwrap_or_else(|| r[k].as_str().unwrap().parse().unwrap())
            };
            (
                r["split"].as_str().unwrap().to_string(),
                (n("n"), n("right"), n("same_cluster")),
            )
        })
        .collect();
    let (n_test, right, same) = by_split["test"];
    let (n_train, _, same_train) = by_split["train"];
    assert_eq!(
        n_test + n_train,
        want["groups"].len() as i64,
        "every group predicted"
    );
    assert_eq!(
        (same, same_train),
        (n_test, n_train),
        "each with its cluster"
    );
    let eval = sql(edge_url, "SELECT * FROM cluster_model_eval");
    assert_eq!(eval.len(), 1, "{eval:?}");
    assert_eq!(eval[0]["model"], "random_forest");
    assert_eq!(eval[0]["n_test"].as_i64(), Some(n_test));
    assert_eq!(eval[0]["n_train"].as_i64(), Some(n_train));
    let accuracy = eval[0]["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - right as f64 / n_test as f64).abs() < 1e-9,
        "accuracy {accuracy} is {right} of {n_test} held-out groups"
    );
    let baseline = eval[0]["baseline_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&baseline), "{eval:?}");
}

/// The key with the largest count, the smallest key among equals (as the queries order them).
fn most(counts: BTreeMap<i64, i64>) -> (i64, i64) {
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .unwrap()
}
