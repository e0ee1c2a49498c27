//! CloudFormation's read calls at the edge, as boto3 (the AWS CLI's library) sends them: the
//! running stack, its nested stacks, every resource with its physical id, the outputs.

use crate::support::{boto3_json, shared_cloud, shared_stack, template_with};

/// What boto3 finds, as JSON: `{stack: {"outputs": {...}, "resources": {logical: [type, physical]}}}`
/// for the root and every nested stack it lists, following `NextToken`.
const BOTO3: &str = r#"
import boto3, json, sys
cfn = boto3.client("cloudformation", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
out, todo = {}, [sys.argv[2]]
while todo:
    name = todo.pop()
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    resources = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
        for r in page["StackResourceSummaries"]:
            resources[r["LogicalResourceId"]] = [r["ResourceType"], r["PhysicalResourceId"]]
            if r["ResourceType"] == "AWS::CloudFormation::Stack":
                todo.append(r["PhysicalResourceId"])
    out[stack["StackName"]] = {
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "resources": resources,
        "parent": stack.get("ParentId"),
    }
try:
    cfn.describe_stacks(StackName="no-such-stack")
except cfn.exceptions.ClientError as e:
    out["error"] = e.response["Error"]["Message"]
print(json.dumps(out))
"#;

#[test]
fn boto3_lists_every_resource_of_the_stack_and_its_nested_stacks() {
    let cloud = shared_cloud();
    let stack = shared_stack();
    let got = boto3_json(BOTO3, &[&cloud.edge_url, &stack]);
    assert_eq!(
        got["error"],
        format!("Stack with id no-such-stack does not exist")
    );
    let root = &got[&stack];
    assert_eq!(
        root["outputs"]["ArchiveBucketName"],
        format!("{stack}-archivebucket")
    );
    assert_eq!(
        root["outputs"]["VisitsStreamName"],
        format!("{stack}-VisitsStream")
    );
    assert!(
        root["outputs"]["ApiUrl"]
            .as_str()
            .unwrap()
            .starts_with(&cloud.api_url),
        "{root}"
    );
    let gender = &got[format!("{stack}-GenderApp")];
    assert!(
        gender["parent"]
            .as_str()
            .unwrap()
            .contains(&format!("stack/{stack}/")),
        "{gender}"
    );
    assert_eq!(
        gender["resources"]["VisitsStream"],
        serde_json::json!(["AWS::Kinesis::Stream", format!("{stack}-VisitsStream")])
    );
    assert_eq!(
        gender["resources"]["GenderModelsFunction"][0],
        "AWS::Lambda::Function"
    );
    assert_eq!(
        gender["resources"]["GenderModelsFunctionRole"][0],
        "AWS::IAM::Role"
    );
    // Every resource of the template, in one stack or another, by its logical id.
    let listed: std::collections::BTreeSet<String> = got
        .as_object()
        .unwrap()
        .values()
        .filter_map(|s| s["resources"].as_object())
        .flat_map(|r| r.keys().cloned())
        .collect();
    let template = template_with(&[]);
    let missing: Vec<&String> = template
        .resources
        .keys()
        .filter(|id| !listed.contains(*id))
        .collect();
    assert!(missing.is_empty(), "not listed: {missing:?}");
}
