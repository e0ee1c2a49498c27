//! The Meetup RSVP source, since `stream.meetup.com/2/rsvps` is gone: RSVPs made up in its exact
//! shape, a websocket server that streams them as it did, and the producer that reads such a
//! websocket into `RsvpStream`.
//!
//! - `generator.rs`: `tally gen rsvps`, RSVPs shaped like the real stream, the same for a seed
//!   (`vocabulary.rs`: the themes, cities, names and venues it draws from)
//! - `server.rs`: `tally serve-rsvps`, a file or the generator over a websocket at a chosen rate
//! - `producer.rs`: `tally put RsvpStream --from ws://...`, websocket -> Kinesis

pub mod generator;
pub mod producer;
pub mod server;
mod vocabulary;

pub use generator::{default_start, Clock, RsvpGenerator, Shape};

/// The `mtime` of an RSVP line, without parsing the rest (the server and the producer look at
/// every record).
pub fn mtime_of(line: &str) -> Option<i64> {
    let rest = &line[line.find("\"mtime\":")? + 8..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == ' '))
        .unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mtime_is_found_in_a_line() {
        let real = include_str!("../../../../tests/fixtures/meetup_rsvp_sample.jsonl");
        assert_eq!(
            super::mtime_of(real.lines().next().unwrap()),
            Some(1602629755622)
        );
        assert_eq!(super::mtime_of(r#"{"mtime": 12}"#), Some(12));
        assert_eq!(super::mtime_of(r#"{"rsvp_id":1}"#), None);
    }
}
