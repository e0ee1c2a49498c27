//! The README's example pipeline (`functions/example-views`), as "Adding a pipeline" builds it:
//! its template is a nested application of the root (with `ExamplePipeline=yes`), and its
//! function on its sample event, against the emulators, publishes each page's count per minute
//! once however often the batch comes, and dead-letters what is not a view.

use std::collections::BTreeMap;

use serde_json::Value;
use tally_aws::kinesis_event::KinesisEvent;

use crate::support::{deliver_twice, event_file, Stack};

#[tokio::test]
async fn the_example_pipeline_counts_its_sample_event_once_however_often_it_comes() {
    let stack = Stack::new(&[("ExamplePipeline", "yes")]).await;
    let f = example_views::from_env(&stack.sdk, &stack.function_env("ViewsFunction")).unwrap();
    let event: KinesisEvent = serde_json::from_value(event_file("ViewsFunction.json")).unwrap();
    // The second delivery is a redelivery: nothing counts twice.
    deliver_twice(&f, &event).await;

    // What a reader of ViewCountsStream keeps: the count with the highest rev per page and minute.
    let mut newest: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for r in stack.read_stream("ViewCountsStream").await {
        let v: Value = serde_json::from_slice(&r.data).unwrap();
        let key = (
            v["page"].as_str().unwrap().into(),
            v["minute"].as_str().unwrap().into(),
        );
        let (rev, views) = (v["rev"].as_u64().unwrap(), v["views"].as_u64().unwrap());
        let e = newest.entry(key).or_insert((rev, views));
        if rev >= e.0 {
            *e = (rev, views);
        }
    }
    let counts: Vec<(&str, &str, u64)> = newest
        .iter()
        .map(|((p, m), (_, n))| (p.as_str(), m.as_str(), *n))
        .collect();
    assert_eq!(
        counts,
        [
            ("/home", "2026-11-22T09:59Z", 2),
            ("/pricing", "2026-11-22T09:59Z", 1)
        ]
    );

    let letters = stack.objects("ArchiveBucket", "dead-letter/views/").await;
    let reasons: Vec<String> = letters
        .values()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap()["reason"].to_string())
        .collect();
    assert_eq!(
        reasons,
        ["\"missing field page\""],
        "the view without a page"
    );
}

#[test]
fn the_example_pipeline_is_deployed_only_when_asked() {
    let default = crate::support::template_with(&[]);
    assert!(!default.resources.contains_key("ViewsFunction"));
    assert_eq!(default.omitted["ExampleApp"], "WithExamplePipeline");
    let with = crate::support::template_with(&[("ExamplePipeline", "yes")]);
    let f = &with.resources["ViewsFunction"];
    assert_eq!(with.scopes[f.scope].app, "ExampleApp");
    assert_eq!(
        with.code_dir(f).unwrap(),
        std::path::Path::new("functions/example-views")
    );
}
