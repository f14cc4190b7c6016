//! Identifiers and the identity graph that stitches them into profiles.
//!
//! An [`Identifier`] is a kind and a normalised value (`user_id:user-1`). Events carry
//! identifiers in their ids, traits and context ([`extract`], driven by
//! [`IdentityConfig`]); values are normalised and junk values refused ([`normalise`]).
//! The graph maps every identifier to at most one profile. [`ingest`] resolves one event
//! against it through a [`Store`]: it creates, extends or merges profiles within each
//! kind's limits, never joins two user ids, logs every merge, and [`undo`] splits a merge
//! again from the stored events. The Durable Object implements [`Store`] over SQLite;
//! [`MemStore`] is the native implementation that tests and the benchmark use.

mod config;
mod engine;
mod extract;
mod limits;
mod mem;
pub mod normalise;
mod seen;
mod store;
mod table;
mod undo;
pub mod workload;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use config::{IdentityConfig, KindRule};
pub use engine::{ingest, IngestError, Outcome, ProfileIds, Refusal, Warning};
pub use extract::{extract, Extracted, Found};
pub use mem::{Footprint, MemStore, MemoryUse};
pub use store::{Merge, MergeId, Store, StoreError};
pub use undo::{operator_merge, reapply, undo, UndoError, Undone};

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

impl IdKind {
    /// The kind named `name`: the built-in kinds by their snake-case names, any other
    /// name as a configured kind.
    pub fn from_name(name: &str) -> IdKind {
        match name {
            "anonymous_id" => IdKind::AnonymousId,
            "user_id" => IdKind::UserId,
            "email" => IdKind::Email,
            other => IdKind::Other(other.to_owned()),
        }
    }

    /// The kind's name as it appears in `kind:value` text and in configuration.
    pub fn as_str(&self) -> &str {
        match self {
            IdKind::AnonymousId => "anonymous_id",
            IdKind::UserId => "user_id",
            IdKind::Email => "email",
            IdKind::Other(name) => name,
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identifier: a kind and a normalised value.
///
/// Its text form is `kind:value` (`user_id:user-1`, `email:a@example.com`), as the admin
/// API's `?id=` takes it; the kind ends at the first `:`, so values may contain colons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// The kind.
    pub kind: IdKind,
    /// The normalised value.
    pub value: String,
}

impl Identifier {
    /// An identifier from a kind and an already normalised value.
    pub fn new(kind: IdKind, value: impl Into<String>) -> Identifier {
        Identifier {
            kind,
            value: value.into(),
        }
    }

    /// Reads the `kind:value` text form and normalises the value for its kind.
    ///
    /// ```
    /// use weft_core::identity::{IdKind, Identifier};
    /// let id = Identifier::parse(" email: Ann@Example.COM ").unwrap();
    /// assert_eq!(id, Identifier::new(IdKind::Email, "ann@example.com"));
    /// assert_eq!(id.to_string(), "email:ann@example.com");
    /// ```
    ///
    /// # Errors
    /// [`ParseIdError`] when the text has no `:`, the kind is not a snake-case name, or
    /// the value is junk (`null`, `undefined`, empty, ...).
    pub fn parse(text: &str) -> Result<Identifier, ParseIdError> {
        let Some((kind, value)) = text.trim().split_once(':') else {
            return Err(ParseIdError::NoKind(text.to_owned()));
        };
        let kind = kind.trim();
        let well_formed = !kind.is_empty()
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(ParseIdError::BadKind(kind.to_owned()));
        }
        let kind = IdKind::from_name(kind);
        match normalise::value(&kind, value, &[]) {
            Ok(value) => Ok(Identifier { kind, value }),
            Err(_) => Err(ParseIdError::Junk(value.to_owned())),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl std::str::FromStr for Identifier {
    type Err = ParseIdError;

    fn from_str(text: &str) -> Result<Identifier, ParseIdError> {
        Identifier::parse(text)
    }
}

/// Why a `kind:value` text is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// No `:` between kind and value.
    #[error("identifier {0:?} has no kind (expected kind:value, e.g. user_id:user-1)")]
    NoKind(String),
    /// The kind is not a snake-case name.
    #[error("identifier kind {0:?} is not a snake-case name (e.g. user_id, email, phone)")]
    BadKind(String),
    /// The value is empty or a junk placeholder.
    #[error("identifier value {0:?} is junk (empty or a placeholder such as null)")]
    Junk(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_for_every_kind() {
        let cases = [
            ("user_id:user-1", IdKind::UserId, "user-1"),
            ("anonymous_id:a:b:c", IdKind::AnonymousId, "a:b:c"),
            ("email:Ann@Example.com", IdKind::Email, "ann@example.com"),
            ("phone:+33 6 12", IdKind::Other("phone".into()), "+33 6 12"),
        ];
        for (text, kind, value) in cases {
            let id = Identifier::parse(text).unwrap();
            assert_eq!(id, Identifier::new(kind, value), "{text}");
            assert_eq!(Identifier::parse(&id.to_string()).unwrap(), id, "{text}");
        }
    }

    #[test]
    fn text_form_refuses_missing_kind_bad_kind_and_junk() {
        let cases = [
            ("user-1", ParseIdError::NoKind("user-1".into())),
            ("User Id:x", ParseIdError::BadKind("User Id".into())),
            (":x", ParseIdError::BadKind(String::new())),
            ("user_id:undefined", ParseIdError::Junk("undefined".into())),
            ("email: ", ParseIdError::Junk(String::new())),
        ];
        for (text, err) in cases {
            assert_eq!(Identifier::parse(text), Err(err), "{text}");
        }
    }

    #[test]
    fn configured_kind_names_map_to_built_in_variants() {
        assert_eq!(IdKind::from_name("user_id"), IdKind::UserId);
        assert_eq!(IdKind::from_name("phone"), IdKind::Other("phone".into()));
        assert_eq!(IdKind::from_name("email").as_str(), "email");
    }
}
