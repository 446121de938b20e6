//! Login throttling: after each failed login the account waits longer (exponential backoff),
//! and after `lockout_after` consecutive failures it is locked for `lockout_secs`. The policy is
//! pure arithmetic over the stored failure count and time, so it is testable with a clock.

/// The throttling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Consecutive failures that lock the account. Default 5.
    pub lockout_after: u32,
    /// How long a lockout lasts, seconds. Default 900 (15 minutes).
    pub lockout_secs: u64,
    /// Backoff after the first failure, seconds; doubles per failure. Default 1.
    pub base_backoff_secs: u64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            lockout_after: 5,
            lockout_secs: 900,
            base_backoff_secs: 1,
        }
    }
}

/// Whether a login attempt may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Check the password.
    Allow,
    /// Too soon after the last failure; try again in this many seconds.
    Backoff(u64),
    /// Locked after too many failures; unlocked in this many seconds.
    Locked(u64),
}

impl LoginThrottle {
    /// The decision for an account with `failures` consecutive failures, the last at
    /// `last_failure` (seconds since the epoch), at time `now`.
    pub fn decide(&self, failures: u32, last_failure: u64, now: u64) -> ThrottleDecision {
        if failures == 0 {
            return ThrottleDecision::Allow;
        }
        let elapsed = now.saturating_sub(last_failure);
        if failures >= self.lockout_after {
            return if elapsed < self.lockout_secs {
                ThrottleDecision::Locked(self.lockout_secs - elapsed)
            } else {
                ThrottleDecision::Allow
            };
        }
        let wait = self
            .base_backoff_secs
            .saturating_mul(1u64 << (failures - 1).min(20));
        if elapsed < wait {
            ThrottleDecision::Backoff(wait - elapsed)
        } else {
            ThrottleDecision::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_then_locks_then_unlocks() {
        let policy = LoginThrottle::default();
        assert_eq!(policy.decide(0, 0, 100), ThrottleDecision::Allow);
        assert_eq!(policy.decide(1, 100, 100), ThrottleDecision::Backoff(1));
        assert_eq!(policy.decide(1, 100, 101), ThrottleDecision::Allow);
        assert_eq!(policy.decide(3, 100, 102), ThrottleDecision::Backoff(2));
        assert_eq!(policy.decide(5, 100, 101), ThrottleDecision::Locked(899));
        assert_eq!(policy.decide(9, 100, 999), ThrottleDecision::Locked(1));
        assert_eq!(policy.decide(5, 100, 1000), ThrottleDecision::Allow);
    }
}
