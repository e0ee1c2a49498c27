//! EventBridge Scheduler, locally: each `AWS::Scheduler::Schedule` of the template invokes its
//! target function with its `Input`, every period of a `rate(...)` expression, the first one
//! period after the cloud starts. As on AWS the invocation is its role's: a role that may not
//! `lambda:InvokeFunction` its target is refused (`iam: denied`), and nothing runs. `cron(...)` and
//! `at(...)` expressions are not run locally (the cloud says so at start); [`Schedule::fire`]
//! runs any schedule now, which is what `tally` commands and tests do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tally_control::iam::{Authorizer, Call};
use tally_stack::template::{Template, TemplateError};
use tokio::sync::watch;

use crate::lambda::FunctionHost;

/// A schedule as the template declares it.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub logical_id: String,
    pub expression: String,
    /// The period of a `rate(...)` expression; `None` for `cron(...)` and `at(...)`.
    pub every: Option<Duration>,
    /// The target function's logical id.
    pub function: String,
    /// The role the scheduler invokes it as (logical id).
    pub role: String,
    pub input: Vec<u8>,
}

/// `rate(5 minutes)`: the period; `Ok(None)` for the other kinds of expression. As AWS does, a
/// value of 1 takes the singular unit, any other value the plural.
pub fn rate(expression: &str) -> Result<Option<Duration>, String> {
    let Some(inner) = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return match expression.starts_with("cron(") || expression.starts_with("at(") {
            true => Ok(None),
            false => Err(format!(
                "{expression:?} is not rate(...), cron(...) or at(...)"
            )),
        };
    };
    let bad = || format!("{expression:?}: expected rate(VALUE UNIT), such as rate(10 minutes)");
    let (value, unit) = inner.trim().split_once(' ').ok_or_else(bad)?;
    let value: u64 = value.parse().map_err(|_| bad())?;
    let seconds = match (value, unit.trim()) {
        (0, _) => return Err(bad()),
        (1, "minute") | (2.., "minutes") => 60,
        (1, "hour") | (2.., "hours") => 3600,
        (1, "day") | (2.., "days") => 86_400,
        _ => {
            return Err(format!(
                "{expression:?}: the unit is singular for 1 and plural otherwise (minute(s), hour(s), day(s))"
            ))
        }
    };
    Ok(Some(Duration::from_secs(value * seconds)))
}

impl ScheduleSpec {
    pub fn all(template: &Template) -> Result<Vec<ScheduleSpec>, TemplateError> {
        template
            .of_kind("AWS::Scheduler::Schedule")
            .map(|r| {
                let at = |what: &str| format!("Resources.{}.Properties.{what}", r.logical_id);
                let props = template.resolved_properties(r)?;
                let expression = props["ScheduleExpression"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let every = rate(&expression).map_err(|e| TemplateError::Unsupported {
                    what: e,
                    at: at("ScheduleExpression"),
                })?;
                let target = &props["Target"];
                let of = |field: &str| {
                    let arn = target[field].as_str().unwrap_or_default();
                    template
                        .logical_id_of(arn)
                        .map(str::to_string)
                        .ok_or_else(|| TemplateError::Unsupported {
                            what: format!("a target from outside the template ({arn:?})"),
                            at: at(&format!("Target.{field}")),
                        })
                };
                Ok(ScheduleSpec {
                    logical_id: r.logical_id.clone(),
                    expression,
                    every,
                    function: of("Arn")?,
                    role: of("RoleArn")?,
                    input: match &target["Input"] {
                        Json::String(s) => s.clone().into_bytes(),
                        Json::Null => b"{}".to_vec(),
                        other => other.to_string().into_bytes(),
                    },
                })
            })
            .collect()
    }
}

/// A running schedule.
pub struct Schedule {
    pub spec: ScheduleSpec,
    target: Arc<FunctionHost>,
    /// IAM, when the cloud enforces it.
    authorizer: Option<Arc<Authorizer>>,
    /// Invocations so far (refused ones not counted).
    pub runs: AtomicU64,
}

impl Schedule {
    pub fn new(
        spec: ScheduleSpec, target: Arc<FunctionHost>, authorizer: Option<Arc<Authorizer>>,
    ) -> Arc<Self> {
        Arc::new(Schedule {
            spec,
            target,
            authorizer,
            runs: AtomicU64::new(0),
        })
    }

    /// One invocation now, as the scheduler makes it: the function's answer.
    pub async fn fire(&self) -> Result<Vec<u8>, String> {
        let id = &self.spec.logical_id;
        if let Some(iam) = &self.authorizer {
            let role = iam
                .role(&self.spec.role)
                .ok_or_else(|| format!("{id}: no role {}", self.spec.role))?;
            let call = Call::new("lambda:InvokeFunction", self.target.spec().arn.clone());
            iam.check_call(role, &call)
                .map_err(|d| format!("{id}: {}", d.message))?;
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.target
            .invoke(self.spec.input.clone())
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("{id}: {} failed: {e}", self.spec.function))
    }

    /// Fires every period until shutdown (nothing for an expression that is not a rate).
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let Some(every) = self.spec.every else {
            return;
        };
        each_period(every, shutdown, || async {
            if let Err(e) = self.fire().await {
                eprintln!("{e}");
            }
        })
        .await
    }
}

/// `action` once every `period`, the first one period from now, until `shutdown`; a late run
/// delays the next rather than bunching them.
async fn each_period<F, Fut>(period: Duration, mut shutdown: watch::Receiver<bool>, action: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => action().await,
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rate_fires_once_a_period_from_one_period_after_the_start() {
        let period = Duration::from_millis(40);
        let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, shutdown) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let seen = runs.clone();
        let schedule = tokio::spawn(each_period(period, shutdown, move || {
            seen.lock().unwrap().push(tokio::time::Instant::now());
            std::future::ready(())
        }));
        let deadline = started + Duration::from_secs(10);
        while runs.lock().unwrap().len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "3 runs within 10 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
        schedule.await.unwrap();
        let runs = runs.lock().unwrap();
        assert!(
            runs[0] >= started + period,
            "the first one period after the start"
        );
        for pair in runs.windows(2) {
            assert!(
                pair[1] - pair[0] >= period - Duration::from_millis(5),
                "{runs:?}"
            );
        }
    }

    #[test]
    fn rates_are_periods_and_other_expressions_are_not() {
        assert_eq!(rate("rate(10 minutes)"), Ok(Some(Duration::from_secs(600))));
        assert_eq!(rate("rate(1 hour)"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(rate("rate(2 days)"), Ok(Some(Duration::from_secs(172_800))));
        assert_eq!(rate("cron(0 3 * * ? *)"), Ok(None));
        assert_eq!(rate("at(2026-12-24T18:00:00)"), Ok(None));
        for wrong in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 hours)",
            "rate(ten minutes)",
            "daily",
        ] {
            assert!(rate(wrong).is_err(), "{wrong}");
        }
    }
}
