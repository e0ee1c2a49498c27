//! Integration tests: the real functions against DynamoDB Local, kinesalite and moto, with the
//! resources provisioned from template.yaml, and the local cloud end to end. One test binary, a
//! module per pipeline (`gender`, `rules`, `rsvp`, `events`, and the README's `example`), one for the lake, one for the local cloud's services,
//! one for the template, and `support` for what they share.

mod api_fuzz;
mod events;
mod example;
mod faults;
mod gender;
mod lake;
mod local_cloud;
mod replay;
mod rsvp;
mod rules;
mod support;
mod template;
