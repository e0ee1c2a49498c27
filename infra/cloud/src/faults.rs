//! Faults on demand (`tally up --faults SPEC [--faults-seed N]`): the local cloud fails the way AWS
//! does under load, so a missing retry shows here before a deploy. SPEC is a comma-separated list
//! of `service:kind=rate`, a rate being the share of requests (or invocations) that fail:
//!
//! | spec | what fails, as AWS answers it |
//! |---|---|
//! | `dynamodb:throttle` | 400 `ProvisionedThroughputExceededException` |
//! | `dynamodb:error` | 500 `InternalServerError` |
//! | `kinesis:throttle` | `PutRecords`: that share of the records, each with `ErrorCode` `ProvisionedThroughputExceededException` inside a 200; other calls: 400 whole |
//! | `kinesis:error` | 500 `InternalFailure` |
//! | `s3:error` | 503 `SlowDown` |
//! | `firehose:throttle` | Firehose API calls 400 `ServiceUnavailableException`; a delivery to S3 fails and is retried |
//! | `lambda:crash` | the function's process is killed during that share of invocations (at a random moment, or as it posts its answer, after all its writes) |
//!
//! The edge injects the API faults (every SDK call of the cloud, its functions and its tools goes
//! through it), the Lambda host the crashes. Faults start once the cloud is provisioned.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    DynamoThrottle,
    DynamoError,
    KinesisThrottle,
    KinesisError,
    S3Error,
    FirehoseThrottle,
    LambdaCrash,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::DynamoThrottle,
        Fault::DynamoError,
        Fault::KinesisThrottle,
        Fault::KinesisError,
        Fault::S3Error,
        Fault::FirehoseThrottle,
        Fault::LambdaCrash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::DynamoThrottle => "dynamodb:throttle",
            Fault::DynamoError => "dynamodb:error",
            Fault::KinesisThrottle => "kinesis:throttle",
            Fault::KinesisError => "kinesis:error",
            Fault::S3Error => "s3:error",
            Fault::FirehoseThrottle => "firehose:throttle",
            Fault::LambdaCrash => "lambda:crash",
        }
    }
}

/// The faults asked for, by rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub rates: BTreeMap<Fault, f64>,
}

impl FaultSpec {
    /// `dynamodb:throttle=0.1,lambda:crash=0.02`; a one-line reason for anything else.
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let known = || {
            Fault::ALL
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut rates = BTreeMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rate) = part
                .split_once('=')
                .ok_or_else(|| format!("fault {part:?}: expected service:kind=rate"))?;
            let fault = Fault::ALL
                .into_iter()
                .find(|f| f.name() == name.trim())
                .ok_or_else(|| format!("unknown fault {name:?}: known faults are {}", known()))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!("fault {name}: rate {rate:?} is not a number from 0 to 1")
                })?;
            rates.insert(fault, rate);
        }
        Ok(FaultSpec { rates })
    }

    pub fn rate(&self, fault: Fault) -> f64 {
        self.rates.get(&fault).copied().unwrap_or(0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.rates.values().all(|r| *r == 0.0)
    }
}

impl std::fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .rates
            .iter()
            .map(|(k, r)| format!("{}={r}", k.name()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The faults of a running cloud: a seeded generator shared by the edge and the Lambda host,
/// and what was injected so far.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    state: Mutex<u64>,
    armed: AtomicBool,
    injected: Mutex<BTreeMap<Fault, u64>>,
}

impl Faults {
    pub fn new(spec: FaultSpec, seed: u64) -> Arc<Faults> {
        Arc::new(Faults {
            spec,
            state: Mutex::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            armed: AtomicBool::new(false),
            injected: Mutex::new(BTreeMap::new()),
        })
    }

    /// No faults at all.
    pub fn none() -> Arc<Faults> {
        Faults::new(FaultSpec::default(), 0)
    }

    pub fn spec(&self) -> &FaultSpec {
        &self.spec
    }

    /// From now on faults happen (the cloud is provisioned).
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// A uniform draw in [0, 1) (splitmix64).
    pub fn draw(&self) -> f64 {
        let mut s = self.state.lock().unwrap();
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether this request (or invocation) fails with `fault`, counted when it does.
    pub fn strikes(&self, fault: Fault) -> bool {
        let rate = self.spec.rate(fault);
        if rate <= 0.0 || !self.armed.load(Ordering::SeqCst) || self.draw() >= rate {
            return false;
        }
        *self.injected.lock().unwrap().entry(fault).or_default() += 1;
        true
    }

    /// Whether `fault` may strike at all (armed, and asked for).
    pub fn active(&self, fault: Fault) -> bool {
        self.spec.rate(fault) > 0.0 && self.armed.load(Ordering::SeqCst)
    }

    /// Faults injected so far, by name.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.injected
            .lock()
            .unwrap()
            .iter()
            .map(|(f, n)| (f.name().to_string(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let spec = FaultSpec::parse(
            "dynamodb:throttle=0.1, kinesis:throttle=0.1,s3:error=0.05,lambda:crash=0.02",
        )
        .unwrap();
        assert_eq!(spec.rate(Fault::DynamoThrottle), 0.1);
        assert_eq!(spec.rate(Fault::LambdaCrash), 0.02);
        assert_eq!(spec.rate(Fault::DynamoError), 0.0);
        assert_eq!(
            spec.to_string(),
            "dynamodb:throttle=0.1,kinesis:throttle=0.1,s3:error=0.05,lambda:crash=0.02"
        );
        assert!(FaultSpec::parse("dynamodb:slow=0.1")
            .unwrap_err()
            .contains("known faults are dynamodb:throttle"));
        assert!(FaultSpec::parse("s3:error=2")
            .unwrap_err()
            .contains("from 0 to 1"));
        assert!(FaultSpec::parse("s3:error")
            .unwrap_err()
            .contains("service:kind=rate"));
        assert!(FaultSpec::parse("").unwrap().is_empty());
    }

    #[test]
    fn faults_strike_at_their_rate_once_armed_and_the_same_seed_repeats() {
        let spec = FaultSpec::parse("s3:error=0.25").unwrap();
        let faults = Faults::new(spec.clone(), 7);
        assert!(
            (0..100).all(|_| !faults.strikes(Fault::S3Error)),
            "not before the cloud is up"
        );
        faults.arm();
        let hits = (0..20_000)
            .filter(|_| faults.strikes(Fault::S3Error))
            .count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
        assert_eq!(faults.injected()["s3:error"], hits as u64);
        assert!(!faults.strikes(Fault::DynamoThrottle));
        let again = |seed| {
            let f = Faults::new(spec.clone(), seed);
            f.arm();
            (0..64)
                .map(|_| f.strikes(Fault::S3Error))
                .collect::<Vec<_>>()
        };
        assert_eq!(again(3), again(3));
        assert_ne!(again(3), again(4));
    }
}
