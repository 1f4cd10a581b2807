//! End-to-end tests against a real kube-apiserver + etcd started by the harness.
//!
//! One test binary, so one control plane per test run; each test works in its own namespace.

mod addressgroup;
mod addressgroup_drift;
mod addressgroup_fortimanager;
mod addressgroup_lifecycle;
mod addressgroup_ownership;
mod admission;
mod apiserver_load;
mod bench_smoke;
mod chart;
mod connection_status;
mod control_plane;
mod crash;
mod deletion;
mod device_limits;
mod device_policy;
mod etcd_slow;
mod externalconnector;
mod externalconnector_fortimanager;
mod failover;
mod gitops;
mod lockout;
mod namespaces;
mod observability;
mod references;
mod replicas;
mod restart;
mod secret_sweep;
mod security;
mod soak;
mod startup;
mod storm;
mod support;
mod trustedhost;
mod watch_cuts;
