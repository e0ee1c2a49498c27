//! Seed 004's ML step as one function (`GroupClustersFunction`): the lake's groups clustered by
//! their topics (`group_clusters`), a random forest that predicts a group's cluster from its
//! features (`group_cluster_predictions`), judged on held-out groups against the majority
//! (`cluster_model_eval`). On AWS it runs on a schedule; `tally clusters` invokes it, locally or
//! with `--aws`, and prints what it answers.

pub mod clustering;
pub mod features;
pub mod forest;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_aws::config::s3_client;
use tally_aws::{DynamoTable, Env, Error, S3Objects, SdkConfig};
use tally_engine::ports::ObjectStore;
use tally_lake::rows::{write_parquet, Row, Value};
use tally_lake::rsvp::{CLUSTER_MODEL_EVAL, GROUP_CLUSTERS, GROUP_CLUSTER_PREDICTIONS};
use tally_lake::{LakeError, Table};

use crate::forest::ForestParams;
use crate::model::Evaluation;

/// What an invocation asks; the schedule sends `{}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Request {
    /// How many clusters to cut the dendrogram into (the function's `CLUSTERS` when absent).
    #[serde(default)]
    pub clusters: Option<u32>,
}

/// What a run did: the function's answer, `tally clusters`' report, and the dashboard's panel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub groups: usize,
    pub clusters: usize,
    /// Each cluster's size and its three commonest topics (by name), by cluster number.
    pub per_cluster: Vec<ClusterSize>,
    /// `None` with too few groups to hold some out.
    pub model: Option<Evaluation>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSize {
    pub cluster: i32,
    pub groups: usize,
    pub topics: Vec<String>,
}

/// Each cluster's size and commonest topics, named as `names` names them.
fn per_cluster(
    groups: &BTreeMap<i64, features::Group>, clusters: &BTreeMap<i64, i32>,
    names: &BTreeMap<String, String>,
) -> Vec<ClusterSize> {
    let mut by_cluster: BTreeMap<i32, (usize, BTreeMap<&str, usize>)> = BTreeMap::new();
    for (id, c) in clusters {
        let (n, topics) = by_cluster.entry(*c).or_default();
        *n += 1;
        for t in groups.get(id).into_iter().flat_map(|g| &g.topics) {
            *topics.entry(t.as_str()).or_default() += 1;
        }
    }
    by_cluster
        .into_iter()
        .map(|(cluster, (groups, topics))| {
            let mut common: Vec<(&str, usize)> = topics.into_iter().collect();
            common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            ClusterSize {
                cluster,
                groups,
                topics: common
                    .into_iter()
                    .take(3)
                    .map(|(t, _)| names.get(t).cloned().unwrap_or_else(|| t.to_string()))
                    .collect(),
            }
        })
        .collect()
}

pub struct GroupClusters<O> {
    pub store: O,
    pub clusters: u32,
    pub forest: ForestParams,
}

/// The function: the ML step and the table its summary is kept in for the dashboard.
pub struct GroupClustersFunction {
    pub step: GroupClusters<S3Objects>,
    pub dashboard: DynamoTable,
}

/// Reads `ARCHIVE_BUCKET` (the lake's bucket), `CLUSTERS` (8 when unset) and `RSVP_STATE_TABLE`
/// (where the dashboard reads the summary).
pub fn from_env(config: &SdkConfig, env: &Env) -> Result<GroupClustersFunction, Error> {
    Ok(GroupClustersFunction {
        step: GroupClusters {
            store: S3Objects::new(s3_client(config), env.var("ARCHIVE_BUCKET")?),
            clusters: env.parse_at_least("CLUSTERS", 8, 1)?,
            forest: ForestParams::default(),
        },
        dashboard: DynamoTable::from_env(config, env, "RSVP_STATE_TABLE")?,
    })
}

/// Replaces `table` whole with `rows` (one file, as every run writes all of it).
async fn replace<O: ObjectStore>(store: &O, table: &Table, rows: &[Row]) -> Result<(), LakeError> {
    let file = format!("{}part.parquet", table.prefix());
    store.put(&file, write_parquet(table, rows)?).await?;
    Ok(())
}

impl<O: ObjectStore> GroupClusters<O> {
    pub async fn run(&self, request: &Request, now: DateTime<Utc>) -> Result<Report, String> {
        let k = request.clusters.unwrap_or(self.clusters).clamp(1, 1000) as usize;
        let groups = features::read_groups(&self.store)
            .await
            .map_err(|e| format!("cannot read the groups: {e}"))?;
        let topics = groups
            .iter()
            .map(|(id, g)| (*id, g.topics.clone()))
            .collect();
        let clusters = clustering::cluster(&topics, k);
        let evaluation = model::train_and_evaluate(&groups, &clusters, self.forest)?;

        let cluster_rows: Vec<Row> = clusters
            .iter()
            .map(|(g, c)| vec![Value::BigInt(*g), Value::Int(*c)])
            .collect();
        let (prediction_rows, eval_rows): (Vec<Row>, Vec<Row>) = match &evaluation {
            None => (Vec::new(), Vec::new()),
            Some(e) => (
                e.predictions
                    .iter()
                    .map(|p| {
                        vec![
                            Value::BigInt(p.group_id),
                            Value::Int(p.cluster),
                            Value::Int(p.predicted),
                            Value::Double(p.probability),
                            Value::str(p.split),
                        ]
                    })
                    .collect(),
                vec![vec![
                    Value::str(e.model),
                    Value::Double(e.accuracy),
                    Value::Double(e.baseline_accuracy),
                    Value::BigInt(e.n_train as i64),
                    Value::BigInt(e.n_test as i64),
                    Value::Timestamp(now),
                ]],
            ),
        };
        for (table, rows) in [
            (&GROUP_CLUSTERS, &cluster_rows),
            (&GROUP_CLUSTER_PREDICTIONS, &prediction_rows),
            (&CLUSTER_MODEL_EVAL, &eval_rows),
        ] {
            replace(&self.store, table, rows)
                .await
                .map_err(|e| format!("cannot write {}: {e}", table.name))?;
        }
        let names = features::topic_names(&self.store)
            .await
            .map_err(|e| format!("cannot read the topics: {e}"))?;
        Ok(Report {
            groups: clusters.len(),
            clusters: clusters.values().collect::<BTreeSet<_>>().len(),
            per_cluster: per_cluster(&groups, &clusters, &names),
            model: evaluation,
            at: now,
        })
    }
}
