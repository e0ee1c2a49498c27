//! Kinesis sequence numbers: decimal strings of up to 128 digits (real ones have 56).
//! They are never parsed into integers; order is by length, then lexicographic.

use std::cmp::Ordering;
use std::fmt;

/// A validated Kinesis sequence number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid sequence number {0:?}: expected 1 to 128 decimal digits")]
pub struct InvalidSequenceNumber(pub String);

impl SequenceNumber {
    pub const MAX_DIGITS: usize = 128;

    pub fn parse(s: &str) -> Result<Self, InvalidSequenceNumber> {
        let ok =
            !s.is_empty() && s.len() <= Self::MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(InvalidSequenceNumber(s.to_string()));
        }
        // Leading zeros would break "longer is larger"; Kinesis never emits them, but normalise anyway.
        let trimmed = s.trim_start_matches('0');
        Ok(Self(if trimmed.is_empty() {
            "0".into()
        } else {
            trimmed.into()
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A string whose plain lexicographic order (as DynamoDB compares strings) equals the numeric
    /// order: a three-digit length prefix, then the digits. `56:` sorts below `57:` and so on.
    pub fn ordered_key(&self) -> String {
        format!("{:03}:{}", self.0.len(), self.0)
    }

    /// Inverse of [`SequenceNumber::ordered_key`].
    pub fn from_ordered_key(key: &str) -> Result<Self, InvalidSequenceNumber> {
        match key.split_once(':') {
            Some((len, digits)) if len.parse::<usize>().ok() == Some(digits.len()) => {
                Self::parse(digits)
            }
            _ => Err(InvalidSequenceNumber(key.to_string())),
        }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn orders_by_length_then_digits() {
        assert!(seq("9") < seq("10"));
        assert!(
            seq("49590338271490256608559692538361571095921575989136588898")
                > seq("4959033827149025660855969253836157109592157598913658889")
        );
        assert!(seq("123") < seq("124"));
        let big = "9".repeat(128);
        assert!(seq(&big) > seq(&"9".repeat(127)));
    }

    #[test]
    fn ordered_key_sorts_like_numbers() {
        let mut nums = [
            "10",
            "9",
            "100",
            "99",
            "49590338271490256608559692538361571095921575989136588898",
            "1",
        ]
        .map(seq)
        .to_vec();
        let mut keys: Vec<String> = nums.iter().map(|s| s.ordered_key()).collect();
        nums.sort();
        keys.sort();
        let from_keys: Vec<SequenceNumber> = keys
            .iter()
            .map(|k| SequenceNumber::from_ordered_key(k).unwrap())
            .collect();
        assert_eq!(nums, from_keys);
    }

    #[test]
    fn rejects_non_digits_and_overlong() {
        assert!(SequenceNumber::parse("").is_err());
        assert!(SequenceNumber::parse("12a").is_err());
        assert!(SequenceNumber::parse(&"1".repeat(129)).is_err());
        assert!(SequenceNumber::from_ordered_key("003:12").is_err());
    }

    #[test]
    fn leading_zeros_do_not_make_a_number_larger() {
        assert_eq!(seq("007"), seq("7"));
        assert!(seq("0009") < seq("10"));
    }
}
