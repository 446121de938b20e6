//! Test support: a SoftHSM2 token per test, from `stella_hsm::testing` (feature `test-support`).
#![allow(dead_code, unused_imports)]

pub use stella_hsm::testing::{
    SO_PIN, SOFTHSM_MODULE, TOKEN, USER_PIN, softhsm_token, write_softhsm_conf,
};
