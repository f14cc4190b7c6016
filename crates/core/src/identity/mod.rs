//! Identifiers and the identity graph that stitches them into profiles.

use serde::{Deserialize, Serialize};

/// The kind of an identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// The SDK's or the worker's anonymous id.
    AnonymousId,
    /// The site's own user id.
    UserId,
    /// An email address, lower-cased.
    Email,
    /// A kind the workspace configures (`phone`, `device_id`, ...).
    #[serde(untagged)]
    Other(String),
}

/// An identifier: a kind and a normalised value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// The kind.
    pub kind: IdKind,
    /// The normalised value.
    pub value: String,
}
