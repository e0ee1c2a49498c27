//! Data in the sources' exact shapes, for the demo, the tests and the bench:
//!
//! - `meetup/`: the Meetup RSVP source (generator, websocket server, websocket producer)
//! - `mobile/`: the mobile events platform (a fleet of devices, an SDK-like sender to `/collect`)

pub mod meetup;
pub mod mobile;
