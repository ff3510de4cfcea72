//! A stand-in for the Kubernetes API server, served on loopback for tests and the local lab.
//!
//! # Layout
//! Nothing is built yet; it arrives with the scaling issue.
