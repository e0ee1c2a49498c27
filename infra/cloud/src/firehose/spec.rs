//! A Firehose delivery stream as the template declares it: Kinesis source, S3 destination,
//! buffering, processors, prefixes and compression; what the local cloud cannot do is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use super::prefix::expressions;
use tally_stack::template::{number, scalar_string, Resource, Template, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub enum Processor {
    AppendDelimiter(String),
    Lambda(String),
}

#[derive(Debug, Clone)]
pub struct DeliverySpec {
    pub logical_id: String,
    pub name: String,
    pub stream_name: String,
    pub bucket: String,
    pub prefix: String,
    pub error_prefix: String,
    pub gzip: bool,
    pub interval: Duration,
    pub size_bytes: usize,
    pub processors: Vec<Processor>,
    /// The roles it reads its source and writes its destination with (logical ids).
    pub source_role: String,
    pub delivery_role: String,
    /// Where it logs delivery errors (CloudWatchLoggingOptions), if anywhere.
    pub error_log: Option<ErrorLog>,
}

/// A CloudWatch Logs stream of delivery errors (physical names).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLog {
    pub group: String,
    pub stream: String,
}

impl ErrorLog {
    /// What `logs:PutLogEvents` to it is authorized against.
    pub fn arn(&self) -> String {
        let (region, account) = (
            tally_stack::template::REGION,
            tally_stack::template::ACCOUNT,
        );
        format!(
            "arn:aws:logs:{region}:{account}:log-group:{}:log-stream:{}",
            self.group, self.stream
        )
    }
}

impl DeliverySpec {
    pub fn from_template(template: &Template, r: &Resource) -> Result<Self, TemplateError> {
        let at = format!("Resources.{}", r.logical_id);
        let unsupported = |what: String| TemplateError::Unsupported {
            what,
            at: at.clone(),
        };
        let props = template.resolved_properties(r)?;
        if props.get("DeliveryStreamType").and_then(Json::as_str) != Some("KinesisStreamAsSource") {
            return Err(unsupported(
                "a delivery stream without a Kinesis source".into(),
            ));
        }
        let src = props["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]
            .as_str()
            .unwrap_or_default();
        let stream_id = template
            .logical_id_of(src)
            .ok_or_else(|| unsupported(format!("source {src} outside the template")))?;
        let dest = props
            .get("ExtendedS3DestinationConfiguration")
            .or(props.get("S3DestinationConfiguration"))
            .ok_or_else(|| unsupported("a destination other than S3".into()))?;
        let bucket_arn = dest["BucketARN"].as_str().unwrap_or_default();
        let bucket = bucket_arn
            .strip_prefix("arn:aws:s3:::")
            .ok_or_else(|| unsupported(format!("bucket {bucket_arn}")))?
            .to_string();
        let gzip = match dest
            .get("CompressionFormat")
            .and_then(Json::as_str)
            .unwrap_or("UNCOMPRESSED")
        {
            "GZIP" => true,
            "UNCOMPRESSED" => false,
            other => return Err(unsupported(format!("CompressionFormat {other}"))),
        };
        if dest
            .get("DataFormatConversionConfiguration")
            .is_some_and(|d| d.get("Enabled") != Some(&Json::Bool(false)))
        {
            return Err(unsupported("DataFormatConversionConfiguration".into()));
        }
        let hints = dest.get("BufferingHints").cloned().unwrap_or_default();
        let num = |k: &str, d: f64| number(&hints, k).unwrap_or(d);
        let mut processors = Vec::new();
        let pc = dest
            .get("ProcessingConfiguration")
            .cloned()
            .unwrap_or_default();
        if pc.get("Enabled") == Some(&Json::Bool(true))
            || pc.get("Enabled").and_then(Json::as_str) == Some("true")
        {
            for p in pc["Processors"].as_array().into_iter().flatten() {
                let params: BTreeMap<String, String> = p["Parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|kv| {
                        (
                            kv["ParameterName"].as_str().unwrap_or_default().to_string(),
                            scalar_string(&kv["ParameterValue"]),
                        )
                    })
                    .collect();
                match p["Type"].as_str() {
                    Some("AppendDelimiterToRecord") => {
                        let d = params
                            .get("Delimiter")
                            .cloned()
                            .unwrap_or_else(|| "\\n".into());
                        processors.push(Processor::AppendDelimiter(
                            d.replace("\\n", "\n").replace("\\t", "\t"),
                        ));
                    }
                    Some("Lambda") => {
                        let arn = params.get("LambdaArn").cloned().unwrap_or_default();
                        let f = template
                            .logical_id_of(arn.trim_end_matches(":$LATEST"))
                            .ok_or_else(|| {
                                unsupported(format!("transform Lambda {arn} outside the template"))
                            })?;
                        processors.push(Processor::Lambda(f.to_string()));
                    }
                    other => return Err(unsupported(format!("Firehose processor {other:?}"))),
                }
            }
        }
        let prefix = dest
            .get("Prefix")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        for expr in expressions(&prefix) {
            if !(expr.starts_with("timestamp:")
                || expr.starts_with("firehose:")
                || expr.starts_with("partitionKeyFromLambda:"))
            {
                return Err(unsupported(format!("prefix expression !{{{expr}}}")));
            }
        }
        let role = |config: &Json, at: &str| {
            let arn = config["RoleARN"].as_str().unwrap_or_default();
            template
                .logical_id_of(arn)
                .map(str::to_string)
                .ok_or_else(|| {
                    unsupported(format!("{at}.RoleARN {arn:?}: not a role of this template"))
                })
        };
        let logging = &dest["CloudWatchLoggingOptions"];
        let error_log = (scalar_string(&logging["Enabled"]) == "true").then(|| ErrorLog {
            group: scalar_string(&logging["LogGroupName"]),
            stream: scalar_string(&logging["LogStreamName"]),
        });
        Ok(DeliverySpec {
            source_role: role(
                &props["KinesisStreamSourceConfiguration"],
                "KinesisStreamSourceConfiguration",
            )?,
            delivery_role: role(dest, "the destination's")?,
            logical_id: r.logical_id.clone(),
            name: template.physical_name(&r.logical_id),
            stream_name: template.physical_name(stream_id),
            bucket,
            prefix,
            error_prefix: dest
                .get("ErrorOutputPrefix")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            gzip,
            interval: Duration::from_secs_f64(num("IntervalInSeconds", 300.0)),
            size_bytes: (num("SizeInMBs", 5.0) * 1024.0 * 1024.0) as usize,
            processors,
            error_log,
        })
    }
}
