//! Shared vocabulary of the appliance: digests, clock, configuration.
