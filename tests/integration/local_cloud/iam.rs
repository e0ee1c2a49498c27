//! IAM as the local cloud enforces it: the template's policies allow exactly what the pipelines
//! do (every statement is the only one to allow some call, so taking any one out is refused),
//! and a permission taken out is refused as AWS refuses it.

use std::time::Duration;

use tally_cli::{Context, Target};
use tally_cloud::cloud::LocalCloud;
use tally_cloud::http::http_get;
use tally_control::iam::{decide, role_of_function, Authorizer, Call, Decision};
use tally_stack::template::{ACCOUNT, REGION};

use crate::support::{bin_dir, cloud_options, local_root, tally_for, wait_for};

/// Calls a local run does not make, and why each is in a policy: failure paths and AWS's own
/// machinery. Each must be allowed by exactly one statement of its role.
fn calls_no_local_run_makes(cloud: &LocalCloud) -> Vec<(String, Call, &'static str)> {
    let t = &cloud.template;
    let bucket = format!("arn:aws:s3:::{}", t.physical_name("ArchiveBucket"));
    let mut calls = Vec::new();
    for m in &cloud.mappings {
        let role = role_of_function(t, &m.spec.function).unwrap();
        if let Some(queue) = &m.spec.on_failure_queue {
            let call = Call::new(
                "sqs:SendMessage",
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"),
            );
            calls.push((
                role,
                call,
                "a batch whose retries are exhausted is described on the failure queue",
            ));
        }
    }
    for d in &cloud.deliveries {
        for action in [
            "s3:GetBucketLocation",
            "s3:ListBucket",
            "s3:ListBucketMultipartUploads",
        ] {
            let call = Call::new(action, bucket.clone());
            calls.push((
                d.spec.delivery_role.clone(),
                call,
                "Firehose checks its bucket on AWS; locally it only writes objects",
            ));
        }
    }
    let events = t.arn("EventsStream").unwrap();
    for action in ["kinesis:PutRecord", "kinesis:PutRecords"] {
        let call = Call::new(action, events.clone());
        calls.push((
            "EventsUnauthenticatedRole".into(),
            call,
            "a mobile SDK's guest identity (Cognito) puts events directly",
        ));
    }
    let list = Call::new("s3:ListBucket", bucket).with("s3:prefix", vec!["lake/rsvps/".into()]);
    calls.push((
        "LakeWriterFunctionRole".into(),
        list,
        "S3 answers a missing object 404, not 403, only to who may list",
    ));
    let seal = Call::new("dynamodb:PutItem", t.arn("AppsTable").unwrap())
        .with("dynamodb:LeadingKeys", vec!["ingest-seal-key".into()]);
    calls.push((
        "CollectFunctionRole".into(),
        seal,
        "the first function to need the ingest seal's key makes it",
    ));
    calls
}

/// Puts one record that no pipeline can read on every stream a function reads, so that every
/// function writes a dead letter.
async fn put_garbage_everywhere(cloud: &LocalCloud) {
    for m in &cloud.mappings {
        cloud
            .clients
            .kinesis
            .put_record()
            .stream_name(&m.spec.stream_name)
            .partition_key("garbage")
            .data(aws_sdk_kinesis::primitives::Blob::new(
                b"{not json".to_vec(),
            ))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_is_the_only_one_to_allow_something_and_nothing_is_refused() {
    let stack = format!("iam{}", std::process::id());
    let mut opts = cloud_options(&stack);
    opts.params.insert("ExamplePipeline".into(), "yes".into());
    let mut cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context {
        root: local_root(),
        stack,
        target: Target::Local(cloud.edge_url.clone()),
    };
    tally_cli::demo::feed(&mut cloud, &ctx).await.unwrap();
    put_garbage_everywhere(&cloud).await;
    cloud.wait_idle(Duration::from_secs(120)).await.unwrap();
    for route in [
        "/api/v1/getGender/C100?model=MODEL2",
        "/api/v1/rsvp/stats",
        "/api/v1/events/metrics",
        "/api/v1/dashboard",
    ] {
        let (status, body) = http_get(&format!("{}{route}", cloud.api_url))
            .await
            .unwrap();
        assert!(status < 500, "GET {route}: {status} {body}");
    }
    cloud.flush(Duration::from_secs(120)).await.unwrap();
    // The scheduled functions, each fired as EventBridge Scheduler fires it (its role's invoke
    // checked): the ML step over the lake just flushed, then the extractor with a row that fails
    // (its bad record goes to the lake), then the warehouse panel.
    let fire = |id: &'static str| {
        let schedule = cloud.schedules[id].clone();
        async move { String::from_utf8(schedule.fire().await.unwrap()).unwrap() }
    };
    assert!(fire("GroupClustersSchedule").await.contains("\"groups\""));
    super::core_db::query(
        &cloud.core.url,
        "INSERT INTO vendors VALUES (9900, NULL, 'home', '2026-12-01 10:00:00.000')",
    );
    assert!(fire("CoreExtractorSchedule").await.contains("\"bad\":1"));
    assert!(fire("VendorOpensSchedule").await.contains("\"opens\""));

    let iam: std::sync::Arc<Authorizer> = cloud.router.authorizer().expect("IAM is on by default");
    assert!(
        iam.ledger().denied.is_empty(),
        "refused: {:?}",
        iam.ledger().denied
    );
    let elsewhere = calls_no_local_run_makes(&cloud);
    let mut unexplained = Vec::new();
    for (role, i, s) in iam.not_yet_needed() {
        let statements = &iam.role(role).unwrap().statements;
        let explained = elsewhere
            .iter()
            .any(|(r, call, _)| r == role && decide(statements, call) == Decision::Allow(vec![i]));
        if !explained {
            unexplained.push(format!("{role}[{i}]: {:?} on {:?}", s.actions, s.resources));
        }
    }
    assert!(
        unexplained.is_empty(),
        "statements no call needed (take them out, or name the call they are for): {unexplained:#?}"
    );
    // And the calls named for failure paths are allowed (each by its one statement).
    for (role, call, why) in &elsewhere {
        let statements = &iam
            .role(role)
            .unwrap_or_else(|| panic!("no role {role}"))
            .statements;
        assert!(
            matches!(decide(statements, call).clone(), Decision::Allow(by) if by.len() == 1),
            "{role} may not {} on {} ({why})",
            call.action,
            call.resource
        );
    }
    cloud.stop().await;
}

/// The template and the gender application's, in `dir`, with one statement taken out of the
/// models function's policy: the one that lets it write its state.
fn template_without_the_models_state_statement(dir: &std::path::Path) -> std::path::PathBuf {
    let root = local_root();
    let gender =
        std::fs::read_to_string(root.join("functions/tally-pipelines/src/gender/template.yaml"))
            .unwrap();
    let statement = "            - Effect: Allow\n              Action: [dynamodb:UpdateItem, dynamodb:GetItem]\n";
    let start = gender.find(statement).expect("the models' state statement");
    let end = start
        + statement.len()
        + gender[start + statement.len()..]
            .find("            - Effect:")
            .unwrap();
    let gender = format!("{}{}", &gender[..start], &gender[end..]).replace(
        "CodeUri: ../../../",
        &format!("CodeUri: {}/functions/", root.display()),
    );
    std::fs::write(dir.join("gender.yaml"), gender).unwrap();
    let main = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let main = main
        .replace(
            "Location: functions/tally-pipelines/src/gender/template.yaml",
            &format!("Location: {}", dir.join("gender.yaml").display()),
        )
        .replace(
            "Location: functions/",
            &format!("Location: {}/functions/", root.display()),
        );
    let file = dir.join("template.yaml");
    std::fs::write(&file, main).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_taken_out_of_a_policy_is_refused_as_aws_refuses_it() {
    let dir = bin_dir().join(format!("test-logs/iam-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut opts = cloud_options(&format!("noiam{}", std::process::id()));
    opts.template = template_without_the_models_state_statement(&dir);
    let cloud = LocalCloud::start(opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stream = cloud.template.physical_name("VisitsStream");
    cloud
        .clients
        .kinesis
        .put_record()
        .stream_name(&stream)
        .partition_key("C1")
        .data(aws_sdk_kinesis::primitives::Blob::new(
            br#"{"cid":"C1","gndr":"male"}"#.to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let iam = cloud.router.authorizer().unwrap();
    let table = cloud.template.arn("GenderStateTable").unwrap();
    let refused = wait_for(
        "the models' state write refused",
        Duration::from_secs(60),
        || {
            let denied = iam.ledger().denied;
            async move {
                denied
                    .into_iter()
                    .find(|(role, ..)| role == "GenderModelsFunctionRole")
            }
        },
    )
    .await;
    assert_eq!(
        (refused.1.as_str(), refused.2.as_str()),
        ("dynamodb:UpdateItem", table.as_str())
    );
    // The function saw what it would see on AWS.
    let log = cloud.functions["GenderModelsFunction"]
        .spec()
        .log_file
        .clone();
    let text = wait_for(
        "AccessDeniedException in the function's log",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            async move { text.contains("AccessDeniedException").then_some(text) }
        },
    )
    .await;
    assert!(
        text.contains("is not authorized to perform: dynamodb:UpdateItem"),
        "{text}"
    );
    // The end-to-end check of the stack sees the broken pipeline, and says so.
    let (stack, edge) = (cloud.template.stack_name.clone(), cloud.edge_url.clone());
    let out = tokio::task::spawn_blocking(move || {
        tally_for(&stack, &["smoke", "--timeout", "15"], &edge)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL  gender: "), "{stdout}");
    assert!(stdout.contains("ok    rules: "), "{stdout}");
    cloud.stop().await;
}
