//! template.yaml and every nested application's template pass cfn-lint, `sam validate --lint` and
//! checkov (all installed by `make setup`).

use std::process::Command;

use crate::support::local_root;

fn run(tool: &str, args: &[&str]) -> String {
    run_in(".venv", tool, args)
}

/// Runs `tool` of the virtual environment `venv` in the project root; its standard output.
fn run_in(venv: &str, tool: &str, args: &[&str]) -> String {
    let root = local_root();
    let bin = root.join(venv).join("bin").join(tool);
    assert!(
        bin.is_file(),
        "{tool} is not installed at {}: run `make setup`",
        bin.display()
    );
    let out = Command::new(&bin)
        .args(args)
        .current_dir(&root)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The root template and its applications' templates (the example's too), relative to the
/// project root.
fn templates() -> Vec<String> {
    let template = crate::support::template_with(&[("ExamplePipeline", "yes")]);
    let root = local_root();
    let files: Vec<String> = template
        .scopes
        .iter()
        .map(|s| s.file.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        files.len() >= 8,
        "the root and seven applications: {files:?}"
    );
    files
}

#[test]
fn cfn_lint_passes_on_every_template() {
    let files = templates();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    run("cfn-lint", &args);
}

#[test]
fn sam_validate_lint_passes_on_every_template() {
    for file in templates() {
        run(
            "sam",
            &[
                "validate",
                "--lint",
                "--template-file",
                &file,
                "--region",
                "us-east-1",
            ],
        );
    }
}

/// checkov finds nothing, and every check it skips for a resource says why in that resource's
/// Metadata (the checks that apply to no resource are in .checkov.yaml, each with its reason).
#[test]
fn checkov_passes_and_every_skip_has_a_reason() {
    let json = run_in(
        ".venv-checkov",
        "checkov",
        &["--config-file", ".checkov.yaml", "-o", "json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let summary = &report["summary"];
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    let skipped = report["results"]["skipped_checks"].as_array().unwrap();
    for s in skipped {
        let reason = s["check_result"]["suppress_comment"].as_str().unwrap_or("");
        assert!(
            reason.len() > 20,
            "{} skips {} without a reason",
            s["resource"],
            s["check_id"]
        );
    }
    let files: std::collections::BTreeSet<&str> = report["results"]["passed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["file_path"].as_str())
        .collect();
    assert!(
        files.len() >= 8,
        "checkov read the root and every application: {files:?}"
    );
}

/// Each function's `from_env`, on exactly the variables the template gives it (the local cloud's
/// way of reading them), reads every one of them: a variable nothing reads is a typo or a leftover.
/// `RUST_LOG` is read by the tracing set-up every function shares.
#[tokio::test]
async fn every_function_reads_every_variable_the_template_gives_it() {
    let example = &[("ExamplePipeline", "yes")][..];
    let core_db = &[
        (
            "CoreDbEndpoint",
            "core.cluster-x.us-east-1.rds.amazonaws.com:3306",
        ),
        (
            "CoreDbSecretArn",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:core-reader-AbCdEf",
        ),
    ][..];
    for (params, functions) in [
        (&[][..], 16),
        (crate::support::PER_MODEL, 18),
        (example, 17),
        (core_db, 17),
    ] {
        every_function_reads_its_variables(params, functions).await;
    }
}

/// In the deployment `params` choose, which has `functions` functions.
async fn every_function_reads_its_variables(params: &[(&str, &str)], functions: usize) {
    let template = crate::support::template_with(params);
    let sdk = tally_cloud::clients::local_config("http://127.0.0.1:9").await;
    let mut checked = 0;
    for f in template.of_kind("AWS::Serverless::Function") {
        let id = &f.logical_id;
        let vars = tally_cloud::lambda::function_environment(&template, id).unwrap();
        let env = tally_aws::Env::from_map(vars);
        let code = template.code_dir(f).unwrap().display().to_string();
        let built = match code.as_str() {
            "functions/gender-model" => gender_model::from_env(&sdk, &env).map(drop),
            "functions/group-clusters" => group_clusters::from_env(&sdk, &env).map(drop),
            "functions/core-extractor" => core_extractor::function::from_env(&sdk, &env).map(drop),
            "functions/vendor-opens" => vendor_opens::from_env(&sdk, &env).map(drop),
            "functions/rule-engine" => rule_engine::from_env(&sdk, &env).map(drop),
            "functions/results-writer" => results_writer::from_env(&sdk, &env).map(drop),
            "functions/gender-api" => gender_api::GenderApi::from_env(&sdk, &env).map(drop),
            "functions/lake-writer" => lake_writer::from_env(&sdk, &env).map(drop),
            "functions/rsvp-stats" => rsvp_stats::from_env(&sdk, &env).map(drop),
            "functions/dashboard-feed" => dashboard_feed::from_env(&sdk, &env).map(drop),
            "functions/live-api" => live_api::LiveApi::from_env(&sdk, &env).map(drop),
            "functions/collect" => collect::CollectApi::from_env(&sdk, &env).map(drop),
            "functions/events-metrics" => events_metrics::from_env(&sdk, &env).map(drop),
            "functions/example-views" => example_views::from_env(&sdk, &env).map(drop),
            "functions/events-router" => {
                events_router::EventsRouter::from_env(&sdk, &env).map(drop)
            }
            // The archive's stamp reads nothing but its log level.
            "functions/archive-stamp" => Ok(()),
            other => panic!("{id}: no from_env known for {other}: add it to this test"),
        };
        built.unwrap_or_else(|e| panic!("{id}: {e}"));
        let unread: Vec<String> = env
            .unread()
            .into_iter()
            .filter(|v| v != "RUST_LOG")
            .collect();
        assert!(
            unread.is_empty(),
            "{id} is given {unread:?} but never reads them"
        );
        checked += 1;
    }
    assert_eq!(
        checked, functions,
        "every function of the template, {params:?}"
    );
}

/// `StreamParallelizationFactor` reaches exactly the mappings whose functions keep their state
/// exact under it (watermarks per shard and partition key, or conditional upserts by revision);
/// the functions whose minute buckets rely on each shard's order never get it.
#[test]
fn the_parallelization_factor_reaches_only_functions_exact_under_it() {
    let template = crate::support::template_with(&[("StreamParallelizationFactor", "4")]);
    let shard_ordered = [
        "functions/rsvp-stats",
        "functions/events-metrics",
        "functions/dashboard-feed",
    ];
    let mut parallel = Vec::new();
    for m in template.of_kind("AWS::Lambda::EventSourceMapping") {
        let props = template.resolved_properties(m).unwrap();
        if !props["EventSourceArn"]
            .as_str()
            .unwrap_or_default()
            .contains(":kinesis:")
        {
            continue;
        }
        let function = template
            .logical_id_of(props["FunctionName"].as_str().unwrap())
            .unwrap()
            .to_string();
        let code = template
            .code_dir(&template.resources[&function])
            .unwrap()
            .display()
            .to_string();
        let factor = props
            .get("ParallelizationFactor")
            .map(tally_stack::template::scalar_string);
        if shard_ordered.contains(&code.as_str()) {
            assert_eq!(
                factor, None,
                "{}: {code} relies on shard order",
                m.logical_id
            );
        } else {
            assert_eq!(factor.as_deref(), Some("4"), "{}", m.logical_id);
            // A function that picks its watermarks' scope from the factor is told this one.
            let told = template
                .resolved_properties(&template.resources[&function])
                .unwrap()["Environment"]["Variables"]
                .get("PARALLELIZATION_FACTOR")
                .map(tally_stack::template::scalar_string);
            if code == "functions/rule-engine" {
                assert_eq!(told.as_deref(), Some("4"), "{function}");
            }
            parallel.push(function);
        }
    }
    parallel.sort();
    assert_eq!(
        parallel,
        [
            "GenderModelsFunction",
            "PaidUserFunction",
            "PossibleBrokerFunction",
            "PropertyStatusFunction",
            "ResultsWriterFunction"
        ]
    );
}

/// The root template's `Rules` refuse a deployment that cannot work, as CloudFormation would,
/// before anything starts: `ApiReadAuth=jwt` without an issuer.
#[test]
fn a_jwt_read_auth_without_an_issuer_is_refused_at_start() {
    let params = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let load = |pairs: &[(&str, &str)]| {
        tally_stack::template::Template::load(
            &local_root().join("template.yaml"),
            "rules",
            &params(pairs),
        )
    };
    let err = load(&[("ApiReadAuth", "jwt")]).unwrap_err().to_string();
    assert!(
        err.contains("Rules.JwtReadAuthNeedsAnIssuerAndAudience")
            && err.contains("ApiReadAuth jwt needs ApiJwtIssuer"),
        "{err}"
    );
    let complete = [
        ("ApiReadAuth", "jwt"),
        ("ApiJwtIssuer", "https://issuer.example"),
        ("ApiJwtAudience", "dashboard"),
    ];
    assert!(load(&complete).is_ok());
    assert!(load(&[("ApiReadAuth", "iam")]).is_ok());
}

/// Seed 002's core database on AWS: an endpoint and its secret together, or neither (no
/// extractor); subnets only with security groups, and then the extractor runs in them.
#[test]
fn the_core_database_takes_an_endpoint_and_a_secret_and_optionally_a_vpc() {
    let load = |pairs: &[(&str, &str)]| {
        let overrides = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tally_stack::template::Template::load(
            &local_root().join("template.yaml"),
            "core",
            &overrides,
        )
    };
    let endpoint = (
        "CoreDbEndpoint",
        "core.cluster-x.us-east-1.rds.amazonaws.com:3306",
    );
    let secret = (
        "CoreDbSecretArn",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:core-reader-AbCdEf",
    );
    for half in [[endpoint], [secret]] {
        let err = load(&half).unwrap_err().to_string();
        assert!(
            err.contains("CoreDbEndpoint and CoreDbSecretArn go together"),
            "{err}"
        );
    }
    let err = load(&[endpoint, secret, ("CoreDbSubnetIds", "subnet-1,subnet-2")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CoreDbSubnetIds needs CoreDbSecurityGroupIds"),
        "{err}"
    );

    let none = load(&[]).unwrap();
    assert!(!none.resources.contains_key("CoreExtractorFunction"));
    let public = load(&[endpoint, secret]).unwrap();
    let props = |t: &tally_stack::template::Template| {
        t.resolved_properties(&t.resources["CoreExtractorFunction"])
            .unwrap()
    };
    assert!(props(&public).get("VpcConfig").is_none());
    assert_eq!(
        props(&public)["Environment"]["Variables"]["CORE_DB_SSL_MODE"],
        "REQUIRED",
        "encrypted unless told otherwise"
    );
    let private = load(&[
        endpoint,
        secret,
        ("CoreDbSubnetIds", "subnet-1,subnet-2"),
        ("CoreDbSecurityGroupIds", "sg-1"),
    ])
    .unwrap();
    assert_eq!(
        props(&private)["VpcConfig"],
        serde_json::json!({"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]})
    );
    assert!(private.resources.contains_key("CoreExtractorSchedule"));
}
