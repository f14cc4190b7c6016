//! Segment rules, the features they compile to, and the decisions they produce.

use serde::{Deserialize, Serialize};

/// The per-profile state the compiled segment rules need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {}
