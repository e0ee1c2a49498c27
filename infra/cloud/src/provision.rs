//! Creates what `template.yaml` declares (streams, tables with TTL, buckets, queues) in the
//! emulators. Functions, mappings and delivery streams are run by the local cloud itself, and
//! IAM roles are enforced at its edge; resource policies are read but not enforced locally.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use serde_json::Value as Json;

use crate::clients::Clients;
use tally_stack::template::{Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot create {kind} {id}: {detail}")]
    Create {
        kind: String,
        id: String,
        detail: String,
    },
}

/// One provisioned resource, for the listing `tally up` prints.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub logical_id: String,
    pub kind: String,
    pub physical: String,
}

/// The shards of an on-demand stream, as Kinesis starts one (4 MB/s, 4,000 records/s of writes);
/// kinesalite has no throughput limits, so it never needs more.
const ON_DEMAND_SHARDS: i32 = 4;

/// Types the local cloud runs itself or does not need to create.
const RUN_LOCALLY: &[&str] = &[
    // Read by the template loader: its resources are in the flat map with the others.
    tally_stack::template::APPLICATION,
    "AWS::Serverless::Function",
    "AWS::Lambda::EventSourceMapping",
    "AWS::KinesisFirehose::DeliveryStream",
    // The local API Gateway serves its routes, throttled as it says.
    "AWS::Serverless::HttpApi",
    // Its policies are enforced at the edge (tally-control's iam/).
    "AWS::IAM::Role",
];
/// Resource policies: they only deny plain HTTP, and every local call is plain HTTP.
const NOT_ENFORCED: &[&str] = &["AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"];
/// The catalog and Athena (`tally sql` reads the lake with an embedded engine instead), the
/// operators' alarms and dashboard (the functions' metrics lines are in their logs), the mobile
/// SDKs' identity pool (local clients use the edge's credentials), schedules, and log groups.
const NOT_NEEDED_LOCALLY: &[&str] = &[
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::Athena::WorkGroup",
    "AWS::Athena::NamedQuery",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::SNS::Topic",
    "AWS::Cognito::IdentityPool",
    "AWS::Cognito::IdentityPoolRoleAttachment",
    // Schedules: the functions they start run when asked (`tally clusters` invokes the ML step).
    "AWS::Scheduler::Schedule",
    // Function, delivery-error and access logs are files under .tally/logs.
    "AWS::Logs::LogGroup",
    "AWS::Logs::LogStream",
];

fn err(r: &tally_stack::template::Resource, detail: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Create {
        kind: r.kind.clone(),
        id: r.logical_id.clone(),
        detail: detail.to_string(),
    }
}

fn already_exists(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ResourceInUseException"
                | "BucketAlreadyOwnedByYou"
                | "BucketAlreadyExists"
                | "QueueAlreadyExists"
        )
    )
}

pub async fn provision(
    template: &Template, clients: &Clients,
) -> Result<Vec<Provisioned>, ProvisionError> {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    let mut done = Vec::new();
    for r in template.resources.values() {
        let physical = template.physical_name(&r.logical_id);
        match r.kind.as_str() {
            "AWS::Kinesis::Stream" => {
                let props = template.resolved_properties(r)?;
                let on_demand = props["StreamModeDetails"]["StreamMode"] == "ON_DEMAND";
                let shards = match props.get("ShardCount") {
                    _ if on_demand => ON_DEMAND_SHARDS,
                    Some(n) => tally_stack::template::scalar_string(n)
                        .parse()
                        .map_err(|_| err(r, format!("ShardCount {n} is not a number")))?,
                    None => 1,
                };
                match clients
                    .kinesis
                    .create_stream()
                    .stream_name(&physical)
                    .shard_count(shards)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if already_exists(e.code()) => {}
                    Err(e) => return Err(err(r, aws_sdk_kinesis::error::DisplayErrorContext(e))),
                }
                wait_stream_active(clients, &physical)
                    .await
                    .map_err(|e| err(r, e))?;
            }
            "AWS::DynamoDB::Table" => {
                let props = template.resolved_properties(r)?;
                create_table(clients, &physical, &props)
                    .await
                    .map_err(|e| err(r, e))?;
            }
            "AWS::S3::Bucket" => match clients.s3.create_bucket().bucket(&physical).send().await {
                Ok(_) => {}
                Err(e) if already_exists(e.code()) => {}
                Err(e) => return Err(err(r, aws_sdk_s3::error::DisplayErrorContext(e))),
            },
            "AWS::SQS::Queue" => match clients
                .sqs
                .create_queue()
                .queue_name(&physical)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if already_exists(e.code()) => {}
                Err(e) => return Err(err(r, aws_sdk_sqs::error::DisplayErrorContext(e))),
            },
            k if RUN_LOCALLY.contains(&k)
                || NOT_ENFORCED.contains(&k)
                || NOT_NEEDED_LOCALLY.contains(&k) =>
            {
                continue
            }
            other => {
                return Err(TemplateError::Unsupported {
                    what: format!("resource type {other}"),
                    at: format!("Resources.{}", r.logical_id),
                }
                .into())
            }
        }
        done.push(Provisioned {
            logical_id: r.logical_id.clone(),
            kind: r.kind.clone(),
            physical,
        });
    }
    // What refers to other resources, once they all exist: queue settings (a redrive policy names
    // its dead-letter queue) and bucket notifications (they name their queues).
    for r in template.resources.values() {
        match r.kind.as_str() {
            "AWS::SQS::Queue" => configure_queue(template, clients, r).await?,
            "AWS::S3::Bucket" => configure_notifications(template, clients, r).await?,
            _ => {}
        }
    }
    Ok(done)
}

/// The queue's attributes as the template sets them (visibility timeout, retention, redrive).
async fn configure_queue(
    template: &Template, clients: &Clients, r: &tally_stack::template::Resource,
) -> Result<(), ProvisionError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let props = template.resolved_properties(r)?;
    let mut attributes = std::collections::HashMap::new();
    for (prop, attribute) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
    ] {
        if let Some(v) = props.get(prop) {
            attributes.insert(attribute, tally_stack::template::scalar_string(v));
        }
    }
    if let Some(redrive) = props.get("RedrivePolicy") {
        let policy = match redrive {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        attributes.insert(QueueAttributeName::RedrivePolicy, policy);
    }
    if attributes.is_empty() {
        return Ok(());
    }
    let url = template.queue_url(&r.logical_id, &template.queue_endpoint);
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(url)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| err(r, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// The bucket's S3 event notifications to SQS queues (moto delivers them as S3 does).
async fn configure_notifications(
    template: &Template, clients: &Clients, r: &tally_stack::template::Resource,
) -> Result<(), ProvisionError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let props = template.resolved_properties(r)?;
    let Some(config) = props.get("NotificationConfiguration") else {
        return Ok(());
    };
    for unsupported in [
        "LambdaConfigurations",
        "TopicConfigurations",
        "EventBridgeConfiguration",
    ] {
        if config.get(unsupported).is_some() {
            return Err(TemplateError::Unsupported {
                what: format!("NotificationConfiguration.{unsupported} (only queues locally)"),
                at: format!("Resources.{}", r.logical_id),
            }
            .into());
        }
    }
    let mut queues = Vec::new();
    for q in config["QueueConfigurations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut rules = Vec::new();
        for rule in q["Filter"]["S3Key"]["Rules"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = match rule["Name"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "prefix" => FilterRuleName::Prefix,
                _ => FilterRuleName::Suffix,
            };
            rules.push(
                FilterRule::builder()
                    .name(name)
                    .value(rule["Value"].as_str().unwrap_or_default())
                    .build(),
            );
        }
        let mut queue = QueueConfiguration::builder()
            .queue_arn(q["Queue"].as_str().unwrap_or_default())
            .events(Event::from(q["Event"].as_str().unwrap_or_default()));
        if !rules.is_empty() {
            queue = queue.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        queues.push(queue.build().map_err(|e| err(r, e))?);
    }
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(template.physical_name(&r.logical_id))
        .notification_configuration(
            NotificationConfiguration::builder()
                .set_queue_configurations(Some(queues))
                .build(),
        )
        .send()
        .await
        .map_err(|e| err(r, aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

async fn wait_stream_active(clients: &Clients, name: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = clients
            .kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| aws_sdk_kinesis::error::DisplayErrorContext(e).to_string())?;
        if out
            .stream_description_summary()
            .map(|s| s.stream_status().as_str() == "ACTIVE")
            .unwrap_or(false)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("stream not ACTIVE after 30s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_table(clients: &Clients, name: &str, props: &Json) -> Result<(), String> {
    let attr_defs = props["AttributeDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let keys = props["KeySchema"].as_array().cloned().unwrap_or_default();
    if props.get("GlobalSecondaryIndexes").is_some() || props.get("LocalSecondaryIndexes").is_some()
    {
        return Err("secondary indexes are not supported locally yet".into());
    }
    let mut req = clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for a in &attr_defs {
        let t = match a["AttributeType"].as_str() {
            Some("S") => ScalarAttributeType::S,
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            other => return Err(format!("bad AttributeType {other:?}")),
        };
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
                .attribute_type(t)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for k in &keys {
        let t = if k["KeyType"].as_str() == Some("RANGE") {
            KeyType::Range
        } else {
            KeyType::Hash
        };
        req = req.key_schema(
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                .key_type(t)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match req.send().await {
        Ok(_) => {}
        Err(e) if already_exists(e.code()) => return Ok(()),
        Err(e) => return Err(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()),
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification") {
        if ttl["Enabled"].as_bool() == Some(true) || ttl["Enabled"].as_str() == Some("true") {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(ttl["AttributeName"].as_str().unwrap_or_default())
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?;
            clients
                .dynamodb
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        }
    }
    Ok(())
}
