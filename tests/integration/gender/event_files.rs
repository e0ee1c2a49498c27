//! Each function on its events/ file, against the emulators; the tables, streams and dead letters
//! are checked against answers computed independently.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use gender_api::GenderApi;
use lambda_runtime::{Context, LambdaEvent};
use tally_aws::http::HttpApi;
use tally_aws::kinesis_event::KinesisEvent;
use tally_engine::testing::assert_reasons_include;

use super::oracle;
use crate::support::{event_file, Stack, PER_MODEL};

fn lambda_event(name: &str) -> LambdaEvent<KinesisEvent> {
    LambdaEvent::new(
        serde_json::from_value(event_file(name)).unwrap(),
        Context::default(),
    )
}

/// Latest published answer per cid on GenderResultsStream (highest rev wins, as in the table).
async fn published_answers(stack: &Stack, model: &str) -> BTreeMap<String, String> {
    let mut newest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for r in stack.read_stream("GenderResultsStream").await {
        let v: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
        assert_eq!(
            r.partition_key,
            v["cid"].as_str().unwrap(),
            "results are keyed by cid"
        );
        if v["model"] != model || v["gndr"].is_null() {
            continue;
        }
        let rev = v["rev"].as_u64().unwrap();
        let cid = v["cid"].as_str().unwrap().to_string();
        if newest.get(&cid).is_none_or(|(r, _)| *r < rev) {
            newest.insert(cid, (rev, v["gndr"].as_str().unwrap().to_string()));
        }
    }
    newest.into_iter().map(|(k, (_, g))| (k, g)).collect()
}

/// Runs `logical_id` on its events file: `models` answer as the oracle does, the rejections are
/// dead-lettered under `dead-letter/<state_name>/`, a redelivery changes nothing.
async fn run_model_event(
    params: &[(&str, &str)], logical_id: &str, models: &[&str], state_name: &str,
    expected_rejections: &[&str],
) {
    let stack = Stack::new(params).await;
    let function = gender_model::from_env(&stack.sdk, &stack.function_env(logical_id)).unwrap();
    let file = format!("{logical_id}.json");
    let response = function.handle(lambda_event(&file)).await.unwrap();
    assert!(
        response.batch_item_failures.is_empty(),
        "bad records must not fail the batch: {:?}",
        response.batch_item_failures
    );

    let visits = oracle::visits_of_event(&event_file(&file));
    let window: u64 = stack.template.parameters["WindowDays"].parse().unwrap();
    let mut expected = BTreeMap::new();
    for model in models {
        expected.insert(*model, oracle::answers(&visits, model, Utc::now(), window));
        assert_eq!(
            published_answers(&stack, model).await,
            expected[model],
            "{model} answers on GenderResultsStream"
        );
    }

    // Every rejected record is in the dead-letter location with its reason.
    let letters = stack
        .objects("ArchiveBucket", &format!("dead-letter/{state_name}/"))
        .await;
    let reasons: Vec<String> = letters
        .values()
        .map(|b| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons.len(),
        expected_rejections.len(),
        "dead letters: {reasons:?}"
    );
    assert_reasons_include(&reasons, expected_rejections);

    // Running the same event again (a redelivery) changes no count and no answer.
    let before = scan_state(&stack).await;
    function.handle(lambda_event(&file)).await.unwrap();
    assert_eq!(
        scan_state(&stack).await,
        before,
        "a redelivered batch must not change the state"
    );
    for model in models {
        assert_eq!(published_answers(&stack, model).await, expected[model]);
    }
}

/// The state table as pk -> attributes without bookkeeping that may legitimately differ.
pub async fn scan_state(stack: &Stack) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = stack
        .clients
        .dynamodb
        .scan()
        .table_name(stack.name("GenderStateTable"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items()
        .iter()
        .map(|item| {
            let pk = item["pk"].as_s().unwrap().clone();
            let attrs = item
                .iter()
                .filter(|(k, _)| *k != "pk")
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            (pk, attrs)
        })
        .collect()
}

#[tokio::test]
async fn model1_event_file() {
    let (file, model) = ("Model1Function", "MODEL1");
    run_model_event(PER_MODEL, file, &[model], model, &["malformed json"]).await;
}

#[tokio::test]
async fn model2_event_file() {
    let (file, model) = ("Model2Function", "MODEL2");
    run_model_event(
        PER_MODEL,
        file,
        &[model],
        model,
        &["unknown gender \"other\""],
    )
    .await;
}

#[tokio::test]
async fn model3_event_file() {
    let (file, model) = ("Model3Function", "MODEL3");
    run_model_event(PER_MODEL, file, &[model], model, &["not utf-8"]).await;
}

/// The default deployment: one function, every model's answers, one item per cid.
#[tokio::test]
async fn all_models_event_file() {
    run_model_event(
        &[],
        "GenderModelsFunction",
        &["MODEL1", "MODEL2", "MODEL3"],
        "MODELS",
        &["unknown gender \"other\""],
    )
    .await;
}

#[tokio::test]
async fn model2_state_counts_are_stored_atomically_per_cid() {
    let stack = Stack::new(PER_MODEL).await;
    let function =
        gender_model::from_env(&stack.sdk, &stack.function_env("Model2Function")).unwrap();
    function
        .handle(lambda_event("Model2Function.json"))
        .await
        .unwrap();
    let item = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(stack.name("GenderStateTable"))
        .key("pk", AttributeValue::S("MODEL2#C124".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["c_all_male"].as_n().unwrap(), "2");
    assert_eq!(item["c_all_female"].as_n().unwrap(), "1");
    assert_eq!(
        item["rev"].as_n().unwrap(),
        "1",
        "one write for the cid's three visits"
    );
    assert!(
        item["wm_shardId-000000000000/C124"]
            .as_s()
            .unwrap()
            .starts_with("056:"),
        "the watermark of the shard and partition key is the 56-digit sequence number, ordered"
    );
}

#[tokio::test]
async fn results_writer_event_file_keeps_the_newest_revision() {
    let stack = Stack::new(&[]).await;
    let writer =
        results_writer::from_env(&stack.sdk, &stack.function_env("ResultsWriterFunction")).unwrap();
    let response = writer
        .handle(lambda_event("ResultsWriterFunction.json"))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    // One item per cid, each model's newest result in it.
    let get = |id: &'static str| {
        let stack = &stack;
        async move {
            stack
                .clients
                .dynamodb
                .get_item()
                .table_name(stack.name("GenderResultsTable"))
                .key("_id", AttributeValue::S(id.into()))
                .send()
                .await
                .unwrap()
                .item
        }
    };
    let c124 = get("C124").await.unwrap();
    assert_eq!(
        c124["rev_MODEL2"].as_n().unwrap(),
        "3",
        "rev 3 arrived before rev 2 and must stay"
    );
    assert_eq!(c124["gndr_MODEL2"].as_s().unwrap(), "male");
    assert_eq!(c124["gndr_MODEL1"].as_s().unwrap(), "female");
    assert!(get("C999").await.is_none());
    let letters = stack
        .objects("ArchiveBucket", "dead-letter/results-writer/")
        .await;
    assert_eq!(letters.len(), 1, "the malformed result is dead-lettered");
    // Replaying an older revision later does not overwrite the newer one.
    writer
        .handle(lambda_event("ResultsWriterFunction.json"))
        .await
        .unwrap();
    assert_eq!(
        get("C124").await.unwrap()["rev_MODEL2"].as_n().unwrap(),
        "3"
    );
}

#[tokio::test]
async fn api_event_file_answers_from_the_results_table() {
    let stack = Stack::new(&[]).await;
    results_writer::from_env(&stack.sdk, &stack.function_env("ResultsWriterFunction"))
        .unwrap()
        .handle(lambda_event("ResultsWriterFunction.json"))
        .await
        .unwrap();
    let api = GenderApi::from_env(&stack.sdk, &stack.function_env("GenderApiFunction")).unwrap();
    let request =
        lambda_http::request::from_str(&event_file("GenderApiFunction.json").to_string()).unwrap();
    let response = api.handle(request).await.into_response().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["cid"], "C124");
    assert_eq!(body["model"], "MODEL2");
    assert_eq!(body["gndr"], "male");
    assert_eq!(body["male"], 2);
    assert_eq!(body["female"], 1);
}
