//! Shared fixtures of the workspace tests.
