//! Integration tests: the real functions against DynamoDB Local, kinesalite and moto, with the
//! resources provisioned from template.yaml. One test binary, a module per concern.

mod api;
mod events_files;
mod exactly_once;
mod local_cloud;
mod oracle;
mod rules;
mod template_lint;
