//! The template read: the real one, and small ones for conditions and nested applications.

use super::*;

fn template() -> Template {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    Template::load(&path, "tally", &BTreeMap::new()).unwrap()
}

#[test]
fn resolves_refs_getatts_and_subs_of_the_real_template() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let per_model = BTreeMap::from([("GenderDeployment".into(), "per-model".into())]);
    let t = Template::load(&path, "tally", &per_model).unwrap();
    assert!(!t.resources.contains_key("GenderModelsFunction"));
    assert_eq!(t.omitted["GenderModelsFunction"], "CombinedDeployment");
    let f = &t.resources["Model2Function"];
    let props = t.resolved_properties(f).unwrap();
    let env = &props["Environment"]["Variables"];
    assert_eq!(env["MODEL"], "MODEL2");
    assert_eq!(env["STATE_TABLE"], "tally-GenderStateTable");
    assert_eq!(env["WINDOW_DAYS"], "7");
    let stmts = &props["Policies"][0]["Statement"];
    assert_eq!(
        stmts[3]["Resource"],
        "arn:aws:s3:::tally-archivebucket/dead-letter/MODEL2/*"
    );
    let esm = t.resolved_properties(&t.resources["Model2Visits"]).unwrap();
    assert_eq!(
        esm["EventSourceArn"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/tally-VisitsStream"
    );
    assert_eq!(esm["BatchSize"], "2000");
}

#[test]
fn parameters_can_be_overridden_and_unknown_ones_are_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let t = Template::load(
        &path,
        "tally",
        &BTreeMap::from([("WindowDays".into(), "3".into())]),
    )
    .unwrap();
    assert_eq!(t.parameters["WindowDays"], "3");
    let err = Template::load(
        &path,
        "tally",
        &BTreeMap::from([("Nope".into(), "3".into())]),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "template: unknown parameter Nope");
}

#[test]
fn unsupported_intrinsics_are_named() {
    let t = template();
    let err = t
        .resolve(
            &serde_json::json!({"Fn::FindInMap": ["M", "a", "b"]}),
            "Resources.X.Properties.Y",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template feature not supported locally: Fn::FindInMap at Resources.X.Properties.Y"
    );
}

fn conditional(mode: &str) -> Template {
    let dir = std::env::temp_dir().join(format!("tally-cond-{}-{mode}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(
        &path,
        r#"
Parameters:
  Mode:
    Type: String
    Default: one
  Size:
    Type: Number
    Default: 3
Conditions:
  IsOne: !Equals [!Ref Mode, one]
  IsMany: !Not [!Condition IsOne]
  ManyAndBig: !And [!Condition IsMany, !Or [!Equals [!Ref Size, 3], !Equals [!Ref Size, 4]]]
Resources:
  One:
    Type: AWS::SQS::Queue
    Condition: IsOne
  Many:
    Type: AWS::SQS::Queue
    Condition: IsMany
    Properties:
      DelaySeconds: !If [ManyAndBig, 5, !Ref AWS::NoValue]
      Tags: [!If [IsOne, {Key: a, Value: b}, !Ref AWS::NoValue]]
"#,
    )
    .unwrap();
    Template::load(
        &path,
        "tally",
        &BTreeMap::from([("Mode".into(), mode.into())]),
    )
    .unwrap()
}

#[test]
fn conditions_choose_resources_and_values() {
    let one = conditional("one");
    assert!(one.resources.contains_key("One") && !one.resources.contains_key("Many"));
    assert!(!one.conditions["IsMany"]);
    let many = conditional("many");
    assert!(!many.resources.contains_key("One"));
    assert!(many.conditions["ManyAndBig"]);
    let props = many.resolved_properties(&many.resources["Many"]).unwrap();
    assert_eq!(props["DelaySeconds"], 5);
    assert_eq!(
        props["Tags"],
        serde_json::json!([]),
        "AWS::NoValue drops the item"
    );
    let none = many
        .resolve(
            &serde_json::json!({"A": {"Fn::If": ["IsOne", 1, {"Ref": "AWS::NoValue"}]}, "B": 2}),
            "X",
        )
        .unwrap();
    assert_eq!(
        none,
        serde_json::json!({"B": 2}),
        "AWS::NoValue drops the key"
    );
}

/// A root with one nested application in a folder of its own; `child` is its template.
fn nested(name: &str, passes: &str, child: &str) -> Result<Template, TemplateError> {
    let dir = std::env::temp_dir().join(format!("tally-nested-{}-{name}", std::process::id()));
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("template.yaml"),
        format!(
            r#"
Parameters:
  Mode:
    Type: String
    Default: one
Resources:
  Shared:
    Type: AWS::SQS::Queue
  App:
    Type: AWS::Serverless::Application
    Properties:
      Location: app/template.yaml
      Parameters:
{passes}
  Reader:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !GetAtt App.Outputs.StreamArn
"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("app/template.yaml"), child).unwrap();
    Template::load(&dir.join("template.yaml"), "tally", &BTreeMap::new())
}

const CHILD: &str = r#"
Parameters:
  Mode:
    Type: String
  SharedArn:
    Type: String
Globals:
  Function:
    Timeout: 9
Conditions:
  IsOne: !Equals [!Ref Mode, one]
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties:
      Name: !If [IsOne, !Sub "${AWS::StackName}-one", many]
      Tags: [{Key: queue, Value: !Ref SharedArn}]
Outputs:
  StreamArn:
    Value: !GetAtt Stream.Arn
"#;

#[test]
fn nested_applications_get_their_parameters_and_give_their_outputs() {
    let passes = "        Mode: !Ref Mode\n        SharedArn: !GetAtt Shared.Arn";
    let t = nested("ok", passes, CHILD).unwrap();
    assert_eq!(t.scopes.len(), 2);
    let stream = &t.resources["Stream"];
    assert_eq!(t.scopes[stream.scope].app, "App");
    assert!(t.dir_of(stream).ends_with("app"));
    assert_eq!(t.globals_of(stream).unwrap()["Function"]["Timeout"], 9);
    let props = t.resolved_properties(stream).unwrap();
    assert_eq!(props["Name"], "tally-App-one", "the child's own stack name");
    assert_eq!(
        props["Tags"][0]["Value"],
        "arn:aws:sqs:us-east-1:000000000000:tally-Shared"
    );
    let reader = t.resolved_properties(&t.resources["Reader"]).unwrap();
    assert_eq!(
        reader["QueueName"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/tally-Stream"
    );
}

#[test]
fn a_nested_application_must_get_what_it_declares_and_declare_what_it_gets() {
    let missing = nested("missing", "        Mode: !Ref Mode", CHILD).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "template: App does not pass parameter SharedArn, which has no Default"
    );
    let extra = "        Mode: !Ref Mode\n        SharedArn: x\n        Size: 3";
    let extra = nested("extra", extra, CHILD).unwrap_err();
    assert_eq!(
        extra.to_string(),
        "template: App passes parameter Size, which its template does not declare"
    );
}

#[test]
fn a_logical_id_is_unique_across_the_applications() {
    let child = CHILD
        .replace("  Stream:", "  Shared:")
        .replace("Stream.Arn", "Shared.Arn");
    let passes = "        Mode: !Ref Mode\n        SharedArn: x";
    let err = nested("dup", passes, &child).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("template: logical ID Shared is declared in the root template and in App"),
        "{err}"
    );
}

#[test]
fn the_real_template_is_a_root_of_applications() {
    let t = template();
    let apps: Vec<&str> = t.scopes.iter().skip(1).map(|s| s.app.as_str()).collect();
    // In the order they can be made: the lake before the pipelines that archive through its
    // ArchiveStampFunction, whatever order the root lists them in.
    assert_eq!(
        apps,
        [
            "EventsApp",
            "LakeApp",
            "GenderApp",
            "RulesApp",
            "RsvpApp",
            "ApiApp"
        ]
    );
    // Every stream and function is in an application; the root keeps what they share.
    for r in t.resources.values() {
        let in_root = r.scope == 0;
        match r.kind.as_str() {
            "AWS::Kinesis::Stream" | "AWS::Serverless::Function" => {
                assert!(!in_root, "{} is in the root", r.logical_id)
            }
            "AWS::S3::Bucket" | "AWS::Glue::Database" | "AWS::SNS::Topic" => {
                assert!(in_root, "{} is not in the root", r.logical_id)
            }
            _ => {}
        }
    }
}

#[test]
fn a_parameter_and_a_resource_may_not_share_a_name() {
    let child = CHILD
        .replace("  Stream:\n", "  Mode:\n")
        .replace("Stream.Arn", "Mode.Arn");
    let passes = "        Mode: !Ref Mode\n        SharedArn: x";
    let err = nested("clash", passes, &child).unwrap_err();
    assert!(
        err.to_string()
            .contains("Mode in App is both a parameter and a resource"),
        "{err}"
    );
}

#[test]
fn an_output_whose_condition_is_false_does_not_exist() {
    let child = CHILD.replace(
        "  StreamArn:\n    Value",
        "  StreamArn:\n    Condition: IsOne\n    Value",
    );
    let one = "        Mode: !Ref Mode\n        SharedArn: x";
    let t = nested("output-on", one, &child).unwrap();
    assert!(t.scopes[1].outputs.contains_key("StreamArn"));
    let many = "        Mode: many\n        SharedArn: x";
    let t = nested("output-off", many, &child).unwrap();
    assert!(t.scopes[1].outputs.is_empty());
    let err = t.resolved_properties(&t.resources["Reader"]).unwrap_err();
    assert!(
        err.to_string().contains("App has no output StreamArn"),
        "{err}"
    );
}
