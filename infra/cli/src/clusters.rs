//! `tally clusters [--clusters K]`: runs the seed's ML step now, by invoking the stack's
//! `GroupClustersFunction` (locally, or with `--aws` the deployed one, which otherwise runs on its
//! schedule): the lake's groups clustered by their topics, the ensemble model of the clusters
//! trained and judged on held-out groups, the three tables written. Prints what it answered.

use anyhow::Result;
use serde_json::Value;

use crate::Context;

#[derive(clap::Args)]
pub struct Args {
    /// How many clusters to cut the dendrogram into (the function's CLUSTERS, 8, when absent).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub clusters: Option<u32>,
}

const FUNCTION: &str = "GroupClustersFunction";

pub async fn run(args: Args, ctx: &Context) -> Result<()> {
    // Locally, everything put before the call is in the lake first.
    if matches!(ctx.target, crate::Target::Local(_)) {
        super::sql::flushed_lake(ctx).await?;
    }
    let request = serde_json::json!({ "clusters": args.clusters });
    let answer = crate::invoke::invoke_now(
        ctx,
        &ctx.deployed().await?,
        FUNCTION,
        &request,
        "clustering the groups and training the model",
    )
    .await?;
    println!("{}", report(&answer));
    Ok(())
}

/// The function's answer, for people.
pub fn report(answer: &Value) -> String {
    let groups = answer["groups"].as_u64().unwrap_or(0);
    if groups == 0 {
        return "no groups in the lake yet: put RSVPs first (tally put RsvpStream ...)".into();
    }
    let mut lines = vec![format!(
        "{groups} groups in {} clusters: group_clusters",
        answer["clusters"]
    )];
    let model = &answer["model"];
    if model.is_null() {
        lines.push(
            "too few groups to hold some out: no model (group_cluster_predictions and \
             cluster_model_eval are empty)"
                .into(),
        );
        return lines.join("\n");
    }
    let share = |v: &Value| format!("{:.2}", v.as_f64().unwrap_or(f64::NAN));
    lines.push(format!(
        "{} trained on {} groups, tested on {} held out: accuracy {}, always the commonest \
         cluster {} (group_cluster_predictions, cluster_model_eval)",
        model["model"].as_str().unwrap_or("model"),
        model["n_train"],
        model["n_test"],
        share(&model["accuracy"]),
        share(&model["baseline_accuracy"]),
    ));
    let listed = |key: &str| -> String {
        model[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                format!(
                    "{} {}",
                    i["feature"].as_str().unwrap_or("?"),
                    share(&i["importance"])
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    lines.push(format!(
        "what the model goes by: {}; most of all {}",
        listed("importance_by_kind"),
        listed("top_features")
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_model_against_its_baseline_and_what_it_goes_by() {
        let answer = serde_json::json!({
            "groups": 40, "clusters": 4,
            "model": {"model": "random_forest", "accuracy": 0.875, "baseline_accuracy": 0.25,
                      "n_train": 32, "n_test": 8,
                      "importance_by_kind": [{"feature": "topics", "importance": 0.9}],
                      "top_features": [{"feature": "topic rust", "importance": 0.4}]}
        });
        let text = report(&answer);
        assert!(text.contains("40 groups in 4 clusters"), "{text}");
        assert!(
            text.contains("accuracy 0.88, always the commonest cluster 0.25"),
            "{text}"
        );
        assert!(
            text.contains("topics 0.90; most of all topic rust 0.40"),
            "{text}"
        );
        let none = report(&serde_json::json!({"groups": 1, "clusters": 1, "model": null}));
        assert!(none.contains("no model"), "{none}");
    }
}
